"""The daemon as an attacker tests it: real sockets on loopback, bounded in count and time.

DNS rebinding (a foreign Host), cross-site forms (a foreign Origin), login races and lockout
dodges, sessions that must die, a short terminal key, bodies and headers that never end,
floods of connections and event streams, an HIS token used where an HIS has no business, and
the smaller holes (caching, CSP, exact public paths, control characters).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from terminal.app import build_services, create_app
from terminal.server import BackgroundServer, start_background
from terminal.settings import SettingsError
from tests.helpers.cli import run
from tests.helpers.daemon import daemon_services, terminal_settings
from tests.helpers.samples import CCCD_EXAMPLE
from verify.simulator.registry_sim import DEMO_OFFICER_ID, DEMO_OFFICER_NAME

LAN = "127.0.0.2"
TOKEN = "his-secret-token-4b7e1d9a2c"  # 24+ characters of more than one kind (issue 23)
PASSWORD = "mat-khau-lan"


def add_user(users: Path, name: str = "lan", password: str = PASSWORD) -> None:
    p = run("user", "add", name, "--name", DEMO_OFFICER_NAME, "--officer-id", DEMO_OFFICER_ID,
            "--users-file", str(users), stdin=password + "\n")
    assert p.returncode == 0, p.stderr


@pytest.fixture
def users(tmp_path: Path) -> Path:
    path = tmp_path / "users.toml"
    add_user(path)
    return path


def lan_server(sim: BackgroundServer, tmp_path: Path, users: Path,
               **overrides: object) -> BackgroundServer:
    settings = terminal_settings(
        sim.url, tmp_path / "data", http__host=LAN, auth__users_file=str(users),
        auth__api_tokens=[f"his:{hashlib.sha256(TOKEN.encode()).hexdigest()}"], **overrides)
    return start_background(create_app(settings, daemon_services(settings)), host=LAN)


@pytest.fixture
def lan(sim: BackgroundServer, tmp_path: Path, users: Path) -> Iterator[BackgroundServer]:
    server = lan_server(sim, tmp_path, users)
    yield server
    server.stop()


def login(server: BackgroundServer, password: str = PASSWORD) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=server.url, timeout=20)
    r = client.post("/login", data={"username": "lan", "password": password})
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    found = re.search(r'"csrf": "([0-9a-f]{32})"', client.get("/").text)
    assert found
    return client, found.group(1)


def raw(server: BackgroundServer, request: bytes, *, timeout: float = 5.0) -> bytes:
    """One request over a plain socket, as an attacker writes it."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b"text/event-stream" not in chunks[0]:
                head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
                m = re.search(rb"content-length: (\d+)", head.lower())
                if m and len(body) >= int(m.group(1)):
                    break
        return b"".join(chunks)


# -- 1. DNS rebinding, cross-site forms, proxies ------------------------------------------------
@pytest.mark.parametrize("path", ["/api/v1/last", "/api/v1/events", "/api/v1/photo", "/",
                                  "/api/v1/kiosk/events", "/api/v1/health"])
def test_a_foreign_host_name_is_refused_on_every_route(daemon: BackgroundServer,
                                                       path: str) -> None:
    httpx.post(f"{daemon.url}/api/v1/verify", json={"qr": CCCD_EXAMPLE}).raise_for_status()
    answer = raw(daemon, f"GET {path} HTTP/1.1\r\nHost: attacker.example:{daemon.port}\r\n"
                         "Connection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 421"), answer[:80]
    assert b"Nguy" not in answer and b"host_not_allowed" in answer
    ok = raw(daemon, f"GET /api/v1/health HTTP/1.1\r\nHost: localhost:{daemon.port}\r\n"
                     "Connection: close\r\n\r\n".encode())
    assert ok.startswith(b"HTTP/1.1 200")


