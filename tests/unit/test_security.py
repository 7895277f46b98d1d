"""A daemon bound to a LAN address: staff log in, CSRF on state changes, bearer tokens for the
HIS, the kiosk stays public and read-only; security headers everywhere."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from terminal.app import create_app
from terminal.server import BackgroundServer, start_background
from tests.helpers.cli import run
from tests.helpers.daemon import daemon_services, terminal_settings
from tests.helpers.samples import CCCD_EXAMPLE
from verify.simulator.registry_sim import DEMO_OFFICER_ID, DEMO_OFFICER_NAME

LAN = "127.0.0.2"  # not 127.0.0.1: the daemon treats it as a LAN address (traffic stays local)
TOKEN = "his-secret-token-4b7e1d9a2c"  # 24+ characters of more than one kind (issue 23)


@pytest.fixture
def lan(sim: BackgroundServer, tmp_path: Path) -> Iterator[BackgroundServer]:
    users = tmp_path / "users.toml"
    for name, officer, password in (("lan", DEMO_OFFICER_ID, "mat-khau-lan"),
                                    ("moi", "001199999999", "mat-khau-moi")):
        p = run("user", "add", name, "--name", DEMO_OFFICER_NAME if name == "lan" else
                "Nhân Viên Mới", "--officer-id", officer, "--users-file", str(users),
                stdin=password + "\n")
        assert p.returncode == 0, p.stderr
    settings = terminal_settings(
        sim.url, tmp_path / "data", http__host=LAN, auth__users_file=str(users),
        auth__api_tokens=[f"his:{hashlib.sha256(TOKEN.encode()).hexdigest()}"])
    server = start_background(create_app(settings, daemon_services(settings)), host=LAN)
    yield server
    server.stop()


def login(server: BackgroundServer, user: str, password: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=server.url, timeout=10)
    r = client.post("/login", data={"username": user, "password": password})
    assert r.status_code == 303 and r.headers["location"] == "/"
    page = client.get("/").text
    csrf = re.search(r'"csrf": "([0-9a-f]{32})"', page)
    assert csrf, "the staff page carries its CSRF token"
    return client, csrf.group(1)


def test_anonymous_requests_are_refused(lan: BackgroundServer) -> None:
    assert httpx.get(f"{lan.url}/api/v1/last").status_code == 401
    assert httpx.post(f"{lan.url}/api/v1/verify", json={"qr": CCCD_EXAMPLE}).status_code == 401
    assert httpx.get(f"{lan.url}/metrics").status_code == 401
    page = httpx.get(f"{lan.url}/")
    assert page.status_code == 303 and page.headers["location"] == "/login"
    assert httpx.get(f"{lan.url}/kiosk").status_code == 200       # public, read-only
    assert httpx.get(f"{lan.url}/api/v1/health").status_code == 200
    assert httpx.post(f"{lan.url}/api/v1/kiosk/events").status_code in (401, 405)


def test_wrong_password(lan: BackgroundServer) -> None:
    r = httpx.post(f"{lan.url}/login", data={"username": "lan", "password": "wrong"})
    assert r.status_code == 303 and r.headers["location"] == "/login?e=1"
    assert "tiepdon_session" not in r.headers.get("set-cookie", "")


def test_repeated_wrong_passwords_lock_out(lan: BackgroundServer) -> None:
    codes = [httpx.post(f"{lan.url}/login", data={"username": "lan", "password": "x"}
                        ).status_code for _ in range(6)]
    assert codes == [303] * 5 + [429]
    right = httpx.post(f"{lan.url}/login", data={"username": "lan", "password": "mat-khau-lan"})
    assert right.status_code == 429  # even the right password waits out the lockout


def test_a_busy_answer_is_no_failed_login(lan: BackgroundServer) -> None:
    """While others' slow password checks fill the queue, a staff member's tries were
    answered 503 "busy" and still counted as failures: a few clicks locked their own
    address for 5 minutes without one wrong password."""
    app: Any = lan.server.config.app
    login_state = app.state.login
    real = login_state.waiting

    class Busy:
        def locked(self) -> bool:
            return True

    login_state.waiting = Busy()
    try:
        codes = [httpx.post(f"{lan.url}/login", data={"username": "lan", "password": "x"}
                            ).status_code for _ in range(8)]
    finally:
        login_state.waiting = real
    assert codes == [503] * 8
    right = httpx.post(f"{lan.url}/login", data={"username": "lan", "password": "mat-khau-lan"})
    assert right.status_code == 303 and right.headers["location"] == "/"


def test_logged_in_staff_need_the_csrf_token(lan: BackgroundServer) -> None:
    client, csrf = login(lan, "lan", "mat-khau-lan")
    assert client.post("/api/v1/verify", json={"qr": CCCD_EXAMPLE}).status_code == 403
    r = client.post("/api/v1/verify", json={"qr": CCCD_EXAMPLE},
                    headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["status"] == "eligible"
    assert client.get("/api/v1/last").status_code == 200
    cookie = next(c for c in client.cookies.jar if c.name == "tiepdon_session")
    assert cookie.has_nonstandard_attr("HttpOnly")


def test_the_registry_sees_the_logged_in_officer(lan: BackgroundServer) -> None:
    client, csrf = login(lan, "moi", "mat-khau-moi")
    r = client.post("/api/v1/verify", json={"qr": CCCD_EXAMPLE}, headers={"X-CSRF-Token": csrf})
    # This officer is not registered for the facility at the gateway: 054 proves whose
    # identity the lookup carried.
    assert r.json()["registry_code"] == "054"


def test_bearer_token_for_the_his(lan: BackgroundServer) -> None:
    h = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.post(f"{lan.url}/api/v1/verify", json={"qr": CCCD_EXAMPLE}, headers=h)
    assert r.status_code == 200
    assert httpx.get(f"{lan.url}/api/v1/last/checkin", headers=h).status_code == 200
    bad = {"Authorization": "Bearer nope"}
    assert httpx.get(f"{lan.url}/api/v1/last", headers=bad).status_code == 401


def test_bearer_token_guesses_are_limited_as_logins_are(lan: BackgroundServer) -> None:
    """Issue 23: five wrong tokens from one address lock it out, the right token included;
    another address is not affected."""
    bad = {"Authorization": "Bearer wrong-guess-0123456789abcdefXYZ"}
    for _ in range(5):
        assert httpx.get(f"{lan.url}/api/v1/last", headers=bad).status_code == 401
    good = {"Authorization": f"Bearer {TOKEN}"}
    locked = httpx.get(f"{lan.url}/api/v1/last/checkin", headers=good)
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "token_locked"
    other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.3"))
    with other:
        # Let in (404: nothing verified yet), neither 401 nor 429.
        assert other.get(f"{lan.url}/api/v1/last/checkin", headers=good).status_code == 404


def test_security_headers_everywhere(daemon: BackgroundServer) -> None:
    for path in ("/", "/api/v1/health", "/kiosk", "/static/app.js"):
        r = httpx.get(f"{daemon.url}{path}")
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in httpx.get(f"{daemon.url}/kiosk").headers[
        "content-security-policy"]


def test_lan_without_users_refuses_to_start(sim: BackgroundServer, tmp_path: Path) -> None:
    from terminal.settings import SettingsError

    settings = terminal_settings(sim.url, tmp_path / "data", http__host=LAN)
    with pytest.raises(SettingsError, match=r"auth\.users_file"):
        create_app(settings, daemon_services(settings))


def test_the_audit_names_who_looked(lan: BackgroundServer, tmp_path: Path) -> None:
    """Each record carries the staff login or the HIS token's name, and the fingerprint of
    that person's officer CCCD — not the configured default officer's."""
    client, csrf = login(lan, "moi", "mat-khau-moi")
    assert client.post("/api/v1/verify", json={"qr": CCCD_EXAMPLE},
                       headers={"X-CSRF-Token": csrf}).status_code == 200
    assert httpx.post(f"{lan.url}/api/v1/verify", json={"qr": CCCD_EXAMPLE},
                      headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    app: Any = lan.server.config.app
    services = app.state.services
    services.verifier.drain()
    exported = run("audit", "export", env={"TIEPDON_DATA_DIR": str(tmp_path / "data")})
    assert exported.returncode == 0, exported.stderr
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [r["TIEPDON_ACTOR"] for r in records] == ["staff:moi", "his:his"]
    fp = services.verifier.fingerprint
    assert records[0]["TIEPDON_OFFICER"] == fp("officer:001199999999")
    default = services.verifier.officer_id
    assert records[0]["TIEPDON_OFFICER"] != fp("officer:" + default)
    assert records[1]["TIEPDON_OFFICER"] == fp("officer:" + default)  # the HIS: desk officer
    assert "001199999999" not in exported.stdout
