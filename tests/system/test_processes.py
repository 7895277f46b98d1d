"""The daemon as a process that is signalled and killed: ``tiepdon demo`` cleans up after
SIGTERM; ``tiepdon serve`` killed with SIGKILL while the HIS webhook holds a post sends the same
idempotency key again after the restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from terminal.demo import demo_environment
from terminal.server import BackgroundServer
from tests.helpers.cli import TIEPDON
from tests.helpers.webhook import QRS, SECRET, Receiver


def test_the_demo_cleans_up_after_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    demo = subprocess.Popen([TIEPDON, "demo", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        assert demo.stdout is not None
        url = demo.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert any(p.name.startswith("tiepdon-demo-") for p in tmp_path.iterdir())
        demo.send_signal(signal.SIGTERM)
        demo.wait(30)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert not any(p.name.startswith("tiepdon-demo-") for p in tmp_path.iterdir())


def test_the_demo_feed_admits_the_his_origin_it_was_given(tmp_path: Path) -> None:
    """``tiepdon demo --his-origin URL``: a vendor HIS page served elsewhere opens the feed."""
    his = "http://his.example:9000"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    demo = subprocess.Popen([TIEPDON, "demo", "--port", "0", "--his-origin", his],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        assert demo.stderr is not None
        feed = ""
        for _ in range(50):
            line = demo.stderr.readline()
            if line.startswith("HIS feed"):
                feed = line.split(": ", 1)[1].split()[0]
                break
        assert feed.startswith("http://127.0.0.1:"), feed
        polling = f"{feed}/socket.io/?EIO=4&transport=polling"
        allowed = httpx.get(polling, headers={"Origin": his}, timeout=10)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == his
        other = httpx.get(polling, headers={"Origin": "http://evil.example"}, timeout=10)
        assert other.status_code == 400
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(30)
        finally:
            if demo.poll() is None:
                demo.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_crash_mid_delivery_resends_the_same_key(sim: BackgroundServer, tmp_path: Path,
                                                   receiver: Receiver) -> None:
    """SIGKILL while the HIS holds the post: after the restart the same idempotency key is
    posted again, so an HIS that honours it keeps exactly one; nothing is lost."""
    receiver.mode = "hang"
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TIEPDON_")},
           **demo_environment(sim.url, tmp_path / "data"), "TIEPDON_HTTP_PORT": str(port),
           "TIEPDON_HIS_WEBHOOK_URL": receiver.url, "TIEPDON_HIS_WEBHOOK_SECRET": SECRET,
           "TIEPDON_HIS_WEBHOOK_TIMEOUT_SECONDS": "30"}

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([TIEPDON, "serve"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
                return proc
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)

    proc = start()
    try:
        for qr in QRS[:3]:
            httpx.post(f"http://127.0.0.1:{port}/api/v1/verify", json={"qr": qr},
                       timeout=10).raise_for_status()
        receiver.wait(lambda: len(receiver.posts) >= 1)
        # The bodies are written by their own task a few ms after each answer (the desk does
        # not wait for the disk): the kill comes once the three are in the outbox.
        deadline = time.monotonic() + 10
        while "tiepdon_his_webhook_written_total 3" not in httpx.get(
                f"http://127.0.0.1:{port}/metrics").text:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        held = receiver.posts[0]["key"]
        receiver.mode = "ok"
        receiver.release.set()
        proc = start()
        receiver.wait(lambda: len(receiver.delivered()) == 3)
        assert held in receiver.delivered()
        keys = [p["key"] for p in receiver.posts]
        assert len(set(keys)) == 3  # retries reuse keys: three verifications, three keys
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