def test_the_names_the_hospital_lists_are_answered(sim: BackgroundServer,
                                                   tmp_path: Path) -> None:
    settings = terminal_settings(sim.url, tmp_path / "data",
                                 http__allowed_hosts=["quay-tiep-don.benhvien.local"])
    server = start_background(create_app(settings, daemon_services(settings)))
    try:
        listed = raw(server, b"GET /api/v1/health HTTP/1.1\r\n"
                             b"Host: quay-tiep-don.benhvien.local\r\nConnection: close\r\n\r\n")
        assert listed.startswith(b"HTTP/1.1 200")
        loopback = raw(server, b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               b"Connection: close\r\n\r\n")
        assert loopback.startswith(b"HTTP/1.1 421")  # the list replaces the defaults
    finally:
        server.stop()


def test_a_cross_site_form_is_refused(daemon: BackgroundServer) -> None:
    evil = {"Origin": "http://attacker.example"}
    r = httpx.post(f"{daemon.url}/api/v1/verify", json={"qr": CCCD_EXAMPLE}, headers=evil)
    assert r.status_code == 403 and r.json()["error"]["code"] == "origin"
    same = {"Origin": daemon.url}
    assert httpx.post(f"{daemon.url}/api/v1/verify", json={"qr": CCCD_EXAMPLE},
                      headers=same).status_code == 200


def test_login_is_required_where_it_must_be(sim: BackgroundServer, tmp_path: Path,
                                            users: Path) -> None:
    with pytest.raises(SettingsError, match=r"auth\.required"):
        settings = terminal_settings(sim.url, tmp_path / "d1", http__host=LAN,
                                     auth__users_file=str(users), auth__required=False)
        create_app(settings, daemon_services(settings))
    # Behind a reverse proxy on this PC, loopback is reachable from elsewhere: required.
    settings = terminal_settings(sim.url, tmp_path / "d2", auth__users_file=str(users),
                                 auth__required=True)
    server = start_background(create_app(settings, daemon_services(settings)))
    try:
        assert httpx.get(f"{server.url}/api/v1/last").status_code == 401
        assert httpx.get(f"{server.url}/kiosk").status_code == 200
    finally:
        server.stop()


# -- 2. the lockout, raced and dodged -----------------------------------------------------------
def _wrong(server: BackgroundServer, n: int, **client: Any) -> list[int]:
    def attempt(i: int) -> int:
        headers = {"X-Forwarded-For": f"10.0.{i // 250}.{i % 250}"}  # not believed
        with httpx.Client(timeout=60, **client) as c:
            try:
                return c.post(f"{server.url}/login",
                              data={"username": "lan", "password": f"x{i}"},
                              headers=headers).status_code
            except httpx.TransportError:
                return 0  # refused at the door: past this address's share of connections

    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        return list(pool.map(attempt, range(n)))


def test_200_concurrent_guesses_meet_the_lockout(lan: BackgroundServer) -> None:
    codes = _wrong(lan, 200)
    assert codes.count(303) <= 5, codes.count(303)  # at most five reached the hash
    assert set(codes) <= {0, 303, 429, 503}
    right = httpx.post(f"{lan.url}/login", data={"username": "lan", "password": PASSWORD})
    assert right.status_code == 429


def test_ten_source_addresses_do_not_dodge_the_account_lockout(lan: BackgroundServer) -> None:
    """Guessing from many addresses stays capped: 20 wrong passwords on one account from
    anywhere lock it everywhere for the window (the right one included)."""
    for i in range(10):
        transport = httpx.HTTPTransport(local_address=f"127.0.1.{i + 1}")
        with httpx.Client(transport=transport, timeout=30) as c:
            for _ in range(2):
                c.post(f"{lan.url}/login", data={"username": "lan", "password": "wrong-guess"})
    assert httpx.post(f"{lan.url}/login", data={"username": "lan", "password": PASSWORD}
                      ).status_code == 429


