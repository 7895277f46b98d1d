"""The HIS signing window: Active Authentication with an HIS's challenge on the card read
last. The last good read's keys are kept for the privacy window only, then forgotten."""

from __future__ import annotations

import os
import time

from readers.emrtd.chip import sign_challenge
from readers.emrtd.mrz import AccessKey, CanKey
from readers.errors import NoActiveAuth, NoCard
from terminal.chip.source import ChipSource, close_port


class SigningWindow:
    def __init__(self, keep_seconds: float) -> None:
        self.keep_seconds = keep_seconds
        self._last_keys: tuple[float, list[AccessKey | CanKey], bool] | None = None

    def remember(self, keys: list[AccessKey | CanKey], *, has_aa: bool) -> None:
        self._last_keys = (time.monotonic(), keys, has_aa)

    def keys(self) -> list[AccessKey | CanKey]:
        """The last read's keys; NoCard when none was read within the window, NoActiveAuth
        when that card offers no Active Authentication (asking it would only fail)."""
        self.purge()
        if self._last_keys is None:
            raise NoCard("no card was read recently")
        if not self._last_keys[2]:
            raise NoActiveAuth("the card read last has no DG15")
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
