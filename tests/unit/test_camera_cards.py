"""The camera reads a printed card (issue 24, "Where it runs"): when no QR reads and a card
rests in view, one OCR per presentation, in a thread of its own; the draft reaches the staff
page as a ``card_text`` event — an MRZ as the chip's key on offer — never the kiosk or a log.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest

from readers.devices.camera import CameraReader
from readers.doubles.render import write_clip
from readers.doubles.vcard import DEMO_PERSON
from readers.scan.scanloop import CardPresence
from terminal.app import create_app
from terminal.flow.cardimage import CardImageReader, CardImageWorker
from terminal.server import BackgroundServer, start_background
from tests.helpers.cards import (
    TODAY,
    demo_back,
    demo_front,
    empty_desk,
    plain_desk,
    tables,
)
from tests.helpers.daemon import Events, collect, daemon_services, terminal_settings
from verify.model import CredentialKind

CARD = [(0.2, 0.2), (0.7, 0.2), (0.7, 0.5), (0.2, 0.5)]


def moved(corners: list[tuple[float, float]], dx: float) -> list[tuple[float, float]]:
    return [(x + dx, y) for x, y in corners]


# -- when to read (pure) ------------------------------------------------------------------------
def test_a_resting_card_is_read_once_per_presentation() -> None:
    p = CardPresence(hold_seconds=0.5, gone_seconds=1.0)
    fired = [p.feed(CARD, False, t / 10) for t in range(40)]   # 4 s on the desk
    assert fired.count(True) == 1 and fired.index(True) == 5   # after half a second
    assert not any(p.feed(None, False, 4 + t / 10) for t in range(5))  # lifted for 0.5 s…
    assert not any(p.feed(CARD, False, 4.5 + t / 10) for t in range(10))  # …same presentation
    for t in range(11):
        p.feed(None, False, 5.5 + t / 10)                       # gone for over a second
    fired = [p.feed(CARD, False, 7 + t / 10) for t in range(10)]
    assert fired.count(True) == 1                               # a new presentation


def test_a_read_that_found_nothing_is_tried_again_while_the_card_stays() -> None:
    p = CardPresence(hold_seconds=0.5, again_seconds=1.5, max_reads=3)
    fired = [t for t in range(100) if p.feed(CARD, False, t / 10)]  # 10 s on the desk
    assert fired == [5]                                  # a read that found something: once
    p = CardPresence(hold_seconds=0.5, again_seconds=1.5, max_reads=3)
    fired = []
    for t in range(100):
        if p.feed(CARD, False, t / 10):
            fired.append(t)
            p.missed(t / 10 + 0.2)                       # the reader found nothing, 0.2 s on
    # again 1.5 s after each miss (0.2 s after its read), three reads in all
    assert fired[0] == 5 and len(fired) == 3
    assert all(b - a in (17, 18) for a, b in itertools.pairwise(fired))
    for t in range(11):
        p.feed(None, False, 10 + t / 10)                 # lifted
    p.missed(11.1)                                       # a late answer changes nothing
    assert [t for t in range(10) if p.feed(CARD, False, 12 + t / 10)] == [5]


def test_a_moving_card_waits_until_it_rests() -> None:
    p = CardPresence(hold_seconds=0.5)
    assert not any(p.feed(moved(CARD, 0.05 * t), False, t / 10) for t in range(10))
    fired = [p.feed(moved(CARD, 0.45), False, 1 + t / 10) for t in range(10)]
    assert fired.index(True) == 5


def test_a_qr_read_takes_the_presentation() -> None:
    p = CardPresence(hold_seconds=0.5)
    assert not any(p.feed(CARD, t == 2, t / 10) for t in range(30))
    p = CardPresence(hold_seconds=0.5)  # a QR just read, then its card still in view
    assert not p.feed(None, True, 0.0)
    assert not any(p.feed(CARD, False, 0.2 + t / 10) for t in range(30))


def test_a_busy_reader_is_asked_again() -> None:
    p = CardPresence(hold_seconds=0.5)
    fired = [p.feed(CARD, False, t / 10) for t in range(6)]
    assert fired[-1]
    p.declined()
    assert p.feed(CARD, False, 0.7)
    assert not p.feed(CARD, False, 0.8)


def test_no_card_no_read() -> None:
    p = CardPresence()
    assert not any(p.feed(None, False, t / 10) for t in range(100))


# -- the camera loop on clips -------------------------------------------------------------------
class Cards:
    def __init__(self, *, take: bool = True) -> None:
        self.frames: list[Any] = []
        self.states: list[tuple[str, str]] = []
        self.take = take
        self.changed = threading.Condition()

    def card(self, frame: Any) -> bool:
        self.frames.append(frame)
        return self.take

    def state(self, status: str, reason: str) -> None:
        with self.changed:
            self.states.append((status, reason))
            self.changed.notify_all()

    def played(self, timeout: float = 30) -> None:
        with self.changed:
            assert self.changed.wait_for(
                lambda: ("ok", "clip played to its end") in self.states, timeout), self.states


def play(path: Path, scenes: list[tuple[Any, int]], cards: Cards, *, fps: float = 30,
         decode: Any = None, is_card_qr: Any = None) -> CameraReader:
    write_clip(path, scenes, fps=int(fps))
    stop = threading.Event()
    reader = CameraReader(str(path), on_payload=lambda text: None, on_state=cards.state,
                          on_hint=lambda: None, fps=fps, decode=decode, on_card=cards.card,
                          is_card_qr=is_card_qr)
    thread = threading.Thread(target=reader.run, args=(stop,), daemon=True)
    thread.start()
    try:
        cards.played()
    finally:
        stop.set()
        thread.join(10)
    return reader


def test_camera_reads_each_card_presentation_once(tmp_path: Path) -> None:
    desk, back, front = plain_desk(), demo_back(), demo_front()
    cards = Cards()
    # 30 fps: the back for 2 s, the desk for 1.5 s, the front for 2 s.
    play(tmp_path / "cards.avi", [(desk, 15), (back, 60), (desk, 45), (front, 60), (desk, 10)],
         cards)
    assert len(cards.frames) == 2
    reader = CardImageReader(tables())
    try:
        read = [reader.read_frame(f, today=TODAY) for f in cards.frames]
    finally:
        reader.close()
    assert [c.kind if c else None for c in read] == [CredentialKind.CCCD_MRZ,
                                                      CredentialKind.CCCD_TEXT]
    assert read[0] is not None and read[0].access_key == DEMO_PERSON.access_key
    assert read[1] is not None and read[1].id_number == DEMO_PERSON.id_number


def test_camera_hands_over_nothing_on_an_empty_desk(tmp_path: Path) -> None:
    cards = Cards()
    reader = play(tmp_path / "desk.avi", [(empty_desk(), 90)], cards)
    assert cards.frames == []
    # the card check runs on one decoded frame in three, not on every frame
    assert 0 < reader.card_checks <= reader.frames_decoded // 3 + 1


def test_camera_hands_over_no_card_while_a_qr_reads(tmp_path: Path) -> None:
    cards = Cards()
    play(tmp_path / "qr.avi", [(demo_back(), 60)], cards, decode=lambda frame: ["a QR"])
    assert cards.frames == []


def with_sticker(frame: Any, payload: str) -> Any:
    """``frame`` with a QR sticker in its top left corner (a payment code on the desk)."""
    from readers.doubles.render import render_qr

    code = render_qr(payload, module_px=4)
    out = frame.copy()
    h, w = code.shape[:2]
    out[20:20 + h, 20:20 + w] = code[..., None] if out.ndim == 3 else code
    return out


def test_a_qr_that_is_no_cards_leaves_the_print_to_be_read(tmp_path: Path) -> None:
    """A payment sticker decoding in the corner took every presentation's turn: the
    camera never handed the printed card over, while ``image read`` of the same picture read
    it — the two paths disagreed. One rule now (``is_card_qr``): only a card's QR wins."""
    import cv2

    from terminal.cli.common import EXIT_OK
    from terminal.flow.cardimage import is_card_qr
    from tests.helpers.cli import run
    from tests.helpers.samples import CCCD_EXAMPLE

    shop = with_sticker(demo_front(), "https://pay.example.vn/qr?shop=42&amount=0")
    cards = Cards()
    play(tmp_path / "shop.avi", [(shop, 60)], cards, is_card_qr=is_card_qr)
    assert len(cards.frames) == 1
    image = tmp_path / "shop.png"
    cv2.imwrite(str(image), shop)
    p = run("image", "read", str(image))
    assert p.returncode == EXIT_OK, p.stderr
    (credential,) = json.loads(p.stdout)["credentials"]
    assert credential["read_from"] == "text" and credential["id_number"] == DEMO_PERSON.id_number
    # A card's QR in view still takes the turn (the QR is better than any print).
    cards = Cards()
    play(tmp_path / "card-qr.avi", [(with_sticker(demo_front(), CCCD_EXAMPLE), 60)], cards,
         is_card_qr=is_card_qr)
    assert cards.frames == []


