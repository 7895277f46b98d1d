"""The offline policy through the daemon over HTTP: registry first within the budget, then the
journal, then the signed snapshot; the breaker; re-checks that flag a changed outcome."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from terminal.server import BackgroundServer
from tests.helpers.cli import online_env, run
from tests.helpers.daemon import sim_control
from tests.helpers.offline import LAM, SON, offline_daemon
from tests.helpers.rawserver import raw_server
from tests.helpers.samples import NOW

DAT = {"card_code": "GD4010111077012", "full_name": "Nguyễn Tiến Đạt",
       "date_of_birth": "29/03/1988"}


@pytest.fixture
def daemon(sim: BackgroundServer, tmp_path: Path) -> Iterator[BackgroundServer]:
    server = offline_daemon(sim, tmp_path)
    yield server
    server.stop()


def verify(server: BackgroundServer, body: dict[str, str]) -> dict[str, Any]:
    r = httpx.post(f"{server.url}/api/v1/verify", json=body, timeout=30)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def codes(e: dict[str, Any]) -> list[str]:
    return [m["code"] for m in e["messages"]]


def sim_checks(sim: BackgroundServer) -> int:
    return int(httpx.get(f"{sim.url}/sim/stats").json().get("check", 0))


def test_journal_answers_a_patient_seen_online(daemon: BackgroundServer,
                                               sim: BackgroundServer) -> None:
    online = verify(daemon, DAT)
    assert online["source"] == "registry"
    sim_control(sim, fault="http500")
    offline = verify(daemon, DAT)
    assert offline["source"] == "cache" and offline["status"] == "eligible"
    assert offline["data_as_of"] == online["checked_at"]
    assert codes(offline)[0] == "offline_journal"
    assert offline["registry_code"] == "000"  # the gateway's own answer, kept


def test_snapshot_answers_a_patient_never_seen(daemon: BackgroundServer,
                                               sim: BackgroundServer) -> None:
    sim_control(sim, fault="http500")
    e = verify(daemon, SON)
    assert e["source"] == "cache" and e["status"] == "eligible"
    assert codes(e)[0] == "offline_snapshot" and e["registry_code"] is None
    assert not any(c.startswith("registry_0") for c in codes(e))
    assert e["benefit_level"] == 3 and e["valid_to"]
    by_cccd = verify(daemon, {"id_number": "001088004321", "full_name": "Nguyễn Tiến Đạt",
                              "date_of_birth": "29/03/1988"})
    assert by_cccd["source"] == "cache"


def test_nobody_knows_the_patient(daemon: BackgroundServer, sim: BackgroundServer) -> None:
    sim_control(sim, fault="http500")
    e = verify(daemon, {"card_code": "GD4019999999999", "full_name": "A", "date_of_birth": "1990"})
    assert (e["status"], e["source"]) == ("needs_review", "none")


def test_offline_name_mismatch_needs_review(daemon: BackgroundServer,
                                            sim: BackgroundServer) -> None:
    sim_control(sim, fault="http500")
    e = verify(daemon, {**SON, "full_name": "Phạm Văn Sang"})
    assert e["status"] == "needs_review" and "offline_mismatch" in codes(e)


def test_hanging_registry_costs_the_budget_then_nothing(sim: BackgroundServer,
                                                        tmp_path: Path) -> None:
    daemon = offline_daemon(sim, tmp_path, breaker_cooldown_seconds=60)
    try:
        _hang(daemon, sim)
    finally:
        daemon.stop()


def _hang(daemon: BackgroundServer, sim: BackgroundServer) -> None:
    sim_control(sim, fault="hang")
    first = verify(daemon, SON)
    assert first["source"] == "cache" and "registry_slow" in codes(first)
    deadline = time.monotonic() + 15
    while httpx.get(f"{daemon.url}/api/v1/health").json()["components"]["registry"].get(
            "breaker") != "open":
        verify(daemon, SON)
        assert time.monotonic() < deadline, "the breaker never opened"
    before = sim_checks(sim)
    e = verify(daemon, SON)
    assert e["source"] == "cache"
    assert sim_checks(sim) == before  # an open breaker sends nothing


def test_recheck_flags_a_changed_outcome(daemon: BackgroundServer,
                                         sim: BackgroundServer) -> None:
    sim_control(sim, fault="http500")
    offline = verify(daemon, LAM)  # the snapshot still has the card; the registry revoked it
    assert (offline["status"], offline["source"]) == ("eligible", "cache")
    sim_control(sim, fault="none")
    deadline = time.monotonic() + 15
    flagged: list[dict[str, Any]] = []
    while not flagged:
        assert time.monotonic() < deadline, "no re-check happened"
        time.sleep(0.2)
        flagged = httpx.get(f"{daemon.url}/api/v1/rechecks").json()
    e = flagged[0]
    assert e["recheck"] == {"changed": True, "previous_status": "eligible",
                            "previous_source": "cache",
                            "previous_checked_at": offline["checked_at"]}
    assert e["status"] == "not_eligible" and e["registry_code"] == "110"
    assert e["messages"][0]["code"] == "recheck_changed"


def test_unchanged_outcomes_are_not_flagged(daemon: BackgroundServer,
                                            sim: BackgroundServer) -> None:
    sim_control(sim, fault="http500")
    verify(daemon, SON)
    sim_control(sim, fault="none")
    time.sleep(2.0)
    assert httpx.get(f"{daemon.url}/api/v1/rechecks").json() == []


def test_401_forever_answers_from_cache(daemon: BackgroundServer,
                                        sim: BackgroundServer) -> None:
    sim_control(sim, fault="unauthorized")
    e = verify(daemon, SON)
    assert e["source"] == "cache"
    health = httpx.get(f"{daemon.url}/api/v1/health").json()
    assert health["components"]["registry"]["reason"] == "RegistryAuthError"


def resetting_server() -> tuple[str, Callable[[], None]]:
    """A 'registry' that accepts connections and resets them at once (RST)."""

    def reset(conn: socket.socket) -> None:
        linger = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")  # RST on close
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)

    return raw_server(reset)


def test_resetting_registry_answers_from_cache(sim: BackgroundServer, tmp_path: Path) -> None:
    url, close = resetting_server()
    fake = BackgroundServer(sim.server, sim.thread, "127.0.0.1", int(url.rsplit(":", 1)[1]))
    server = offline_daemon(fake, tmp_path)
    try:
        e = verify(server, SON)
        assert e["source"] == "cache" and codes(e)[0] == "offline_snapshot"
        assert "registry_unavailable" not in codes(e)
    finally:
        server.stop()
        close()


def test_expired_snapshot_says_needs_review_with_its_age(sim: BackgroundServer,
                                                         tmp_path: Path) -> None:
    server = offline_daemon(sim, tmp_path, created_days_ago=10, expires_days=7)
    try:
        sim_control(sim, fault="http500")
        e = verify(server, SON)
        assert (e["status"], e["source"]) == ("needs_review", "cache")
        expired = next(m for m in e["messages"] if m["code"] == "snapshot_expired")
        assert "10 ngày" in expired["vi"]
        health = httpx.get(f"{server.url}/api/v1/health").json()
        assert health["components"]["cache"]["status"] == "degraded"
    finally:
        server.stop()


def test_snapshot_past_the_hard_limit_is_not_used(sim: BackgroundServer,
                                                  tmp_path: Path) -> None:
    server = offline_daemon(sim, tmp_path, created_days_ago=40, expires_days=7,
                            max_age_days=30)
    try:
        sim_control(sim, fault="http500")
        e = verify(server, SON)
        assert (e["status"], e["source"]) == ("needs_review", "none")
        assert httpx.get(f"{server.url}/api/v1/health").json()["components"]["cache"][
            "status"] == "down"
    finally:
        server.stop()


def test_a_snapshot_made_in_the_future_is_not_used(sim: BackgroundServer,
                                                  tmp_path: Path) -> None:
    """Signed as made 20 days ahead — or a desk clock set back: its age and expiry mean
    nothing. It answered as fresh (health ok, no expiry note) while `cache info` said
    unusable; now one rule, and it is not used."""
    server = offline_daemon(sim, tmp_path, created_days_ago=-20, expires_days=30)
    try:
        sim_control(sim, fault="http500")
        e = verify(server, SON)
        assert (e["status"], e["source"]) == ("needs_review", "none")
        cache = httpx.get(f"{server.url}/api/v1/health").json()["components"]["cache"]
        assert cache["status"] == "down" and "future" in cache["reason"], cache
    finally:
        server.stop()


def test_slow_registry_late_answer_is_kept(sim: BackgroundServer, tmp_path: Path) -> None:
    server = offline_daemon(sim, tmp_path, budget_seconds=0.3, breaker_cooldown_seconds=60)
    try:
        sim_control(sim, latency_ms=1200)
        first = verify(server, SON)
        assert first["source"] == "cache" and "registry_slow" in codes(first)
        time.sleep(1.5)  # the late answer arrives and goes into the journal
        sim_control(sim, fault="http500")
        again = verify(server, SON)
        assert again["source"] == "cache" and codes(again)[0] == "offline_journal"
        assert httpx.get(f"{server.url}/api/v1/rechecks").json() == []  # same outcome
    finally:
        server.stop()


def test_a_journal_row_deleted_offline_makes_the_snapshot_answer_need_review(
        daemon: BackgroundServer, sim: BackgroundServer, tmp_path: Path) -> None:
    """Seen online this morning, the row then deleted by hand: the older snapshot must not
    speak for the patient as if nothing had been said since."""
    import sqlite3

    assert verify(daemon, DAT)["source"] == "registry"
    conn = sqlite3.connect(tmp_path / "data" / "journal.db")
    conn.execute("DELETE FROM entry")
    conn.commit()
    conn.close()
    sim_control(sim, fault="http500")
    e = verify(daemon, DAT)
    assert e["source"] == "cache" and e["status"] == "needs_review"
    assert "offline_journal_tampered" in codes(e)
    health = httpx.get(f"{daemon.url}/api/v1/health").json()
    assert health["components"]["cache"]["journal_intact"] is False


def test_check_answers_offline_as_the_daemon_does(daemon: BackgroundServer,
                                                  sim: BackgroundServer, tmp_path: Path) -> None:
    """`tiepdon check` run as the daemon's user reads the daemon's journal (never writes it):
    the registry down, it gave needs_review / source none where the desk said eligible."""
    verify(daemon, DAT)
    journal = tmp_path / "data" / "journal.db"
    before = journal.read_bytes()
    sim_control(sim, fault="http500")
    try:
        http = verify(daemon, DAT)
        p = run("check", "--card", DAT["card_code"], "--name", DAT["full_name"],
                "--dob", DAT["date_of_birth"],
                env={**online_env(sim, tmp_path), "TIEPDON_CLOCK": NOW.isoformat()})
    finally:
        sim_control(sim, fault="none")
    assert p.returncode == 0, p.stderr
    cli = json.loads(p.stdout)
    assert codes(cli)[0] == codes(http)[0] == "offline_journal"
    for name in ("status", "source", "registry_code", "benefit_level", "benefit_percent",
                 "valid_from", "valid_to", "data_as_of", "is_registered_here"):
        assert cli[name] == http[name], name
    assert journal.read_bytes() == before  # read, never written
    # Without the daemon's key (another user): no journal, the one-shot answer as before.
    other = run("check", "--card", DAT["card_code"], "--name", DAT["full_name"], "--dob",
                DAT["date_of_birth"], "--offline",
                env={**online_env(sim, tmp_path), "TIEPDON_DATA_DIR": str(tmp_path / "x")})
    assert json.loads(other.stdout)["source"] == "none"
