"""A picture of a card in, credential drafts out — the wiring the CLI's ``image read`` uses
and the camera loop will use (issue 24).

The QR comes first (the camera's decoder chain): a QR that parses is better than any print.
Only when no QR reads is the printed card read: the camera adapter finds and rectifies it,
the OCR core reads its fields through the tesseract adapter, and ``verify/ocr.py`` keeps what
its checks allow. Blocking (tesseract takes 50–500 ms): run it in a worker thread, and give
each thread its own :class:`CardImageReader` (the engine is not thread-safe).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from verify.errors import InputFormatError
from verify.model import Credential
from verify.tables import Tables

log = logging.getLogger(__name__)
VIDEO_OCR_EVERY = 15  # in a video, the printed card is read on one frame in this many
VIDEO_OCR_FRAMES = 20  # and on at most this many


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

        return find_card(frame) is not None

    def read_frame(self, frame: Any, *, today: date) -> Credential | None:
        from readers.devices.camera.card import read_card_frame
        from verify.ocr import credential_from_text

        card = read_card_frame(frame, self.engine)
        if card is None:
            return None
        log.debug("card image: model %s, %d fields", card.model, len(card.fields))
        return credential_from_text(card, self.tables, today=today)

    def read_file(self, path: Path, *, today: date) -> ImageResult:
        from readers.devices.camera import frames_of, scan_file
        from verify.qr import parse_qr

        name = str(path)
        result = scan_file(path)
        if result.error:
            return ImageResult(name, error=result.error)
        found: list[Credential] = []
        for text in result.payloads:
            try:
                found.append(replace(parse_qr(text), read_from="qr"))
            except InputFormatError:
                continue
        if found:
            return ImageResult(name, found)
        frames = frames_of(path, step=VIDEO_OCR_EVERY, limit=VIDEO_OCR_FRAMES)
        for frame in frames:
            credential = self.read_frame(frame, today=today)
            if credential is not None:
                return ImageResult(name, [credential])
        return ImageResult(name)