def test_a_card_the_reader_is_too_busy_for_is_offered_again(tmp_path: Path) -> None:
    cards = Cards(take=False)
    play(tmp_path / "busy.avi", [(demo_back(), 45)], cards)
    assert len(cards.frames) >= 3  # asked again at every card check while it is busy


# -- the worker: one read at a time, off the camera's thread ------------------------------------
class SlowReader(CardImageReader):
    def __init__(self) -> None:
        super().__init__(tables())
        self.started = threading.Event()
        self.release = threading.Event()

    def read_frame(self, frame: Any, *, today: Any) -> Any:
        self.started.set()
        assert self.release.wait(10)
        return None


def test_worker_reads_one_frame_at_a_time() -> None:
    slow = SlowReader()
    results: list[object] = []
    worker = CardImageWorker(lambda: slow, today=lambda: TODAY, on_read=results.append)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert worker.submit("frame 1")
        assert slow.started.wait(5)
        t0 = time.perf_counter()
        assert not worker.submit("frame 2")  # busy: refused at once, never waits
        assert time.perf_counter() - t0 < 0.05
        slow.release.set()
        deadline = time.monotonic() + 5
        while not results and time.monotonic() < deadline:
            time.sleep(0.01)
        assert results == [None] and worker.reads == 1
        assert worker.submit("frame 3")
    finally:
        stop.set()
        thread.join(5)