def test_one_host_cannot_lock_a_staff_member_out_at_their_desk(lan: BackgroundServer) -> None:
    """Five wrong passwords from one host lock that host (for this account and any other),
    not the account: staff typing the right password at their own desk get in."""
    bad = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.5"), timeout=30)
    with bad:
        codes = [bad.post(f"{lan.url}/login", data={"username": "lan", "password": "x"}
                          ).status_code for _ in range(6)]
        assert codes == [303] * 5 + [429]
        assert bad.post(f"{lan.url}/login", data={"username": "lan", "password": PASSWORD}
                        ).status_code == 429  # that host waits out its lockout
    desk = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.9"), timeout=30)
    with desk:
        r = desk.post(f"{lan.url}/login", data={"username": "lan", "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/", r.text


def test_an_unknown_user_costs_a_hash_too(lan: BackgroundServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from terminal import security

    hashed: list[str] = []
    real = getattr(security, "check_password")  # noqa: B009 - the name the login calls

    def counting(password: str, stored: str) -> bool:
        hashed.append(stored.split("$")[1])
        return bool(real(password, stored))

    monkeypatch.setattr(security, "check_password", counting)
    httpx.post(f"{lan.url}/login", data={"username": "nobody", "password": "whatever1"})
    httpx.post(f"{lan.url}/login", data={"username": "lan", "password": "whatever1"})
    assert hashed == ["131072", "131072"]  # the dummy costs what a real hash costs


def test_logins_do_not_stall_the_event_loop(sim: BackgroundServer, tmp_path: Path,
                                           users: Path) -> None:
    """60 logins at once, hashed in the worker pool: health keeps answering meanwhile."""
    server = lan_server(sim, tmp_path, users, http__max_connections_per_client=100)
    try:
        with concurrent.futures.ThreadPoolExecutor(60) as pool:
            futures = [pool.submit(httpx.post, f"{server.url}/login",
                                   data={"username": f"u{i}", "password": "x" * 9},
                                   timeout=60) for i in range(60)]
            health = httpx.get(f"{server.url}/api/v1/health", timeout=30)
            assert health.status_code == 200
            assert all(f.result().status_code in (303, 429, 503) for f in futures)
    finally:
        server.stop()


def test_login_checks_origin(lan: BackgroundServer) -> None:
    r = httpx.post(f"{lan.url}/login", data={"username": "lan", "password": PASSWORD},
                   headers={"Origin": "http://attacker.example"})
    assert r.status_code == 403


# -- 3. sessions that end -----------------------------------------------------------------------
def _cookie(client: httpx.Client) -> str:
    return next(str(c.value) for c in client.cookies.jar if c.name.endswith("tiepdon_session"))


def test_logout_ends_the_session(lan: BackgroundServer) -> None:
    client, csrf = login(lan)
    stolen = _cookie(client)
    assert client.post("/logout", headers={"X-CSRF-Token": csrf}).status_code == 303
    replay = httpx.get(f"{lan.url}/api/v1/last", cookies={"tiepdon_session": stolen})
    assert replay.status_code == 401


@pytest.mark.parametrize("command", ["passwd", "disable"])
def test_a_password_change_or_disable_ends_the_users_sessions(lan: BackgroundServer,
                                                               users: Path,
                                                               command: str) -> None:
    client, _ = login(lan)
    assert client.get("/api/v1/recent").status_code == 200
    p = run("user", command, "lan", "--users-file", str(users), stdin="mat-khau-moi-2\n")
    assert p.returncode == 0, p.stderr
    time.sleep(1.1)  # the daemon looks at the users file at most once a second
    assert client.get("/api/v1/recent").status_code == 401
    fresh = httpx.post(f"{lan.url}/login", data={"username": "lan", "password": PASSWORD})
    assert fresh.headers["location"] == "/login?e=1"
    if command == "passwd":
        login(lan, "mat-khau-moi-2")


def test_a_restart_ends_every_session(sim: BackgroundServer, tmp_path: Path,
                                      users: Path) -> None:
    first = lan_server(sim, tmp_path, users)
    client, _ = login(first)
    cookie = _cookie(client)
    first.stop()
    second = lan_server(sim, tmp_path, users)
    try:
        assert httpx.get(f"{second.url}/api/v1/last",
                         cookies={"tiepdon_session": cookie}).status_code == 401
    finally:
        second.stop()


def test_behind_tls_the_cookie_is_host_prefixed_and_secure(sim: BackgroundServer,
                                                          tmp_path: Path, users: Path) -> None:
    server = lan_server(sim, tmp_path, users, http__behind_tls=True)
    try:
        r = httpx.post(f"{server.url}/login", data={"username": "lan", "password": PASSWORD})
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("__Host-tiepdon_session=")
        assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie
    finally:
        server.stop()


def test_the_staff_page_shows_who_and_offers_logout(lan: BackgroundServer) -> None:
    client, _ = login(lan)
    page = client.get("/").text
    assert '"user": "' + DEMO_OFFICER_NAME + '"' in page and 'id="logout"' in page


# -- 4. the terminal key ------------------------------------------------------------------------
def test_a_short_terminal_key_refuses_to_start_and_is_kept(sim: BackgroundServer,
                                                           tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "terminal.key").write_bytes(b"")
    settings = terminal_settings(sim.url, data)
    with pytest.raises(SettingsError, match="terminal key"):
        build_services(settings)
    assert (data / "terminal.key").read_bytes() == b""  # never silently replaced
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "terminal.key").write_bytes(b"short")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CREDENTIALS_DIRECTORY", str(creds))
        with pytest.raises(SettingsError, match=r"terminal key \(systemd credential\)"):
            build_services(settings)


# -- 5. resource limits -------------------------------------------------------------------------
def test_a_2_mb_body_is_refused_before_it_is_read(daemon: BackgroundServer) -> None:
    body = b'{"qr": "' + b"A" * 2_000_000 + b'"}'
    r = httpx.post(f"{daemon.url}/api/v1/verify", content=body,
                   headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

    def chunks() -> Iterator[bytes]:
        yield b'{"qr": "'
        for _ in range(40):
            yield b"A" * 50_000
        yield b'"}'

    r = httpx.post(f"{daemon.url}/api/v1/verify", content=chunks(),
                   headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 413  # chunked: counted as it arrives
    assert httpx.get(f"{daemon.url}/api/v1/health").status_code == 200


def test_a_validation_answer_stays_short(daemon: BackgroundServer) -> None:
    many = json.dumps({f"k{i}": i for i in range(4000)})
    assert len(many) < 64 * 1024
    r = httpx.post(f"{daemon.url}/api/v1/verify", content=many,
                   headers={"content-type": "application/json"})
    assert r.status_code == 422 and len(r.content) < 400
    assert "k3999" not in r.text


def test_half_sent_requests_are_dropped(sim: BackgroundServer, tmp_path: Path) -> None:
    settings = terminal_settings(sim.url, tmp_path / "data", http__header_timeout_seconds=1,
                                 http__max_connections_per_client=200)
    server = start_background(create_app(settings, daemon_services(settings)))
    socks = []
    try:
        for _ in range(100):
            s = socket.create_connection((server.host, server.port), timeout=10)
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            socks.append(s)
        assert httpx.get(f"{server.url}/api/v1/health", timeout=10).status_code == 200
        closed = 0
        for s in socks:
            s.settimeout(5)
            try:
                closed += s.recv(1) == b""
            except (ConnectionResetError, TimeoutError):
                closed += 1
        assert closed == 100  # each dropped after the header deadline
    finally:
        for s in socks:
            s.close()
        server.stop()


def test_one_client_cannot_take_every_connection(sim: BackgroundServer,
                                                 tmp_path: Path) -> None:
    settings = terminal_settings(sim.url, tmp_path / "data", http__max_connections_per_client=8)
    server = start_background(create_app(settings, daemon_services(settings)))
    socks = []
    try:
        for _ in range(20):
            socks.append(socket.create_connection((server.host, server.port), timeout=10))
        time.sleep(0.3)
        refused = 0
        for s in socks:
            s.settimeout(0.5)
            try:
                refused += s.recv(1) == b""
            except ConnectionResetError:
                refused += 1
            except TimeoutError:
                pass
        assert refused == 12
        transport = httpx.HTTPTransport(local_address="127.0.0.3")
        with httpx.Client(transport=transport) as other:  # another desk still gets in
            assert other.get(f"{server.url}/api/v1/health").status_code == 200
    finally:
        for s in socks:
            s.close()
        server.stop()


def test_a_flood_of_event_streams_is_refused_and_the_desk_goes_on(
        daemon: BackgroundServer) -> None:
    socks = []
    try:
        statuses = []
        for _ in range(40):
            s = socket.create_connection((daemon.host, daemon.port), timeout=5)
            s.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            statuses.append(s.recv(12)[9:12])
            socks.append(s)
        assert statuses.count(b"200") == 16 and statuses.count(b"429") == 24
        r = httpx.post(f"{daemon.url}/api/v1/verify", json={"qr": CCCD_EXAMPLE}, timeout=10)
        assert r.status_code == 200
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 10  # closed streams give their places back
    app: Any = daemon.server.config.app
    while app.state.services.bus.subscriber_count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert app.state.services.bus.subscriber_count == 0


# -- 6. the smaller holes -----------------------------------------------------------------------
def test_personal_answers_are_not_cached_and_html_has_a_csp(lan: BackgroundServer) -> None:
    client, _ = login(lan)
    for path in ("/api/v1/last", "/api/v1/recent", "/", "/kiosk", "/login", "/docs",
                 "/openapi.json"):
        r = client.get(path)
        assert r.headers.get("cache-control") == "no-store", path
        if r.headers.get("content-type", "").startswith("text/html"):
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path


def test_public_paths_are_matched_exactly(lan: BackgroundServer) -> None:
    for path in ("/kioskx", "/kiosk/../api/v1/last", "/api/v1/healthz", "/loginx"):
        r = httpx.get(f"{lan.url}{path}", follow_redirects=False)
        assert r.status_code in (303, 401), (path, r.status_code)  # the guard, not a page


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/v1/photo"), ("GET", "/metrics"),
                                              ("GET", "/docs"), ("GET", "/openapi.json"),
                                              ("POST", "/api/v1/chip/demo"),
                                              ("GET", "/api/v1/recent")])
def test_the_his_token_does_only_what_an_his_needs(lan: BackgroundServer, method: str,
                                                   path: str) -> None:
    h = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.request(method, f"{lan.url}{path}", headers=h)
    assert r.status_code == 403 and r.json()["error"]["code"] == "token_scope"
    assert httpx.get(f"{lan.url}/api/v1/last", headers=h).status_code in (200, 404)


def test_control_characters_never_leave_the_chip_text() -> None:
    from readers.emrtd.lds import encode_dg13, parse_dg13

    dg13 = parse_dg13(encode_dg13({1: "001088004321", 2: "Nguyễn\x1b[31m Văn\u202e An\x00"}))
    assert dg13.get(2) == "Nguyễn[31m Văn An"


def test_a_user_name_with_a_newline_is_refused(tmp_path: Path) -> None:
    p = run("user", "add", "x", "--name", "Tên\n[[user]]", "--officer-id", DEMO_OFFICER_ID,
            "--users-file", str(tmp_path / "u.toml"), stdin="mat-khau-dai\n")
    assert p.returncode == 2 and "control characters" in p.stderr
    assert not (tmp_path / "u.toml").exists()
