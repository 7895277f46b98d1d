"""The HIS webhook against a real HTTP receiver that answers, fails, hangs, is down and comes
back; the daemon in process (real HTTP, real SQLite). The crash, ``tiepdon serve`` killed with
SIGKILL mid-delivery, is in tests/system/test_processes.py."""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from readers.doubles.vcard import DemoSource, Faults, demo_card
from readers.emrtd.pa import load_trust
from terminal.app import Services, build_services, create_app
from terminal.server import BackgroundServer, start_background
from tests.helpers.chip import pki
from tests.helpers.daemon import sim_control, terminal_settings
from tests.helpers.offline import LAM, offline_daemon
from tests.helpers.samples import NOW
from tests.helpers.webhook import QRS, SECRET, Receiver
from verify.adapters.outbox import Outbox


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


def test_a_terminal_key_change_is_counted_logged_once_and_shown(
        sim: BackgroundServer, tmp_path: Path, receiver: Receiver,
        caplog: pytest.LogCaptureFixture) -> None:
    receiver.mode = "fail"
    data = tmp_path / "data"
    server, _ = serve(sim, data, receiver.url)
    for qr in QRS[:3]:
        verify(server, qr)
    receiver.wait(lambda: len(receiver.posts) >= 1)
    server.stop()  # three entries sealed under the old key wait in the outbox
    (data / "terminal.key").write_bytes(secrets.token_bytes(32))  # the key was rotated
    receiver.mode = "ok"
    with caplog.at_level(logging.INFO):
        server, services = serve(sim, data, receiver.url)
        try:
            verify(server, QRS[3])
            receiver.wait(lambda: len(receiver.delivered()) == 1)  # a round ran after the start
            (only,) = receiver.delivered().values()
            assert only["body"]["id_card"] == "001088000003"  # the old three cannot be read
            metrics = httpx.get(f"{server.url}/metrics").text
            assert 'tiepdon_his_webhook_lost_total{reason="key_changed"} 3' in metrics
            assert "tiepdon_his_webhook_waiting 0" in metrics
            health = httpx.get(f"{server.url}/api/v1/health").json()["components"]
            assert health["his_webhook"] == {
                "status": "degraded",
                "reason": "HIS webhook: 3 entries lost (terminal key changed); 0 waiting"}
            assert services.webhook is not None
            services.webhook.keep_seconds = 0.0  # the privacy window has passed: seen, ok again
            hook = httpx.get(f"{server.url}/api/v1/health").json()["components"]["his_webhook"]
            assert hook == {"status": "ok", "reason": "0 waiting"}
            metrics = httpx.get(f"{server.url}/metrics").text  # the counter stays
            assert 'tiepdon_his_webhook_lost_total{reason="key_changed"} 3' in metrics
        finally:
            server.stop()
    outbox_lines = [r.getMessage() for r in caplog.records
                    if r.name in ("verify.adapters.outbox", "terminal.feeds.webhook",
                                  "terminal.feeds.ledger") and r.levelno >= logging.WARNING]
    lost = [line for line in outbox_lines if "key" in line]
    assert len(lost) == 1 and "3" in lost[0], outbox_lines
    assert not any("failed its tag" in line for line in outbox_lines), outbox_lines


def test_an_outbox_from_before_the_key_check_finds_a_changed_key(tmp_path: Path) -> None:
    old = Outbox(tmp_path, secrets.token_bytes(32))
    for n in range(4):
        assert old.put(f"e{n}", b"body", now=1000.0 + n)
    old.close()
    with sqlite3.connect(tmp_path / "outbox.db") as conn:  # a file written before the check
        conn.execute("DROP TABLE meta")
    key = secrets.token_bytes(32)
    new = Outbox(tmp_path, key)
    try:
        assert (new.key_changed, new.count()) == (4, 0)
        assert new.put("e9", b"body", now=2000.0)
    finally:
        new.close()
    again = Outbox(tmp_path, key)  # the same key again: nothing goes
    try:
        assert (again.key_changed, again.count()) == (0, 1)
    finally:
        again.close()


def test_edited_entries_are_dropped_counted_and_logged_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = secrets.token_bytes(32)
    outbox = Outbox(tmp_path, key)
    for n in range(3):
        assert outbox.put(f"e{n}", b"body", now=1000.0 + n)
    outbox.close()
    with sqlite3.connect(tmp_path / "outbox.db") as conn:
        conn.execute("UPDATE outbox SET body = zeroblob(length(body)) WHERE id != 'e1'")
    outbox = Outbox(tmp_path, key)
    try:
        assert outbox.key_changed == 0  # the key is the same: only the edited rows go
        with caplog.at_level(logging.WARNING, logger="verify.adapters.outbox"):
            entries, dropped = outbox.due(now=2000.0)
        assert [e.id for e in entries] == ["e1"] and dropped == 2 and outbox.count() == 1
        assert [r.getMessage() for r in caplog.records] == [
            "outbox: 2 entries failed their tag; dropped"]
    finally:
        outbox.close()


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


def test_a_changed_offline_answer_is_posted_again(sim: BackgroundServer, tmp_path: Path,
                                                  receiver: Receiver) -> None:
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