# -- the daemon: camera → card_text event, key on offer, nothing on the kiosk or in the logs ----
@pytest.fixture
def camera_daemon(sim: BackgroundServer, tmp_path: Path) -> Iterator[tuple[BackgroundServer,
                                                                            Any, Path]]:
    settings = terminal_settings(sim.url, tmp_path / "data",
                                 camera__source=str(tmp_path / "cam.avi"), camera__fps=30)
    services = daemon_services(settings)
    server = start_background(create_app(settings, services))
    yield server, services, tmp_path
    server.stop()


def kiosk_lines(url: str, ready: threading.Event, out: list[str]) -> None:
    with httpx.stream("GET", f"{url}/api/v1/kiosk/events", timeout=30) as r:
        for line in r.iter_lines():
            if line.startswith(": connected"):
                ready.set()
            out.append(line)
            if line.startswith("event: result"):
                return


def test_daemon_publishes_a_card_draft_and_offers_the_mrz_key(
        camera_daemon: tuple[BackgroundServer, Any, Path],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server, services, folder = camera_daemon
    events: Events = []
    kiosk: list[str] = []
    ready, kiosk_ready = threading.Event(), threading.Event()

    def drafts(ev: Events) -> bool:
        return sum(n == "card_text" for n, _ in ev) >= 2

    staff = threading.Thread(target=collect, args=(server.url, drafts, ready, events))
    patient = threading.Thread(target=kiosk_lines, args=(server.url, kiosk_ready, kiosk))
    staff.start()
    patient.start()
    assert ready.wait(10) and kiosk_ready.wait(10)
    desk = plain_desk()
    write_clip(folder / "tmp.avi", [(desk, 10), (demo_back(), 60), (desk, 45),
                                    (demo_front(), 60), (desk, 10)], fps=30)
    (folder / "tmp.avi").rename(folder / "cam.avi")
    staff.join(40)
    assert drafts(events), events
    mrz, text = (d for n, d in events if n == "card_text")
    # The back: its MRZ is the chip's key, offered to the next card placed — not shown.
    assert (mrz["kind"], mrz["read_from"], mrz["reader"]) == ("cccd_mrz", "mrz", "camera")
    assert mrz["key_offered"] is True and "access_key" not in str(mrz)
    assert mrz["messages"][0]["code"] == "card_mrz_key"
    # The front: a draft for the manual-entry form, every value as read; nothing decided.
    assert (text["kind"], text["read_from"], text["key_offered"]) == ("cccd_text", "text", False)
    assert text["fields"]["id_number"] == DEMO_PERSON.id_number
    assert text["fields"]["full_name"] == DEMO_PERSON.full_name.upper()
    assert text["fields"]["date_of_birth"] == "1988-03-29"
    assert text["messages"][0]["code"] == "card_text_draft"
    assert len(text["raw_fingerprint"]) == 12 and text["raw_fingerprint"] != mrz[
        "raw_fingerprint"]
    assert not any(n in ("credential", "eligibility") for n, _ in events)  # staff decide
    keys = services.verifier.offers.take()
    assert keys == [DEMO_PERSON.access_key]
    # The kiosk never hears of a draft: the next thing it shows is a confirmed answer.
    r = httpx.post(f"{server.url}/api/v1/verify", timeout=30, json={
        "id_number": DEMO_PERSON.id_number, "full_name": text["fields"]["full_name"],
        "date_of_birth": "29/03/1988", "reader": "card_image"})
    assert r.status_code == 200 and r.json()["credential"]["reader"] == "card_image"
    patient.join(30)
    assert [line for line in kiosk if line.startswith("event:")] == ["event: reading",
                                                                      "event: result"]
    assert DEMO_PERSON.id_number not in "\n".join(kiosk)
    # Logs name a card image by its fingerprint only.
    logs = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert f"fp={text['raw_fingerprint']}" in logs
    for secret in (DEMO_PERSON.id_number, "088004321", "NGUYỄN", "Nguyễn", "NGUYEN", "880329"):
        assert secret not in logs


def test_daemon_reads_a_card_again_when_the_first_read_found_nothing(
        camera_daemon: tuple[BackgroundServer, Any, Path]) -> None:
    """A card that rested out of focus, then came sharp where it lay: the first read finds
    nothing, the worker says so, the camera offers the same presentation again a moment later,
    and the second read reaches the page — one draft, no typing."""
    server, services, folder = camera_daemon
    events: Events = []
    ready = threading.Event()

    def drafted(ev: Events) -> bool:
        return any(n == "card_text" for n, _ in ev)

    staff = threading.Thread(target=collect, args=(server.url, drafted, ready, events))
    staff.start()
    assert ready.wait(10)
    back = demo_back()
    blurred = cv2.GaussianBlur(back, (9, 9), 0)
    reader = CardImageReader(tables())
    try:
        assert reader.read_frame(blurred, today=TODAY) is None  # out of focus: nothing read
    finally:
        reader.close()
    # 30 fps: 1.5 s out of focus (the first read falls there), then 4 s sharp, same place.
    write_clip(folder / "tmp.avi", [(plain_desk(), 10), (blurred, 45), (back, 120)], fps=30)
    (folder / "tmp.avi").rename(folder / "cam.avi")
    staff.join(40)
    assert drafted(events), events
    assert services.devices is not None
    worker = services.devices.card_images
    assert worker is not None and worker.reads >= 2  # the miss, then the read
    (draft,) = (d for n, d in events if n == "card_text")
    assert (draft["kind"], draft["read_from"]) == ("cccd_mrz", "mrz")
    assert services.verifier.offers.take() == [DEMO_PERSON.access_key]
