"""The HIS signing window: Active Authentication with an HIS's challenge on the card read
last. The last good read's keys are kept for the privacy window only, then forgotten."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from readers.emrtd.aa import FAILED, NOT_SUPPORTED, PASSED, public_key_from_dg15, verify_answer
from readers.emrtd.apdu import SW
from readers.emrtd.chip import sign_challenge
from readers.emrtd.mrz import AccessKey, CanKey
from readers.errors import ActiveAuthFailed, NoActiveAuth, NoCard, TlvError
from terminal.chip.source import ChipSource, close_port


@dataclass(frozen=True, slots=True)
class _Signer:
    at: float
    keys: list[AccessKey | CanKey]
    active_auth: str  # the read's outcome: passed | failed | not_supported
    dg15: bytes | None  # the read's public key: each new signature is checked against it


class SigningWindow:
    def __init__(self, keep_seconds: float) -> None:
        self.keep_seconds = keep_seconds
        self._last: _Signer | None = None

    def remember(self, keys: list[AccessKey | CanKey], *, active_auth: str,
                 dg15: bytes | None) -> None:
        self._last = _Signer(time.monotonic(), keys, active_auth, dg15)

    def signer(self) -> tuple[list[AccessKey | CanKey], bytes]:
        """The last read's keys and DG15. NoCard when none was read within the window;
        NoActiveAuth when that card offers no Active Authentication (asking it would only
        fail); ActiveAuthFailed when it failed it — a copy's signature is never handed on."""
        self.purge()
        last = self._last
        if last is None:
            raise NoCard("no card was read recently")
        if last.active_auth == NOT_SUPPORTED or last.dg15 is None:
            raise NoActiveAuth("the card read last has no DG15")
        if last.active_auth != PASSED:
            raise ActiveAuthFailed("the card read last failed Active Authentication")
        return last.keys, last.dg15

    def purge(self) -> None:
        if self._last is not None and time.monotonic() - self._last.at > self.keep_seconds:
            self._last = None

    @staticmethod
    def sign(source: ChipSource, keys: list[AccessKey | CanKey], dg15: bytes,
             challenge: bytes) -> bytes:
        """Blocking: open the card with ``keys``, sign ``challenge`` and check the signature
        against ``dg15`` (ReaderError / ApduError when the card cannot; ActiveAuthFailed when
        the answer does not verify — another card that opens with the same keys, say)."""
        port, _atr = source.connect()
        try:
            signature = sign_challenge(port, keys, challenge, rnd=os.urandom)
        finally:
            close_port(port)
        try:
            ok = verify_answer(public_key_from_dg15(dg15), challenge, signature, SW.OK)
        except (TlvError, ValueError):
            ok = FAILED
        if ok != PASSED:
            raise ActiveAuthFailed("the signature does not verify against the read's DG15")
        return signature
