"""The event streams as an attacker tests them (issue 23, items 1 and 5): a stream ends with
the session that opened it, the public kiosk has its own small pool and cannot starve the HIS
or the staff, and a client that never reads is ended rather than queued for. Real sockets on
loopback (127.0.0.3… are loopback source addresses on Linux), bounded in count and time."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from terminal.server import BackgroundServer
from tests.helpers.cli import run
from tests.helpers.daemon import end_streams
from tests.helpers.lan import HIS, TOKEN, add_user, lan_server, login
from tests.helpers.samples import BHYT_NEW_EXAMPLE, CCCD_EXAMPLE


@pytest.fixture
def users(tmp_path: Path) -> Path:
    path = tmp_path / "users.toml"
    add_user(path)
    return path


@pytest.fixture
def lan(sim: BackgroundServer, tmp_path: Path, users: Path) -> Iterator[BackgroundServer]:
    server = lan_server(sim.url, tmp_path / "data", users)
    yield server
    end_streams(server)
    server.stop()


class Reader(threading.Thread):
    """``GET path`` read in a thread: the lines it delivered (cut to 200 characters) and how
    it ended — ``closed`` by the server, or the httpx error that stopped it."""

    def __init__(self, url: str, **client: Any) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.client = client
        self.lines: list[str] = []
        self.connected = threading.Event()
        self.status = 0
        self.outcome = ""

    def run(self) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(10, read=25), **self.client) as c, \
                    c.stream("GET", self.url) as r:
                self.status = r.status_code
                for line in r.iter_lines():
                    if line.startswith(": connected"):
                        self.connected.set()
                    self.lines.append(line[:200])
            self.outcome = "closed"
        except httpx.HTTPError as e:
            self.outcome = type(e).__name__
        finally:
            self.connected.set()

    def saw(self, needle: str) -> bool:
        return any(needle in line for line in list(self.lines))

    def count(self, prefix: str) -> int:
        return sum(line.startswith(prefix) for line in list(self.lines))


def until(condition: Any, seconds: float = 20.0) -> None:
    """Wait for ``condition()`` at most ``seconds`` (a bound, never a timing assertion)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def verify_as_his(server: BackgroundServer, qr: str) -> str:
    """The HIS checks a patient; the answer's fingerprint marks that patient's events."""
    r = httpx.post(f"{server.url}/api/v1/verify", json={"qr": qr}, headers=HIS, timeout=20)
    assert r.status_code == 200, r.text
    return str(r.json()["credential"]["raw_fingerprint"])


def _session_cookie(client: httpx.Client) -> dict[str, str]:
    return {c.name: str(c.value) for c in client.cookies.jar if c.name == "tiepdon_session"}


