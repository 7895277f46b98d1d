"""The chip flow in the daemon over HTTP, with the in-process virtual card (the demo's source):
identity → eligibility → photo, in that order on the event stream; failures as staff messages."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from readers.doubles.vcard import (
    DEMO_PERSON,
    CardProcessPort,
    DemoSource,
    Faults,
    VirtualCccd,
    build_files,
    demo_card,
    make_atr,
)
from readers.emrtd.apdu import CardPort
from readers.emrtd.pa import PaStatus, load_trust
from readers.errors import CardRemoved
from terminal.chip.source import read_from_source
from terminal.server import BackgroundServer
from tests.helpers.chip import pki, serve
from tests.helpers.cli import run
from tests.helpers.daemon import read_events
from tests.helpers.samples import NOW

QR = "001088004321||Nguyễn Tiến Đạt|29031988|Nam|Hà Nội|01072021"


@pytest.fixture
def chip_daemon(sim: BackgroundServer, tmp_path: Path) -> Iterator[BackgroundServer]:
    server = serve(sim, tmp_path)
    yield server
    server.stop()


def test_demo_card_events_in_order(chip_daemon: BackgroundServer) -> None:
    events: list[tuple[str, dict[str, object]]] = []
    ready = threading.Event()
    reader = threading.Thread(target=read_events, args=(chip_daemon.url, 3, ready, events))
    reader.start()
    assert ready.wait(10)
    r = httpx.post(f"{chip_daemon.url}/api/v1/chip/demo", timeout=30)
    reader.join(10)
    assert r.status_code == 200
    assert [name for name, _ in events] == ["credential", "eligibility", "photo"]
    credential = events[0][1]
    assert credential["kind"] == "chip" and credential["father_name"] == "Nguyễn Văn Hải"
    assert credential["passive_auth"] == {"status": "authentic", "reason": None}
    assert events[1][1]["status"] == "needs_review" and events[1][1]["provisional"] is True
    assert r.json()["eligibility"]["status"] == "eligible"  # settled once the read ended
    photo = events[2][1]
    assert photo["format"] == "jpeg" and str(photo["url"]).startswith("/api/v1/photo")
    image = httpx.get(f"{chip_daemon.url}{photo['url']}")
    assert image.content[:3] == b"\xff\xd8\xff"


def test_read_with_typed_mrz_data(chip_daemon: BackgroundServer) -> None:
    r = httpx.post(f"{chip_daemon.url}/api/v1/chip/read", json={
        "document_number": "001088004321", "date_of_birth": "880329",
        "date_of_expiry": "280329"}, timeout=30)
    assert r.status_code == 200
    body = r.json()
    assert body["mrz"]["date_of_expiry"] == "280329" and body["apdus"] <= 12
    assert body["eligibility"]["person"]["full_name"] == "Nguyễn Tiến Đạt"


@pytest.mark.parametrize(("body", "code"), [
    ({"document_number": "088004321", "date_of_birth": "880329", "date_of_expiry": "280330"},
     "chip_access_denied"),
    ({"document_number": "088004321", "date_of_birth": "8803", "date_of_expiry": "280330"},
     "mrz_format"),
    ({"qr": "not a qr"}, "qr_format"),
    ({"document_number": "088004321", "mrz_line2": "8803299M2803297VNM<<<<<<<<<<<4"},
     "mrz_format"),
])
def test_bad_keys_are_staff_messages(chip_daemon: BackgroundServer, body: dict[str, str],
                                     code: str) -> None:
    r = httpx.post(f"{chip_daemon.url}/api/v1/chip/read", json=body, timeout=30)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == code and err["vi"] and err["en"]
    assert httpx.post(f"{chip_daemon.url}/api/v1/chip/read", json={"qr": QR},
                      timeout=30).status_code == 200


def test_failed_chip_is_never_eligible(sim: BackgroundServer, tmp_path: Path) -> None:
    server = serve(sim, tmp_path, Faults(tamper_dg=13))
    try:
        body = httpx.post(f"{server.url}/api/v1/chip/demo", timeout=30).json()
        assert body["passive_auth"] == {"status": "failed", "reason": "dg13_hash_mismatch"}
        e = body["eligibility"]
        assert e["status"] == "needs_review"
        assert any(m["code"] == "chip_pa_failed" and "dg13_hash_mismatch" in m["vi"]
                   for m in e["messages"])
    finally:
        server.stop()


def test_unanchored_is_a_warning(sim: BackgroundServer, tmp_path: Path) -> None:
    server = serve(sim, tmp_path, trusted=False)
    try:
        body = httpx.post(f"{server.url}/api/v1/chip/demo", timeout=30).json()
        assert body["passive_auth"]["status"] == "unanchored"
        assert any(m["code"] == "chip_unanchored" and m["severity"] == "warning"
                   for m in body["eligibility"]["messages"])
    finally:
        server.stop()


def test_torn_card_asks_to_hold_still(sim: BackgroundServer, tmp_path: Path) -> None:
    server = serve(sim, tmp_path, Faults(torn_after=6))
    try:
        r = httpx.post(f"{server.url}/api/v1/chip/demo", timeout=30)
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "chip_card_removed"
        assert httpx.get(f"{server.url}/api/v1/photo").status_code == 404
        assert httpx.get(f"{server.url}/api/v1/photo", params={"fp": "0" * 12}
                         ).status_code == 404
        health = httpx.get(f"{server.url}/api/v1/health").json()
        assert health["components"]["chip_reader"]["status"] == "degraded"
    finally:
        server.stop()


def test_photo_is_404_before_any_read(chip_daemon: BackgroundServer) -> None:
    assert httpx.get(f"{chip_daemon.url}/api/v1/photo").status_code == 404


def test_a_photo_is_served_only_for_the_patient_it_was_read_from(
        chip_daemon: BackgroundServer) -> None:
    url = chip_daemon.url
    a = httpx.post(f"{url}/api/v1/chip/demo", timeout=30).json()["raw_fingerprint"]
    b = httpx.post(f"{url}/api/v1/verify", timeout=30, json={
        "qr": "001088000001||Trần Thị Bình|01012000|Nữ|Hà Nội|01012022"},
                   ).json()["credential"]["raw_fingerprint"]
    assert a and b and a != b
    mine = httpx.get(f"{url}/api/v1/photo", params={"fp": a})
    assert mine.status_code == 200 and mine.content[:3] == b"\xff\xd8\xff"
    for params in ({"fp": b}, {}, {"fp": ""}, {"fp": a.upper()}, {"fp": a[:-1]}):
        r = httpx.get(f"{url}/api/v1/photo", params=params)
        assert (r.status_code, r.headers["content-type"]) == (404, "application/json"), params


def test_demo_route_only_on_demo_terminals(daemon: BackgroundServer) -> None:
    assert httpx.post(f"{daemon.url}/api/v1/chip/demo", timeout=30).status_code == 404


class ClaimsExtended(DemoSource):
    """A card whose ATR offers extended length that it then refuses (6700)."""

    def connect(self) -> tuple[CardPort, bytes]:
        port, _ = super().connect()
        return port, make_atr(True)


def test_extended_length_refused_falls_back_to_short() -> None:
    faults = Faults(extended=False)
    card = VirtualCccd(build_files(DEMO_PERSON, pki(), faults=faults, now=NOW),
                       DEMO_PERSON.access_key, faults)
    result = read_from_source(ClaimsExtended(card), [DEMO_PERSON.access_key],
                              extended_mode="auto", retries=0,
                              trust=load_trust([pki().csca_pem()]), now=NOW)
    assert result.passive_auth.status is PaStatus.AUTHENTIC
    assert result.apdus > 12  # it was the short-length read that succeeded


def test_a_dg14_this_terminal_cannot_use_needs_review_but_is_not_a_copy(
        sim: BackgroundServer, tmp_path: Path) -> None:
    """Issue 22: CA the signed DG14 offers in a way we cannot run is ``not_verified`` on the
    answer and the chip event — needs review, never "copy suspected", never verified."""
    server = serve(sim, tmp_path, Faults(ca="unsupported"))
    try:
        events: list[tuple[str, dict[str, object]]] = []
        ready = threading.Event()
        reader = threading.Thread(target=read_events, args=(server.url, 5, ready, events))
        reader.start()
        assert ready.wait(10)
        body = httpx.post(f"{server.url}/api/v1/chip/demo", timeout=30).json()
        reader.join(10)
        assert (body["passive_auth"]["status"], body["chip_auth"]) == ("authentic",
                                                                       "not_verified")
        codes = [m["code"] for m in body["eligibility"]["messages"]]
        assert body["eligibility"]["status"] == "needs_review"
        assert "chip_check_not_done" in codes and "chip_copy_suspected" not in codes
        chip = dict(events)["chip"]
        assert (chip["verdict"], chip["status"]) == ("not_verified", "needs_review")
        # The first desk with such cards notices at once: counted, and health says why.
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'tiepdon_chip_checks_total{check="CA",result="not_verified"} 1' in metrics
        reader_health = httpx.get(f"{server.url}/api/v1/health").json()["components"][
            "chip_reader"]
        assert reader_health["status"] == "degraded"
        assert "chip authentication not done" in reader_health["reason"]
    finally:
        server.stop()


@pytest.mark.parametrize(("faults", "aa", "ca", "checks"), [
    (Faults(aa="ec_wrong"), "failed", "passed", "AA"),
    (Faults(aa="ec_wrong", com_hides=(15,)), "failed", "passed", "AA"),
    (Faults(ca="clone"), "not_supported", "failed", "CA"),
    (Faults(ca="clone", com_hides=(14,)), "not_supported", "failed", "CA"),
], ids=["aa-clone", "aa-clone-hiding-dg15-from-ef-com", "ca-clone",
        "ca-clone-hiding-dg14-from-ef-com"])
def test_a_cloned_chip_is_needs_review_everywhere(sim: BackgroundServer, tmp_path: Path,
                                                  faults: Faults, aa: str, ca: str,
                                                  checks: str) -> None:
    """Genuine signed data groups, another chip's key: passive authentication passes, Active
    or Chip Authentication fails. AA runs after the identity is shown: the identity-time
    answer is provisional (needs_review, "reading the chip"), never "eligible" — it said
    eligible on every channel until the read ended (found by a review) — and the final word
    says why on the event stream, the answer, /last, the HIS check-in and the audit. CA runs
    before the identity is read: its failure is in the first answer already."""
    after_identity = checks == "AA"
    server = serve(sim, tmp_path, faults)
    try:
        events: list[tuple[str, dict[str, object]]] = []
        ready = threading.Event()
        reader = threading.Thread(target=read_events, args=(server.url, 5, ready, events))
        reader.start()
        assert ready.wait(10)
        body = httpx.post(f"{server.url}/api/v1/chip/demo", timeout=30).json()
        reader.join(10)
        assert body["passive_auth"]["status"] == "authentic"
        assert (body["active_auth"], body["chip_auth"]) == (aa, ca)
        e = body["eligibility"]
        assert e["status"] == "needs_review"
        codes = [m["code"] for m in e["messages"]]
        assert "chip_copy_suspected" in codes and "chip_authentic" not in codes
        copy = next(m for m in e["messages"] if m["code"] == "chip_copy_suspected")
        assert f"({checks})" in copy["vi"]
        names = [n for n, _ in events]
        assert names == ["credential", "eligibility", "photo", "eligibility", "chip"]
        first, settled = events[1][1], events[3][1]
        assert first["status"] == "needs_review" and first["provisional"] is True
        messages = first["messages"]
        assert isinstance(messages, list)
        first_codes = [m["code"] for m in messages]
        assert "chip_read_in_progress" in first_codes and "chip_authentic" not in first_codes
        assert ("chip_copy_suspected" in first_codes) is not after_identity  # CA: known already
        assert settled["status"] == "needs_review" and "provisional" not in settled
        assert events[-1][1]["verdict"] == "copy_suspected"
        assert events[-1][1]["status"] == "needs_review"
        last = httpx.get(f"{server.url}/api/v1/last").json()
        assert last["status"] == "needs_review"
        assert (last["credential"]["active_auth"], last["credential"]["chip_auth"]) == (aa, ca)
        checkin = httpx.get(f"{server.url}/api/v1/last/checkin")
        assert checkin.status_code == 200 and checkin.json()["status"] == "needs_review"
        app: Any = server.server.config.app
        app.state.services.verifier.drain()
        exported = run("audit", "export", env={"TIEPDON_DATA_DIR": str(tmp_path / "data")})
        statuses = [json.loads(x)["TIEPDON_STATUS"] for x in exported.stdout.splitlines()]
        metrics = httpx.get(f"{server.url}/metrics").text
        assert statuses == ["needs_review", "needs_review"]  # provisional, then settled
        assert "tiepdon_decisions_amended_total{" not in metrics  # settled, not amended
        assert metrics.count("tiepdon_verifications_total{status=") == 1  # once, settled
        assert 'tiepdon_verifications_total{status="needs_review"' in metrics
    finally:
        server.stop()


def test_a_genuine_card_is_provisional_until_its_read_ends(sim: BackgroundServer,
                                                           tmp_path: Path) -> None:
    """A genuine card with Active Authentication, read slowly: until AA and the photo are
    done, no channel says "eligible" — the kiosk shows nothing but "reading" (it said "card
    valid, please sit" before AA had run), the audit's first record is needs_review; the
    settled answer is eligible, counted once as eligible, not as an amendment."""
    server = serve(sim, tmp_path, Faults(aa="ec", slow_ms=20))
    kiosk: list[str] = []
    ready = threading.Event()

    def watch_kiosk() -> None:
        with httpx.stream("GET", f"{server.url}/api/v1/kiosk/events", timeout=30) as r:
            for line in r.iter_lines():
                if line.startswith(": connected"):
                    ready.set()
                if line.startswith("data: {") and "status" in line:
                    kiosk.append(line)
                    return

    try:
        watcher = threading.Thread(target=watch_kiosk)
        watcher.start()
        assert ready.wait(10)
        body = httpx.post(f"{server.url}/api/v1/chip/demo", timeout=60).json()
        watcher.join(10)
        assert body["active_auth"] == "passed" and body["eligibility"]["status"] == "eligible"
        assert "provisional" not in body["eligibility"]
        assert len(kiosk) == 1 and json.loads(kiosk[0][6:])["status"] == "eligible"
        app: Any = server.server.config.app
        app.state.services.verifier.drain()
        exported = run("audit", "export", env={"TIEPDON_DATA_DIR": str(tmp_path / "data")})
        statuses = [json.loads(x)["TIEPDON_STATUS"] for x in exported.stdout.splitlines()]
        assert statuses == ["needs_review", "eligible"]
        metrics = httpx.get(f"{server.url}/metrics").text
        assert metrics.count("tiepdon_verifications_total{status=") == 1
        assert 'tiepdon_verifications_total{status="eligible"' in metrics
        assert "tiepdon_decisions_amended_total{" not in metrics
    finally:
        server.stop()


def test_a_genuine_aa_chip_ends_verified(sim: BackgroundServer, tmp_path: Path) -> None:
    server = serve(sim, tmp_path, Faults(aa="ec", com_hides=(15,)))
    try:
        body = httpx.post(f"{server.url}/api/v1/chip/demo", timeout=30).json()
        assert body["active_auth"] == "passed"  # found through the SOD, not EF.COM
        assert body["chip_auth"] == "passed"
        assert body["eligibility"]["status"] == "eligible"
        assert body["verdict"] == "verified"  # as `card read` prints it (it was CLI-only)
    finally:
        server.stop()


def test_the_chip_json_says_why_ca_could_not_run(sim: BackgroundServer,
                                                  tmp_path: Path) -> None:
    """CONTRACT: not_verified "with a reason" — the chip JSON had no reason on any path."""
    server = serve(sim, tmp_path, Faults(ca="unsupported"))
    try:
        body = httpx.post(f"{server.url}/api/v1/chip/demo", timeout=30).json()
        assert body["chip_auth"] == "not_verified" and body["verdict"] == "not_verified"
        assert "unsupported" in body["chip_auth_reason"]
    finally:
        server.stop()


def test_a_card_pulled_after_identity_is_not_left_verified(sim: BackgroundServer,
                                                          tmp_path: Path) -> None:
    """Torn during the photo, never back: the identity-time answer is withdrawn."""
    server = serve(sim, tmp_path, Faults(torn_after=30, extended=False))  # identity at 17
    try:
        r = httpx.post(f"{server.url}/api/v1/chip/demo", timeout=30)
        assert r.status_code == 422
        last = httpx.get(f"{server.url}/api/v1/last").json()
        assert last["status"] == "needs_review"
        assert any(m["code"] == "chip_read_incomplete" for m in last["messages"])
    finally:
        server.stop()


class ComesBack:
    """A reader whose card is torn at APDU 31 (during DG2), then absent for ``away`` seconds
    (connect raises, as pcsc.connect does with no card), then placed back."""

    name = "test reader"
    demo_keys = None

    def __init__(self, away: float) -> None:
        self.away = away
        self.card = demo_card(now=NOW, faults=Faults(tear_at=(31,), extended=False),
                              pki=pki())[0]
        self.gone_at: float | None = None
        self.waits = 0

    def connect(self) -> tuple[CardPort, bytes]:
        if self.gone_at is None and self.card.apdus >= 31:
            self.gone_at = time.monotonic()
        if self.gone_at is not None and time.monotonic() - self.gone_at < self.away:
            self.waits += 1
            raise CardRemoved("no card on the reader")
        self.card.reset()
        return CardProcessPort(self.card), self.card.atr


@pytest.mark.parametrize("away", [0.1, 1.5, 4.0])
def test_a_card_placed_back_after_a_tear_is_read(away: float) -> None:
    source = ComesBack(away)
    told: list[bool] = []
    result = read_from_source(source, [DEMO_PERSON.access_key], extended_mode="off",
                              retries=2, trust=load_trust([pki().csca_pem()]), now=NOW,
                              return_seconds=10.0, on_wait=lambda: told.append(True))
    assert result.passive_auth.status is PaStatus.AUTHENTIC and result.photo is not None
    assert told == [True] and source.waits > 0


def test_a_card_that_never_comes_back_is_card_removed() -> None:
    source = ComesBack(away=3600)
    with pytest.raises(CardRemoved):
        read_from_source(source, [DEMO_PERSON.access_key], extended_mode="off", retries=2,
                         trust=load_trust([pki().csca_pem()]), now=NOW, return_seconds=0.3)


def test_a_reader_unplugged_while_waiting_says_so() -> None:
    """Torn, then the reader itself is gone: staff are told to check the reader, not the card."""
    from readers.errors import NoReader

    class Unplugged(ComesBack):
        def connect(self) -> tuple[CardPort, bytes]:
            if self.card.apdus >= 31:
                raise NoReader("the reader was unplugged")
            return super().connect()

    with pytest.raises(NoReader):
        read_from_source(Unplugged(away=0), [DEMO_PERSON.access_key], extended_mode="off",
                         retries=2, trust=load_trust([pki().csca_pem()]), now=NOW,
                         return_seconds=0.3)
