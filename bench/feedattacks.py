"""Benchmark: issue 23's attacks on the HIS surface of a real ``tiepdon serve`` (separate
process, loopback, staff login and HIS tokens required, the HN212 feed on): for each, the
daemon's resident memory and whether — and how fast — the real HIS still gets its feed and its
event stream.

- 1 000 Engine.IO handshakes with no token, plain and with the ``xsid=`` / empty ``sid=``
  tricks, from one address; then the HIS (another loopback address, its token) connects;
- a packet announcing 9 999 999 binary attachments, then 200 binary messages of 60 KB;
- kiosk streams opened from four addresses until refused; then the HIS's /api/v1/events;
- 1 000 malformed packets: the daemon's log lines.

    .venv/bin/python -m bench.feedattacks
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import websocket  # websocket-client, the Python HIS client's transport (test extra)

from bench.security import PASSWORD, rss_mib
from bench.verify import TIEPDON, machine, stop
from terminal.demo import demo_environment

TOKEN = "bench-his-token-8f3a1c5e9d7b"
RSS_LIMIT_MIB = 150.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Daemon:
    """``tiepdon serve`` with its stderr counted (the log-flood row)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([TIEPDON, "serve"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **env})
        assert self.proc.stderr is not None
        self.lines = 0
        self.url = ""
        for _ in range(80):
            line = self.proc.stderr.readline()
            found = re.search(r"(http://[0-9.]+:[0-9]+)", line)
            if found:
                self.url = found.group(1)
                break
        if not self.url:
            self.proc.kill()
            raise RuntimeError("serve did not start")
        threading.Thread(target=self._count, daemon=True).start()

    def _count(self) -> None:
        assert self.proc.stderr is not None
        for _ in self.proc.stderr:
            self.lines += 1

    def rss(self) -> float:
        return rss_mib(self.proc.pid)


def handshake(feed: int, query: str = "", *, source: str = "127.0.0.1",
              token: str | None = None) -> tuple[int, float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.HTTPTransport(local_address=source)
    t0 = time.perf_counter()
    try:
        with httpx.Client(transport=transport, timeout=10) as c:
            r = c.get(f"http://127.0.0.1:{feed}/socket.io/?EIO=4&transport=polling{query}",
                      headers=headers)
        return r.status_code, (time.perf_counter() - t0) * 1000
    except httpx.HTTPError:
        return 0, (time.perf_counter() - t0) * 1000


def session_flood(feed: int, query: str) -> tuple[int, int, float]:
    opened = sum(handshake(feed, query)[0] == 200 for _ in range(1000))
    status, ms = handshake(feed, source="127.0.0.2", token=TOKEN)
    return opened, status, ms


def attachment_flood(feed: int) -> bool:
    """True when the daemon ended the session (it needs no binary input)."""
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{feed}/socket.io/?EIO=4&transport=websocket",
        header=[f"Authorization: Bearer {TOKEN}"], timeout=10)
    try:
        ws.recv()  # the Engine.IO open packet
        ws.send("40")
        ws.send('459999999-["x",{"_placeholder":true,"num":0}]')
        for _ in range(200):
            ws.send_binary(b"\x04" + b"\0" * 60_000)
        ws.settimeout(3)
        while True:  # the connect answer and /info may come first; then the close
            ws.recv()
    except websocket.WebSocketTimeoutException:
        return False  # still open after 3 s of silence
    except (websocket.WebSocketException, OSError):
        return True
    finally:
        ws.close()


