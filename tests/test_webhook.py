"""The HIS webhook against a real HTTP receiver that answers, fails, hangs, is down and comes
back; the daemon in process (real HTTP, real SQLite) and, for the crash, as ``tiepdon serve``
killed with SIGKILL mid-delivery."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from readers.doubles.vcard import DemoSource, Faults, demo_card
from readers.emrtd.pa import load_trust
from terminal.app import Services, build_services, create_app
from terminal.demo import demo_environment
from terminal.server import BackgroundServer, start_background
from tests.conftest import NOW, sim_control, terminal_settings
from tests.test_cli import TIEPDON
from tests.test_pcsc import pki
from verify import webhook

SECRET = "webhook-secret-for-tests-0123"
QRS = [f"0010880{n:05d}||Nguyễn Văn Thử|01012000|Nam|Hà Nội|01012022" for n in range(40)]


@dataclass
class Receiver:
    """The HIS endpoint. ``mode``: ok | fail (500) | reject (400) | hang (reads the body, never
    answers). Posts are recorded with whether their signature verified."""

    mode: str = "ok"
    posts: list[dict[str, Any]] = field(default_factory=list)
    got: threading.Condition = field(default_factory=threading.Condition)
    server: http.server.ThreadingHTTPServer | None = None
    port: int = 0
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/his/checkin"

    def start(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                stamp = int(self.headers[webhook.TIMESTAMP_HEADER])
                post = {"key": self.headers[webhook.IDEMPOTENCY_HEADER],
                        "signed": webhook.valid_signature(
                            SECRET.encode(), stamp, data, self.headers[webhook.SIGNATURE_HEADER]),
                        "body": json.loads(data), "mode": receiver.mode}
                with receiver.got:
                    receiver.posts.append(post)
                    receiver.got.notify_all()
                if receiver.mode == "hang":
                    receiver.release.wait(60)
                    return
                status = {"ok": 200, "fail": 500, "reject": 400, "missing": 404}[receiver.mode]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.release.set()
            self.server.shutdown()
            self.server.server_close()
            self.server = None
            self.release = threading.Event()

    def delivered(self) -> dict[str, dict[str, Any]]:
        """Unique deliveries by idempotency key, as an HIS that honours the key keeps them."""
        return {p["key"]: p for p in self.posts if p["mode"] == "ok"}

    def wait(self, check: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with self.got:
            while not check():
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.posts)} posts"
                self.got.wait(min(left, 0.2))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.stop()


def serve(sim: BackgroundServer, data: Path, url: str, **overrides: object
          ) -> tuple[BackgroundServer, Services]:
    settings = terminal_settings(sim.url, data, his__webhook_url=url,
                                 his__webhook_secret=SECRET, **overrides)
    card = demo_card(now=NOW, faults=Faults(), pki=pki())[0]
    services = build_services(settings, now=lambda: NOW, chip_source=DemoSource(card),
                              trust=load_trust([pki().csca_pem()]))
    assert services.webhook is not None
    services.webhook.first_retry_seconds = services.webhook.max_retry_seconds = 0.3
    return start_background(create_app(settings, services)), services


def verify(server: BackgroundServer, qr: str) -> None:
    httpx.post(f"{server.url}/api/v1/verify", json={"qr": qr}, timeout=10).raise_for_status()


def test_each_verification_is_posted_once_signed(sim: BackgroundServer, tmp_path: Path,
                                                 receiver: Receiver) -> None:
    server, _ = serve(sim, tmp_path / "data", receiver.url)
    try:
        verify(server, QRS[0])
        httpx.post(f"{server.url}/api/v1/chip/demo", timeout=30).raise_for_status()
        receiver.wait(lambda: len(receiver.posts) >= 2)
        time.sleep(0.3)
        assert len(receiver.posts) == 2  # the chip read is one post, not identity + final
        qr, chip = (p["body"] for p in receiver.posts)
        assert all(p["signed"] for p in receiver.posts)
        assert all(p["key"] == p["body"]["event_id"] for p in receiver.posts)
        assert qr["id_card"] == "001088000000" and qr["full_name"] == "Nguyễn Văn Thử"
        assert qr["date_of_birth"] == "01/01/2000" and qr["id_img"] == ""
        assert qr["eligibility"]["status"] in ("eligible", "not_eligible", "needs_review")
        assert chip["credential_kind"] == "chip" and chip["father_name"] == "Nguyễn Văn Hải"
        assert chip["id_img"].startswith("/9j/")  # the JPEG portrait, base64
        assert chip["eligibility"]["status"] == "eligible"
        assert (chip["verdict"], chip["passive_auth"], chip["chip_auth"]) == (
            "verified", "authentic", "passed")
        assert (qr["verdict"], qr["passive_auth"]) == ("", "")
        h = httpx.get(f"{server.url}/api/v1/health").json()["components"]["his_webhook"]
        assert h == {"status": "ok", "reason": "0 waiting"}
        metrics = httpx.get(f"{server.url}/metrics").text
        assert "tiepdon_his_webhook_delivered_total 2" in metrics
        assert "tiepdon_his_webhook_waiting 0" in metrics
    finally:
        server.stop()


def test_nothing_is_lost_while_the_his_is_down_and_the_desk_is_not_slowed(
        sim: BackgroundServer, tmp_path: Path, receiver: Receiver) -> None:
    port = receiver.port
    receiver.stop()  # the HIS is down: connections refused
    server, services = serve(sim, tmp_path / "data", f"http://127.0.0.1:{port}/his/checkin")
    try:
        for qr in QRS[:20]:
            verify(server, qr)  # answered while every post fails
        health = httpx.get(f"{server.url}/api/v1/health").json()["components"]["his_webhook"]
        assert health["status"] == "degraded" and "20 waiting" in health["reason"]
        receiver.port = port
        receiver.start()
        receiver.wait(lambda: len(receiver.delivered()) >= 20)
        assert sorted(p["body"]["id_card"] for p in receiver.delivered().values()) == sorted(
            f"0010880{n:05d}" for n in range(20))
        assert services.webhook is not None
        deadline = time.monotonic() + 10  # the last delete follows the HIS's answer
        while services.webhook.outbox.count() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert services.webhook.outbox.count() == 0
    finally:
        server.stop()


def test_a_hanging_his_is_cut_off_and_tried_again(sim: BackgroundServer, tmp_path: Path,
                                                   receiver: Receiver) -> None:
    receiver.mode = "hang"
    server, _ = serve(sim, tmp_path / "data", receiver.url, his__webhook_timeout_seconds=0.5)
    try:
        verify(server, QRS[0])
        verify(server, QRS[1])  # the desk answers while the HIS hangs
        receiver.wait(lambda: len(receiver.posts) >= 2)  # cut off, then the same entry again
        assert receiver.posts[0]["key"] == receiver.posts[1]["key"]
        receiver.mode = "ok"
        receiver.wait(lambda: len(receiver.delivered()) == 2)
    finally:
        server.stop()


def test_the_outbox_survives_a_restart_and_is_encrypted(sim: BackgroundServer, tmp_path: Path,
                                                        receiver: Receiver) -> None:
    receiver.mode = "fail"
    data = tmp_path / "data"
    server, _ = serve(sim, data, receiver.url)
    for qr in QRS[:3]:
        verify(server, qr)
    receiver.wait(lambda: len(receiver.posts) >= 1)
    server.stop()
    stored = b"".join(p.read_bytes() for p in data.glob("outbox.db*"))
    assert "Nguyễn Văn Thử".encode() not in stored and b"001088000001" not in stored
    assert (data / "outbox.db").stat().st_mode & 0o777 == 0o600
    receiver.mode = "ok"
    server, _ = serve(sim, data, receiver.url)
    try:
        receiver.wait(lambda: len(receiver.delivered()) == 3)
    finally:
        server.stop()


def test_a_refused_entry_is_dropped_after_ten_tries_and_others_go_on(
        sim: BackgroundServer, tmp_path: Path, receiver: Receiver) -> None:
    receiver.mode = "reject"
    server, services = serve(sim, tmp_path / "data", receiver.url)
    assert services.webhook is not None
    services.webhook.first_retry_seconds = services.webhook.max_retry_seconds = 0.05
    try:
        verify(server, QRS[0])
        receiver.wait(lambda: len(receiver.posts) >= 10)
        time.sleep(0.3)
        assert len(receiver.posts) == 10 and services.webhook.counts["rejected"] == 1
        receiver.mode = "ok"
        verify(server, QRS[1])
        receiver.wait(lambda: len(receiver.delivered()) == 1)
    finally:
        server.stop()


def test_a_misconfigured_receiver_holds_entries_back_never_drops_them(
        sim: BackgroundServer, tmp_path: Path, receiver: Receiver) -> None:
    receiver.mode = "missing"  # 404: the HIS's route is wrong, not the entry
    server, services = serve(sim, tmp_path / "data", receiver.url)
    assert services.webhook is not None
    services.webhook.first_retry_seconds = services.webhook.max_retry_seconds = 0.05
    try:
        verify(server, QRS[0])
        receiver.wait(lambda: len(receiver.posts) >= 15)
        assert services.webhook.counts["rejected"] == 0 and services.webhook.waiting() == 1
        receiver.mode = "ok"
        receiver.wait(lambda: len(receiver.delivered()) == 1)
    finally:
        server.stop()


def test_entries_past_the_privacy_window_are_dropped(sim: BackgroundServer, tmp_path: Path,
                                                     receiver: Receiver) -> None:
    receiver.mode = "fail"
    server, services = serve(sim, tmp_path / "data", receiver.url)
    assert services.webhook is not None
    try:
        verify(server, QRS[0])
        receiver.wait(lambda: len(receiver.posts) >= 1)
        services.webhook.keep_seconds = 0.0
        deadline = time.monotonic() + 10
        while services.webhook.counts["expired"] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert services.webhook.counts["expired"] == 1
        assert services.webhook.outbox.count() == 0
    finally:
        server.stop()


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


def test_a_changed_offline_answer_is_posted_again(sim: BackgroundServer, tmp_path: Path,
                                                  receiver: Receiver) -> None:
    from tests.test_offline import LAM, offline_daemon

    server = offline_daemon(sim, tmp_path, his={"webhook_url": receiver.url,
                                                "webhook_secret": SECRET})
    try:
        sim_control(sim, fault="http500")
        offline = httpx.post(f"{server.url}/api/v1/verify", json=LAM, timeout=10).json()
        assert (offline["status"], offline["source"]) == ("eligible", "cache")
        sim_control(sim, fault="none")  # the registry is back: the re-check finds a revoked card
        receiver.wait(lambda: len(receiver.delivered()) >= 2)
        first, again = (p["body"] for p in receiver.posts[:2])
        assert first["eligibility"]["status"] == "eligible" and "recheck" not in first
        assert again["recheck"]["previous_status"] == "eligible"
        assert again["eligibility"]["status"] == "not_eligible"
        assert again["card_code"] == first["card_code"] == LAM["card_code"]
        assert again["event_id"] != first["event_id"]
    finally:
        server.stop()
