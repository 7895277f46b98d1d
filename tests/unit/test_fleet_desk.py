"""What a desk offers the fleet's central engines, in process over real HTTP on loopback: the
metrics listener (bearer token, 401 without it, only /metrics and /api/v1/health), the gauges
the central alerts read (each present with a sensible value), the audit self-check, and the
start-up refusals (no desk name, a short token)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from readers.doubles.vcard import DemoSource, demo_card
from readers.emrtd.pa import load_trust
from terminal import __version__
from terminal.app import build_services, create_app, with_feeds
from terminal.offline import write_fetch_status
from terminal.server import BackgroundServer, bind, start_background
from terminal.services import Services
from terminal.settings import Settings, SettingsError, parse_settings
from tests.helpers.cache import READING, Publisher
from tests.helpers.chip import pki
from tests.helpers.cli import online_env, run
from tests.helpers.daemon import sim_control, terminal_settings
from tests.helpers.offline import snapshot_rows
from tests.helpers.samples import CCCD_EXAMPLE, NOW
from tests.helpers.webhook import SECRET
from verify.adapters.cache import install
from verify.snapshot import public_key_text

TOKEN = "f3" * 24  # 48 characters


@dataclass
class Desk:
    server: BackgroundServer
    services: Services
    metrics_url: str

    def scrape(self, token: str | None = TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.get(f"{self.metrics_url}/metrics", headers=headers, timeout=10)

    def gauges(self) -> dict[str, float]:
        r = self.scrape()
        assert r.status_code == 200, r.text
        return {name: float(value) for name, _, value in
                (line.rpartition(" ") for line in r.text.splitlines()
                 if line and not line.startswith("#"))}

    def wait_for(self, ready: Callable[[dict[str, float]], bool]) -> dict[str, float]:
        deadline = time.monotonic() + 15
        while True:
            g = self.gauges()
            if ready(g) or time.monotonic() > deadline:
                return g
            time.sleep(0.1)


def start_desk(registry_url: str, tmp_path: Path, **overrides: object) -> Desk:
    """A desk with a snapshot installed, the demo chip card, a webhook whose HIS is away and
    the metrics listener on a free loopback port."""
    data = tmp_path / "data"
    pub = Publisher()
    src = pub.build(tmp_path / "snap", version=7, rows=snapshot_rows(),
                    created=NOW - timedelta(days=1), days=7)
    install(src, data / "cache", pub.trusted)
    (tmp_path / "reading.key").write_text(READING.hex())
    (tmp_path / "metrics.token").write_text(TOKEN + "\n")
    settings = terminal_settings(
        registry_url, data, metrics__listen="127.0.0.1:0",
        metrics__token_file=str(tmp_path / "metrics.token"),
        cache__trusted_keys=[f"{pub.key_id}:{public_key_text(pub.trusted[pub.key_id])}"],
        cache__reading_key_file=str(tmp_path / "reading.key"),
        his__webhook_url="http://127.0.0.1:9/his", his__webhook_secret=SECRET, **overrides)
    card = demo_card(now=NOW, pki=pki())[0]
    services = build_services(settings, now=lambda: NOW, chip_source=DemoSource(card),
                              trust=load_trust([pki().csca_pem()]))
    services.probe_seconds = services.audit_check_seconds = 0.2
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    app = with_feeds(create_app(settings, services), services, 0, metrics_port=port,
                     metrics_token=settings.metrics_token(environ={}))
    server = start_background(app, extra=(sock,))
    return Desk(server, services, f"http://127.0.0.1:{port}")


@pytest.fixture
def desk(sim: BackgroundServer, tmp_path: Path) -> Iterator[Desk]:
    d = start_desk(sim.url, tmp_path)
    yield d
    d.server.stop()


def test_the_listener_wants_the_token_and_serves_nothing_else(desk: Desk) -> None:
    assert desk.scrape(None).status_code == 401
    assert desk.scrape(None).headers["www-authenticate"].startswith("Bearer")
    assert desk.scrape("f3" * 23 + "f4").status_code == 401
    assert desk.scrape(TOKEN[:-1]).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    basic = httpx.get(f"{desk.metrics_url}/metrics", auth=("prometheus", TOKEN))
    assert basic.status_code == 401
    ok = desk.scrape()
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
    assert "tiepdon_verifications_total" in ok.text
    health = httpx.get(f"{desk.metrics_url}/api/v1/health", headers=auth)
    assert health.status_code == 200 and "registry" in health.json()["components"]
    assert httpx.get(f"{desk.metrics_url}/api/v1/health").status_code == 401
    for path in ("/", "/api/v1/last", "/docs", "/api/v1/events", "/openapi.json"):
        assert httpx.get(f"{desk.metrics_url}{path}", headers=auth).status_code == 404, path
    r = httpx.post(f"{desk.metrics_url}/api/v1/verify", json={"qr": CCCD_EXAMPLE},
                   headers=auth)
    assert r.status_code in (404, 405)
    # The page's own port is unchanged: its /metrics needs no token, the page is there.
    assert httpx.get(f"{desk.server.url}/metrics").status_code == 200
    assert httpx.get(f"{desk.server.url}/").status_code == 200


def test_every_fleet_gauge_is_there_with_a_sensible_value(desk: Desk) -> None:
    before = time.time()
    r = httpx.post(f"{desk.server.url}/api/v1/verify", json={"qr": CCCD_EXAMPLE}, timeout=10)
    assert r.status_code == 200
    desk.services.verifier.drain()
    assert desk.services.fetch_status is not None
    write_fetch_status(desk.services.fetch_status.parent, ok=True, at=datetime.now(UTC),
                       version=7, downloaded=False)
    g = desk.wait_for(lambda g: "tiepdon_registry_up" in g and "tiepdon_audit_chain_ok" in g
                      and g.get("tiepdon_audit_last_seq") == 1
                      and g.get("tiepdon_his_webhook_waiting", 0) >= 1)
    text = desk.scrape().text
    assert f'tiepdon_build_info{{version="{__version__}"}} 1' in text
    assert "# TYPE tiepdon_build_info gauge" in text
    assert g["tiepdon_registry_up"] == 1
    assert before - 5 <= g["tiepdon_registry_last_ok_timestamp_seconds"] <= time.time() + 1
    assert g["tiepdon_snapshot_version"] == 7
    assert g["tiepdon_snapshot_created_timestamp_seconds"] == (NOW - timedelta(days=1)
                                                               ).timestamp()
    assert g["tiepdon_snapshot_expires_timestamp_seconds"] == (NOW + timedelta(days=6)
                                                               ).timestamp()
    assert g["tiepdon_snapshot_fetch_ok"] == 1
    assert before - 5 <= g["tiepdon_snapshot_fetch_timestamp_seconds"] <= time.time() + 1
    assert g["tiepdon_audit_chain_ok"] == 1 and g["tiepdon_audit_last_seq"] == 1
    assert g["tiepdon_chip_reader_up"] == 1
    assert g["tiepdon_his_webhook_waiting"] >= 1
    assert abs(g["tiepdon_time_seconds"] - time.time()) < 5


def test_a_flipped_byte_in_the_audit_file_is_found_by_the_self_check(desk: Desk) -> None:
    httpx.post(f"{desk.server.url}/api/v1/verify", json={"qr": CCCD_EXAMPLE}, timeout=10)
    desk.services.verifier.drain()
    assert desk.wait_for(lambda g: g.get("tiepdon_audit_last_seq") == 1
                         and g.get("tiepdon_audit_chain_ok") == 1)["tiepdon_audit_chain_ok"]
    audit = desk.services.audit
    assert audit is not None
    path = audit.files()[0]
    raw = bytearray(path.read_bytes())
    at = raw.index(b'"subject": "') + len(b'"subject": "')
    raw[at] = ord("0") if raw[at] != ord("0") else ord("1")
    path.write_bytes(bytes(raw))
    g = desk.wait_for(lambda g: g.get("tiepdon_audit_chain_ok") == 0)
    assert g["tiepdon_audit_chain_ok"] == 0
    assert audit.checked is not None and "edited" in audit.checked.problems[0]


def test_a_failed_fetch_and_a_missing_snapshot(sim: BackgroundServer, tmp_path: Path) -> None:
    d = start_desk(sim.url, tmp_path)
    try:
        assert d.services.offline is not None and d.services.fetch_status is not None
        write_fetch_status(d.services.fetch_status.parent, ok=False, at=datetime.now(UTC),
                           version=None, downloaded=False, reason="rollback refused")
        (d.services.offline.cache_dir / "current").unlink()
        d.services.offline.load()
        g = d.gauges()
        assert g["tiepdon_snapshot_fetch_ok"] == 0
        assert g["tiepdon_snapshot_version"] == 0
        assert g["tiepdon_snapshot_created_timestamp_seconds"] == 0
        d.services.fetch_status.write_text("{not json")
        assert "tiepdon_snapshot_fetch_ok" not in d.gauges()  # unreadable: absent, no 500
    finally:
        d.server.stop()


def test_a_gateway_that_does_not_answer_is_down(tmp_path: Path) -> None:
    d = start_desk("http://127.0.0.1:9", tmp_path)
    try:
        g = d.wait_for(lambda g: "tiepdon_registry_up" in g)
        assert g["tiepdon_registry_up"] == 0
        assert g["tiepdon_registry_last_ok_timestamp_seconds"] == 0
    finally:
        d.server.stop()


def test_a_hanging_gateway_is_down_within_the_timeout(tmp_path: Path) -> None:
    """A gateway that accepts and never answers: the probe gives up at the timeout."""
    import socket

    silent = socket.create_server(("127.0.0.1", 0))
    try:
        d = start_desk(f"http://127.0.0.1:{silent.getsockname()[1]}", tmp_path,
                       registry__timeout_seconds=0.5)
        try:
            g = d.wait_for(lambda g: "tiepdon_registry_up" in g)
            assert g["tiepdon_registry_up"] == 0
        finally:
            d.server.stop()
    finally:
        silent.close()


def test_the_simulators_hang_is_down_for_the_probe_too(sim: BackgroundServer,
                                                      tmp_path: Path) -> None:
    """The registry simulator's whole-server hang reaches the probe's GET (the fleet test's
    RegistryDown), and the gateway is up again once it answers."""
    d = start_desk(sim.url, tmp_path, registry__timeout_seconds=0.5)
    try:
        assert d.wait_for(lambda g: g.get("tiepdon_registry_up") == 1)["tiepdon_registry_up"] == 1
        sim_control(sim, fault="hang")
        assert d.wait_for(lambda g: g.get("tiepdon_registry_up") == 0)["tiepdon_registry_up"] == 0
        sim_control(sim, fault="none")
        assert d.wait_for(lambda g: g.get("tiepdon_registry_up") == 1)["tiepdon_registry_up"] == 1
    finally:
        d.server.stop()


# -- start-up --------------------------------------------------------------------------------

def settings(**metrics: str) -> Settings:
    return parse_settings({"metrics": metrics, "http": {"port": 8765}}, environ={})


@pytest.mark.parametrize(("listen", "needle"), [
    ("9765", 'must be "HOST:PORT"'), ("10.0.0.1:", 'must be "HOST:PORT"'),
    ("10.0.0.1:70000", 'must be "HOST:PORT"'), ("http://x:1", 'must be "HOST:PORT"'),
])
def test_a_bad_listen_address_is_refused(listen: str, needle: str) -> None:
    with pytest.raises(SettingsError, match=r"metrics\.listen \(TIEPDON_METRICS_LISTEN\)"):
        settings(listen=listen)


def test_listen_addresses_and_ports() -> None:
    assert settings(listen="10.20.1.31:9765").metrics.address() == ("10.20.1.31", 9765)
    assert settings(listen="[::1]:9765").metrics.address() == ("::1", 9765)
    assert settings().metrics.address() is None and settings().metrics_token() is None
    with pytest.raises(SettingsError, match="its port is the page's"):
        settings(listen="0.0.0.0:8765").check_listeners()


def test_the_token_comes_from_the_credential_or_the_file(tmp_path: Path) -> None:
    s = settings(listen="127.0.0.1:9765", token_file=str(tmp_path / "t"))
    with pytest.raises(SettingsError, match=r"metrics\.token_file.*unreadable"):
        s.metrics_token(environ={})
    (tmp_path / "t").write_text("short\n")
    with pytest.raises(SettingsError, match="5 characters, at least 32 needed"):
        s.metrics_token(environ={})
    (tmp_path / "t").write_text(TOKEN + "\n")
    assert s.metrics_token(environ={}) == TOKEN.encode()
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "metrics.token").write_text("c" * 40)
    assert s.metrics_token(environ={"CREDENTIALS_DIRECTORY": str(creds)}) == b"c" * 40
    with pytest.raises(SettingsError, match="needs a token"):
        settings(listen="127.0.0.1:9765").metrics_token(environ={})


def test_serve_refuses_no_desk_name_a_bad_one_and_a_short_token(sim: BackgroundServer,
                                                               tmp_path: Path) -> None:
    env = {**online_env(sim, tmp_path), "TIEPDON_HTTP_PORT": "0"}
    del env["TIEPDON_AUDIT_DESK"]
    p = run("serve", env=env)
    assert p.returncode == 2 and "audit.desk (TIEPDON_AUDIT_DESK)" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = run("serve", env={**env, "TIEPDON_AUDIT_DESK": "quầy 1"})
    assert p.returncode == 2 and "audit.desk" in p.stderr
    (tmp_path / "token").write_text("0123456789")
    p = run("serve", env={**env, "TIEPDON_AUDIT_DESK": "01C54-quay-1",
                          "TIEPDON_METRICS_LISTEN": "127.0.0.1:0",
                          "TIEPDON_METRICS_TOKEN_FILE": str(tmp_path / "token")})
    assert p.returncode == 2 and "metrics.token_file" in p.stderr and "at least 32" in p.stderr


def test_serve_runs_the_listener(sim: BackgroundServer, tmp_path: Path) -> None:
    """``tiepdon serve`` as a process: the metrics listener on its own port, token needed."""
    import os
    import signal
    import socket
    import subprocess

    from tests.helpers.cli import TIEPDON

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    (tmp_path / "token").write_text(TOKEN)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TIEPDON_")},
           **online_env(sim, tmp_path), "TIEPDON_HTTP_PORT": "0",
           "TIEPDON_METRICS_LISTEN": f"127.0.0.1:{port}",
           "TIEPDON_METRICS_TOKEN_FILE": str(tmp_path / "token")}
    proc = subprocess.Popen([TIEPDON, "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/metrics",
                              headers={"Authorization": f"Bearer {TOKEN}"}, timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert r.status_code == 200 and "tiepdon_build_info" in r.text
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert "desk demo-quay-1" in err and "metrics for Prometheus" in err, err