# -- item 1: a stream belongs to its session ------------------------------------------------------
@pytest.mark.parametrize("ending", ["logout", "disable", "passwd", "expiry"])
def test_an_open_stream_ends_with_its_session(lan: BackgroundServer, users: Path, ending: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    client, csrf = login(lan)
    staff = Reader(f"{lan.url}/api/v1/events", cookies=_session_cookie(client))
    his = Reader(f"{lan.url}/api/v1/events", headers=HIS)
    for reader in (staff, his):
        reader.start()
        assert reader.connected.wait(20) and reader.status == 200
    patient_a = verify_as_his(lan, CCCD_EXAMPLE)
    until(lambda: staff.saw(patient_a) and his.saw(patient_a))
    assert staff.saw(patient_a), "the stream works while the session does"

    if ending == "logout":
        assert client.post("/logout", headers={"X-CSRF-Token": csrf}).status_code == 303
        staff.join(20)  # logout ends the session's streams at once, before any later event
        assert staff.outcome == "closed"
    elif ending in ("disable", "passwd"):
        p = run("user", ending, "lan", "--users-file", str(users), stdin="mat-khau-moi-2\n")
        assert p.returncode == 0, p.stderr
        time.sleep(1.1)  # the daemon looks at the users file at most once a second
    else:
        app: Any = lan.server.config.app
        sessions = app.state.login.sessions
        monkeypatch.setattr(sessions, "_clock", lambda: time.time() + 13 * 3600)  # 12 h passed

    patient_b = verify_as_his(lan, BHYT_NEW_EXAMPLE)
    until(lambda: not staff.is_alive() or staff.saw(patient_b))
    assert not staff.saw(patient_b), f"after {ending} the open stream still showed a patient"
    staff.join(20)
    assert staff.outcome == "closed"
    assert client.get("/api/v1/recent").status_code == 401  # as every other request
    # The HIS's own stream is the token's, not the staff member's: it goes on.
    until(lambda: his.saw(patient_b))
    assert his.saw(patient_b) and his.is_alive()


# -- item 5: the kiosk's own pool -----------------------------------------------------------------
def _open_raw(server: BackgroundServer, path: str, source: str, *headers: str) -> socket.socket:
    s = socket.create_connection((server.host, server.port), timeout=10,
                                 source_address=(source, 0))
    head = "".join(f"{h}\r\n" for h in (f"Host: {server.host}", *headers))
    s.sendall(f"GET {path} HTTP/1.1\r\n{head}\r\n".encode())
    return s


def _status(s: socket.socket) -> int:
    return int(s.recv(12)[9:12])


def test_with_kiosk_clients_set_other_hosts_cannot_hold_the_kiosks_pool(
        sim: BackgroundServer, tmp_path: Path, users: Path) -> None:
    """Two hosts holding the kiosk's small pool (2 streams each) kept the real kiosk screen
    out with 429 until they let go. With ``http.kiosk_clients`` naming the screen, other
    hosts are refused (403, said), and the screen gets its stream."""
    server = lan_server(sim.url, tmp_path / "data", users,
                        http__kiosk_clients=["127.0.0.7/32"])
    socks: list[socket.socket] = []
    try:
        for source in ("127.0.0.3", "127.0.0.3", "127.0.0.4", "127.0.0.4"):
            socks.append(_open_raw(server, "/api/v1/kiosk/events", source))
            assert _status(socks[-1]) == 403
        socks.append(_open_raw(server, "/api/v1/kiosk/events", "127.0.0.7"))
        assert _status(socks[-1]) == 200
    finally:
        for s in socks:
            s.close()
        end_streams(server)


def test_kiosk_streams_have_their_own_pool_and_never_starve_the_his(
        sim: BackgroundServer, tmp_path: Path, users: Path) -> None:
    """Four addresses each try four kiosk streams (the page is public): the kiosk's pool holds
    4, 2 an address; the HIS and the staff still open theirs, from this PC and from a flooding
    address alike. Today's shared budget (8 here, 4 an address) gave the kiosk all of it."""
    server = lan_server(sim.url, tmp_path / "data", users, http__max_streams=8,
                        http__max_streams_per_client=4)
    socks: list[socket.socket] = []
    try:
        statuses: dict[str, list[int]] = {}
        for source in ("127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"):
            for _ in range(4):
                socks.append(_open_raw(server, "/api/v1/kiosk/events", source))
                statuses.setdefault(source, []).append(_status(socks[-1]))
        for source in ("127.0.0.1", "127.0.0.3"):
            socks.append(_open_raw(server, "/api/v1/events", source,
                                   f"Authorization: Bearer {TOKEN}"))
            assert _status(socks[-1]) == 200, f"the HIS from {source} was starved"
        assert statuses == {"127.0.0.3": [200, 200, 429, 429], "127.0.0.4": [200, 200, 429, 429],
                            "127.0.0.5": [429] * 4, "127.0.0.6": [429] * 4}
        client, _ = login(server)
        staff = Reader(f"{server.url}/api/v1/events", cookies=_session_cookie(client))
        staff.start()
        assert staff.connected.wait(20) and staff.status == 200
        metrics = client.get("/metrics").text
        assert 'tiepdon_event_streams_open{pool="kiosk"} 4' in metrics
        assert 'tiepdon_event_streams_open{pool="desk"} 3' in metrics
        assert 'tiepdon_event_streams_refused_total{pool="kiosk"} 12' in metrics
    finally:
        for s in socks:
            s.close()
        end_streams(server)
        server.stop()


# -- decided: a client that never reads -----------------------------------------------------------
def test_a_stream_that_never_reads_is_ended_and_the_others_lose_nothing(
        daemon: BackgroundServer) -> None:
    """A client that opens the stream and never reads: once its queue (64 events) is full
    behind a full socket, the bus ends that stream — its place and queue are given back and
    /metrics counts it — while a client that reads gets every event, in order."""
    app: Any = daemon.server.config.app
    bus = app.state.services.bus
    loop = daemon.server.servers[0].get_loop()
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.settimeout(10)
    stuck.connect((daemon.host, daemon.port))
    stuck.sendall(f"GET /api/v1/events HTTP/1.1\r\nHost: {daemon.host}\r\n\r\n".encode())
    assert _status(stuck) == 200  # and never reads another byte
    healthy = Reader(f"{daemon.url}/api/v1/events")
    healthy.start()
    try:
        assert healthy.connected.wait(20)
        pad = "x" * 32_000
        sent = 0

        def ended() -> bool:
            return 'tiepdon_event_streams_ended_total{reason="slow"} 1' in httpx.get(
                f"{daemon.url}/metrics").text

        while sent < 400 and not ended():  # 12.8 MB at most, more than any socket buffers
            for _ in range(16):
                loop.call_soon_threadsafe(bus.publish, "device",
                                          {"device": "test", "status": "ok", "reason": pad})
                sent += 1
            until(lambda n=sent: healthy.count("event: device") >= n)
        assert ended(), f"{sent} events and the stuck stream is still queued for"
        assert healthy.count("event: device") == sent  # the reading client lost nothing
        assert bus.subscriber_count == 1 and healthy.is_alive()
    finally:
        stuck.close()
        end_streams(daemon)
