"""A picture of a card in, credential drafts out — the wiring the CLI's ``image read`` and
the camera loop use (issue 24).

The QR comes first (the camera's decoder chain): a QR that parses is better than any print.
Only when no QR reads is the printed card read: the camera adapter finds and rectifies it,
the OCR core reads its fields through the tesseract adapter, and ``verify/ocr.py`` keeps what
its checks allow. When that gives no number and birth date, a phone's e-card panel (VssID,
VNeID; ``readers/devices/camera/screen.py``) is read the same way. Blocking (tesseract takes
50–500 ms): run it in a worker thread, and give each thread its own
:class:`CardImageReader` (the engine is not thread-safe).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from readers.errors import OcrUnavailable
from verify.errors import InputFormatError
from verify.model import Credential
from verify.tables import Tables

log = logging.getLogger(__name__)
VIDEO_OCR_EVERY = 15  # in a video, the printed card is read on one frame in this many
VIDEO_OCR_FRAMES = 20  # and on at most this many


def qr_credential(credential: Credential, text: str, key: bytes | None) -> Credential:
    """A QR's credential as every command prints it (``qr parse``, ``qr scan``, ``image
    read``): read from a QR, with the keyed fingerprint of the raw text — never the text."""
    from verify.fingerprint import fingerprint

    return replace(credential, read_from="qr",
                   raw_fingerprint=fingerprint(key, text) if key is not None else None)


def is_card_qr(text: str) -> bool:
    """A QR that is a card's (CCCD, BHYT, e-card): it is read instead of the print. Any
    other (a payment or shop sticker beside the card) leaves the print to be read — in
    ``image read`` and in the camera loop alike."""
    from verify.qr import parse_qr

    try:
        parse_qr(text)
    except InputFormatError:
        return False
    return True


def key_fields(c: Credential) -> int:
    """How many of the two key fields a draft holds: a number (ID, card code, old ID, the
    MRZ's access key) and the birth date."""
    return bool(c.id_number or c.card_code or c.old_id_number or c.access_key) + bool(
        c.date_of_birth or c.access_key)


@dataclass(frozen=True, slots=True)
class ImageResult:
    file: str
    credentials: list[Credential] = field(default_factory=list)
    error: str | None = None


class CardImageReader:
    """``read_frame(frame)``: the card in one camera frame (OCR only; the loop already tried
    the QR); ``read_file(path)``: QR first, then the print, for ``tiepdon image read``.
    ``card_in_view(frame)`` is the cheap check (≈10 ms) the loop can run on every missed
    frame before deciding to read."""

    def __init__(self, tables: Tables, *, engine: Any = None) -> None:
        self.tables = tables
        self._engine = engine

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from readers.devices.ocr import Tesseract

            self._engine = Tesseract()
        return self._engine

    def close(self) -> None:
        if self._engine is not None and hasattr(self._engine, "close"):
            self._engine.close()

    @staticmethod
    def card_in_view(frame: Any) -> bool:
        from readers.devices.camera.card import find_card

        return find_card(frame, precise=False) is not None

    def read_frame(self, frame: Any, *, today: date) -> Credential | None:
        from readers.devices.camera.card import read_card_frame
        from verify.ocr import credential_from_text

        card = read_card_frame(frame, self.engine)
        found = None
        if card is not None:
            log.debug("card image: model %s, %d fields", card.model, len(card.fields))
            found = credential_from_text(card, self.tables, today=today)
        if found is not None and key_fields(found) == 2:
            return found
        # An e-card panel on a phone can pass for its printed model (the same title words) and
        # be read through the wrong boxes: the screen's read wins unless it found less.
        screen = self._read_screen(frame, today=today)
        if screen is not None and (found is None or key_fields(screen) >= key_fields(found)):
            return screen
        return found

    def _read_screen(self, frame: Any, *, today: date) -> Credential | None:
        """An e-card on a phone (VssID, VNeID): tried when no printed card gave a number."""
        from readers.devices.camera.screen import read_screen_frame
        from verify.ocr import credential_from_text

        card = read_screen_frame(frame, self.engine)
        if card is None:
            return None
        log.debug("screen image: model %s, %d fields", card.model, len(card.fields))
        return credential_from_text(card, self.tables, today=today)

    def read_file(self, path: Path, *, today: date,
                  fingerprint_key: bytes | None = None) -> ImageResult:
        from readers.devices.camera import FrameRefused, frames_of, scan_file
        from verify.qr import parse_qr

        name = str(path)
        result = scan_file(path)
        if result.error:
            return ImageResult(name, error=result.error)
        found: list[Credential] = []
        refused: InputFormatError | None = None
        for text in result.payloads:
            try:
                found.append(qr_credential(parse_qr(text), text, fingerprint_key))
            except InputFormatError as e:
                refused = refused or e
        if found:
            return ImageResult(name, found)
        try:
            for frame in frames_of(path, step=VIDEO_OCR_EVERY, limit=VIDEO_OCR_FRAMES):
                credential = self.read_frame(frame, today=today)
                if credential is not None:
                    return ImageResult(name, [credential])
        except FrameRefused as e:  # scan_file took it: a video that changed under us
            return ImageResult(name, error=str(e))
        if refused is not None:  # a QR was read, but it is no card's: said, as qr scan says it
            return ImageResult(name, error=f"{refused.code}: {refused.en}")
        return ImageResult(name)


class CardImageWorker:
    """The camera's printed-card reads, one at a time, in a thread of their own.

    The camera's decode thread hands a frame to :meth:`submit` and goes straight on (it never
    waits for tesseract); :meth:`run` reads it with this thread's own
    :class:`CardImageReader` and gives the draft — or None, nothing worth showing — to
    ``on_read``. A frame that comes while a read runs is refused, and the camera offers a
    later one. An engine that is not installed is said once in the log, then every frame is
    taken and dropped.
    """

    def __init__(self, make_reader: Callable[[], CardImageReader], *,
                 today: Callable[[], date],
                 on_read: Callable[[Credential | None], None]) -> None:
        self._make_reader = make_reader
        self._today = today
        self._on_read = on_read
        self._cond = threading.Condition()
        self._frame: Any = None
        self._busy = False
        self.reads = 0
        self.unavailable: str | None = None  # why the engine cannot run (its error class)

    def submit(self, frame: Any) -> bool:
        """Queue ``frame`` for reading; False while a read is queued or running."""
        with self._cond:
            if self.unavailable is not None:
                return True  # nothing can read it: taken, and dropped
            if self._busy or self._frame is not None:
                return False
            self._frame = frame
            self._cond.notify()
            return True

    def run(self, stop: threading.Event) -> None:
        """Blocking until ``stop`` is set; never raises."""
        reader = self._make_reader()
        try:
            while not stop.is_set():
                with self._cond:
                    while self._frame is None and not stop.is_set():
                        self._cond.wait(0.5)
                    frame, self._frame = self._frame, None
                    self._busy = frame is not None
                if frame is None:
                    continue
                try:
                    credential = self._read(reader, frame)
                finally:
                    with self._cond:
                        self._busy = False
                self.reads += 1
                self._on_read(credential)
        finally:
            reader.close()

    def _read(self, reader: CardImageReader, frame: Any) -> Credential | None:
        try:
            return reader.read_frame(frame, today=self._today())
        except OcrUnavailable as e:
            self.unavailable = type(e).__name__
            log.error("card image reading is off: %s (%s)", type(e).__name__, e.code)
        except Exception as e:  # the loop goes on; the class name only (no card data)
            log.error("card image read failed: %s", type(e).__name__)
        return None
