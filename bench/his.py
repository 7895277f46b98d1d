"""Benchmark: the HIS feeds (issue 16). The daemon runs in process over real HTTP with the
registry simulator and the in-process virtual CCCD; the HIS side is python-socketio's client
and a threaded HTTP receiver.

1. HN212 feed: chip placed (POST /api/v1/chip/demo sent) -> id 2 received by a Socket.IO client
   (websocket transport), and -> id 5; p50 / p99 over ``--reads`` reads.
2. Webhook, HIS up: verification answered -> webhook post received (p50 / p99), and posts per
   second while verifications arrive back to back.
3. Webhook backlog: the HIS is down while ``--backlog`` verifications are made, then comes back;
   time to drain, every entry received exactly once by idempotency key. The retry ceiling is
   set to 1 s here (production: 5 min, which adds up to 5 min before the drain starts).

    .venv/bin/python -m bench.his
    .venv/bin/python -m bench.his --reads 20 --backlog 100   # a quick run
"""

from __future__ import annotations

import argparse
import http.server
import statistics
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import socketio

from bench.verify import machine, pct
from readers.doubles.vcard import DemoSource, Faults, demo_card
from readers.emrtd.pa import load_trust
from terminal.app import build_services, create_app, with_feeds
from terminal.demo import demo_config
from terminal.server import BackgroundServer, bind, start_background
from terminal.settings import parse_settings
from verify.simulator.registry_sim import create_sim_app, open_registry

SECRET = "bench-webhook-secret-0123456789"


class Receiver:
    """The HIS's webhook endpoint: records arrival time per idempotency key."""

    def __init__(self, port: int = 0) -> None:
        self.arrivals: dict[str, float] = {}
        self.posts = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as an HIS server would

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.posts += 1
                    receiver.arrivals.setdefault(self.headers["Idempotency-Key"],
                                                 time.perf_counter())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def daemon(sim_url: str, data: Path, **his: Any) -> tuple[BackgroundServer, Any, int]:
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    doc = demo_config(sim_url, data)
    doc["his"] = {"hn212_port": port, **his}
    settings = parse_settings(doc, environ={})
    card, pki = demo_card(now=datetime.now(UTC), faults=Faults())
    services = build_services(settings, chip_source=DemoSource(card),
                              trust=load_trust([pki.csca_pem()]))
    if services.webhook is not None:
        services.webhook.first_retry_seconds = 0.2
        services.webhook.max_retry_seconds = 1.0
    app = with_feeds(create_app(settings, services), services, port)
    return start_background(app, extra=(sock,)), services, port


def hn212(server: BackgroundServer, port: int, reads: int) -> dict[str, list[float]]:
    got: dict[int, float] = {}
    done = threading.Condition()
    client = socketio.Client(reconnection=False)

    def on_event(data: dict[str, Any]) -> None:
        with done:
            got.setdefault(int(data["id"]), time.perf_counter())
            done.notify_all()

    client.on("/event", on_event)
    client.connect(f"http://127.0.0.1:{port}", transports=["websocket"], wait_timeout=10)
    out: dict[str, list[float]] = {"id2": [], "id5": []}
    with httpx.Client(timeout=30) as http:
        for _ in range(reads):
            got.clear()
            started = time.perf_counter()
            http.post(f"{server.url}/api/v1/chip/demo").raise_for_status()
            with done:
                done.wait_for(lambda: 5 in got, timeout=30)
            out["id2"].append((got[2] - started) * 1000)
            out["id5"].append((got[5] - started) * 1000)
    client.disconnect()
    return out


QR = "0010880{:05d}||Nguyễn Văn Thử|01012000|Nam|Hà Nội|01012022"


def webhook_up(server: BackgroundServer, receiver: Receiver, count: int
               ) -> tuple[list[float], float]:
    answered: dict[str, float] = {}
    started = time.perf_counter()
    with httpx.Client(timeout=30) as http:
        for n in range(count):
            r = http.post(f"{server.url}/api/v1/verify", json={"qr": QR.format(n)})
            answered[r.json()["credential"]["raw_fingerprint"]] = time.perf_counter()
    deadline = time.monotonic() + 60
    while len(receiver.arrivals) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    elapsed = max(receiver.arrivals.values()) - started
    # Arrival order follows answer order (one deliverer, oldest first).
    lat = [(a - b) * 1000 for a, b in zip(sorted(receiver.arrivals.values()),
                                          sorted(answered.values()), strict=False)]
    return lat, count / elapsed


def backlog(sim_url: str, data: Path, count: int) -> dict[str, float]:
    probe = Receiver()
    port = probe.port
    probe.stop()  # the HIS is down
    server, services, _ = daemon(sim_url, data, webhook_url=f"http://127.0.0.1:{port}/his",
                                 webhook_secret=SECRET)
    try:
        with httpx.Client(timeout=30) as http:
            for n in range(count):
                http.post(f"{server.url}/api/v1/verify", json={"qr": QR.format(n % 99999)})
        queued = services.webhook.outbox.count() + len(services.webhook.ledger.incoming)
        size = sum(p.stat().st_size for p in data.glob("outbox.db*"))
        receiver = Receiver(port)  # the HIS comes back
        back = time.perf_counter()
        deadline = time.monotonic() + 600
        while len(receiver.arrivals) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        drained = max(receiver.arrivals.values()) - back
        first = min(receiver.arrivals.values()) - back
        receiver.stop()
        return {"queued": queued, "received": len(receiver.arrivals), "posts": receiver.posts,
                "first_s": first, "drain_s": drained, "outbox_mb": size / 1e6}
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reads", type=int, default=100)
    ap.add_argument("--webhooks", type=int, default=200)
    ap.add_argument("--backlog", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        conn = open_registry(str(root / "registry.sqlite"), today=date.today())
        sim = start_background(create_sim_app(conn, seed=7))
        receiver = Receiver()
        server, _, port = daemon(sim.url, root / "a",
                                 webhook_url=f"http://127.0.0.1:{receiver.port}/his",
                                 webhook_secret=SECRET)
        try:
            feed = hn212(server, port, args.reads)
            receiver.arrivals.clear()
            lat, rate = webhook_up(server, receiver, args.webhooks)
        finally:
            server.stop()
            receiver.stop()
        drain = backlog(sim.url, root / "b", args.backlog)
        sim.stop()
    print(f"# bench/his.py — {machine()}")
    print()
    print(f"| HN212 feed ({args.reads} chip reads, virtual card) | p50 ms | p99 ms |")
    print("|---|---|---|")
    for key, label in (("id2", "chip placed → id 2 received"), ("id5", "→ id 5 received")):
        v = feed[key]
        print(f"| {label} | {statistics.median(v):.1f} | {pct(v, 99):.1f} |")
    print()
    print(f"| webhook, HIS up ({args.webhooks} verifications) | value |")
    print("|---|---|")
    print(f"| answer → post received, p50 ms | {statistics.median(lat):.1f} |")
    print(f"| answer → post received, p99 ms | {pct(lat, 99):.1f} |")
    print(f"| posts per second (verifications back to back) | {rate:.0f} |")
    print()
    print(f"| webhook backlog (HIS down for {args.backlog} verifications) | value |")
    print("|---|---|")
    print(f"| queued in the outbox | {drain['queued']:.0f} |")
    print(f"| outbox on disk, MB | {drain['outbox_mb']:.2f} |")
    print(f"| HIS back → first post, s | {drain['first_s']:.2f} |")
    print(f"| HIS back → all received, s | {drain['drain_s']:.2f} |")
    print(f"| received (unique keys) / posts | {drain['received']:.0f} / {drain['posts']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
