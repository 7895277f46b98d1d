"""Key offers: a scanned CCCD QR carries its chip's access key (ID, birth date, issue date).

Whatever brought the QR — the HTTP API, the serial scanner, the camera — the flow offers its
keys here (``Verifier.verify``), and the reader watcher takes them when a card is placed soon
after, so the chip reads with no key typed. One offer at a time, for ``OFFER_SECONDS``; taken
once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from readers.emrtd.mrz import AccessKey, CanKey
from verify.credentials import chip_keys_from_qr
from verify.errors import InputFormatError
from verify.model import Credential, CredentialKind

OFFER_SECONDS = 120.0  # how long a scanned CCCD QR stays the key for the next card

Keys = list[AccessKey | CanKey]


class KeyOffers:
    def __init__(self, *, seconds: float = OFFER_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._offered: tuple[float, Keys] | None = None

    def offer(self, keys: Keys) -> None:
        self._offered = (self._clock(), keys)

    def offer_from(self, credential: Credential) -> None:
        """A CCCD QR's keys; any other credential (or a QR without the key fields) offers
        nothing and leaves an earlier offer alone."""
        if credential.kind is not CredentialKind.CCCD_QR:
            return
        with contextlib.suppress(InputFormatError):
            self.offer(chip_keys_from_qr(credential))

    def take(self) -> Keys | None:
        """The keys on offer, once; None when none or when the offer expired."""
        offered, self._offered = self._offered, None
        if offered is None or self._clock() - offered[0] > self.seconds:
            return None
        return offered[1]

    def purge(self) -> None:
        """An expired offer goes on the purge timer too (the keys are personal data)."""
        if self._offered is not None and self._clock() - self._offered[0] > self.seconds:
            self._offered = None
