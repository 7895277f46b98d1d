"""The HIS signing window: Active Authentication with an HIS's challenge on the card read
last. The last good read's keys are kept for the privacy window only, then forgotten."""

from __future__ import annotations

import os
import time

from readers.emrtd.chip import sign_challenge
from readers.emrtd.mrz import AccessKey, CanKey
from readers.errors import NoCard
from terminal.chip.source import ChipSource, close_port


class SigningWindow:
    def __init__(self, keep_seconds: float) -> None:
        self.keep_seconds = keep_seconds
        self._last_keys: tuple[float, list[AccessKey | CanKey]] | None = None

    def remember(self, keys: list[AccessKey | CanKey]) -> None:
        self._last_keys = (time.monotonic(), keys)

    def keys(self) -> list[AccessKey | CanKey]:
        """The last read's keys; NoCard when none was read within the window."""
        self.purge()
        if self._last_keys is None:
            raise NoCard("no card was read recently")
        return self._last_keys[1]

    def purge(self) -> None:
        if (self._last_keys is not None
                and time.monotonic() - self._last_keys[0] > self.keep_seconds):
            self._last_keys = None

    @staticmethod
    def sign(source: ChipSource, keys: list[AccessKey | CanKey], challenge: bytes) -> bytes:
        """Blocking: open the card with ``keys`` and sign ``challenge`` (ReaderError /
        ApduError when the card cannot)."""
        port, _atr = source.connect()
        try:
            return sign_challenge(port, keys, challenge, rnd=os.urandom)
        finally:
            close_port(port)