def kiosk_flood(url: str) -> tuple[int, int, float]:
    port = int(url.rsplit(":", 1)[1])
    socks: list[socket.socket] = []
    accepted = 0
    for n in range(3, 7):
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                         source_address=(f"127.0.0.{n}", 0))
            s.sendall(f"GET /api/v1/kiosk/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
                      .encode())
            accepted += s.recv(12)[9:12] == b"200"
            socks.append(s)
    t0 = time.perf_counter()
    with httpx.Client(timeout=10) as c, c.stream(
            "GET", f"{url}/api/v1/events", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
        status = r.status_code
    ms = (time.perf_counter() - t0) * 1000
    for s in socks:
        s.close()
    return accepted, status, ms


def bad_packets(feed: int, daemon: Daemon) -> int:
    before = daemon.lines
    with httpx.Client(timeout=10) as c:
        opened = c.get(f"http://127.0.0.1:{feed}/socket.io/?EIO=4&transport=polling").text
        sid = re.search(r'"sid":"([^"]+)"', opened)
        for _ in range(1000):
            if sid is None:
                break
            c.post(f"http://127.0.0.1:{feed}/socket.io/?EIO=4&transport=polling"
                   f"&sid={sid.group(1)}", content=b"4\xff")
    time.sleep(1)
    return daemon.lines - before


def main() -> int:
    data = Path(tempfile.mkdtemp(prefix="tiepdon-bench-feed-"))
    sim = subprocess.Popen([TIEPDON, "registry-sim", "--port", "0"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    assert sim.stdout is not None
    sim_url = sim.stdout.readline().strip()
    users = data / "users.toml"
    subprocess.run([TIEPDON, "user", "add", "bench", "--name", "Nguyễn Văn Bàn",
                    "--officer-id", "001088001234", "--users-file", str(users)],
                   input=PASSWORD + "\n", text=True, check=True, capture_output=True)
    feed = free_port()
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    env = {**demo_environment(sim_url, data), "TIEPDON_HTTP_PORT": "0",
           "TIEPDON_AUTH_REQUIRED": "true", "TIEPDON_AUTH_USERS_FILE": str(users),
           "TIEPDON_AUTH_API_TOKENS": f"his:{digest}", "TIEPDON_HIS_HN212_PORT": str(feed)}
    daemon = Daemon(env)
    rows: list[tuple[str, str, str, float]] = []
    ok = True
    try:
        idle = daemon.rss()
        for name, query in (("no trick", ""), ("xsid=1", "&xsid=1"), ("empty sid=", "&sid=")):
            opened, status, ms = session_flood(feed, query)
            rss = daemon.rss()
            rows.append((f"1 000 token-less handshakes, one address ({name})",
                         f"{opened} opened", f"HIS handshake {status} in {ms:.1f} ms", rss))
            ok &= status == 200 and rss < RSS_LIMIT_MIB
            time.sleep(6)  # unauthenticated sessions expire after 5 s
        ended = attachment_flood(feed)
        rss = daemon.rss()
        status, ms = handshake(feed, source="127.0.0.2", token=TOKEN)
        rows.append(("9 999 999 attachments announced, 200 × 60 KB binary",
                     "session ended" if ended else "session kept",
                     f"HIS handshake {status} in {ms:.1f} ms", rss))
        ok &= ended and status == 200 and rss < RSS_LIMIT_MIB
        accepted, status, ms = kiosk_flood(daemon.url)
        rss = daemon.rss()
        rows.append(("16 kiosk streams from 4 addresses", f"{accepted} accepted",
                     f"HIS /api/v1/events {status} in {ms:.1f} ms", rss))
        ok &= status == 200 and rss < RSS_LIMIT_MIB
        lines = bad_packets(feed, daemon)
        rss = daemon.rss()
        status, ms = handshake(feed, source="127.0.0.2", token=TOKEN)
        rows.append(("1 000 malformed packets", f"{lines} log lines",
                     f"HIS handshake {status} in {ms:.1f} ms", rss))
        ok &= lines <= 5 and status == 200 and rss < RSS_LIMIT_MIB
    finally:
        stop(daemon.proc)
        stop(sim)
    print(f"machine: {machine()}")
    print("terminal: tiepdon serve (login and HIS tokens required, HN212 feed on); attacker: "
          f"127.0.0.1 (and .3-.6 for the kiosk); the HIS: 127.0.0.2. Idle RSS {idle:.1f} MiB.")
    print("| attack | measured | the HIS meanwhile | daemon RSS |")
    print("|---|---|---|---|")
    for attack, measured, his, rss in rows:
        print(f"| {attack} | {measured} | {his} | {rss:.1f} MiB |")
    print(f"targets: the HIS keeps its feed and stream in every row, RSS < {RSS_LIMIT_MIB:.0f} "
          f"MiB, ≤ 5 log lines per 1 000 bad packets: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
