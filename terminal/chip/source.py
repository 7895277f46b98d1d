"""Where a chip is read: the PC/SC reader (production) or the in-process virtual card (demo),
and the one blocking read path both the daemon and ``tiepdon card read`` use — connect,
choose short or extended length from the ATR, read with retries, and wait for a card lifted
mid-read to come back (``chip.card_return_seconds``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cryptography import x509

from readers.emrtd.apdu import SW, CardPort
from readers.emrtd.atr import supports_extended_length
from readers.emrtd.chip import ChipIdentity, ChipRead, read_with_retries
from readers.emrtd.mrz import AccessKey, CanKey
from readers.emrtd.pa import load_trust
from readers.errors import ApduError, ReaderError, SecureMessagingError

log = logging.getLogger(__name__)
CSCA_SUFFIXES = (".pem", ".crt", ".cer", ".der")
CARD_POLL_SECONDS = 0.1  # how often a lost card is looked for again


class ChipSource(Protocol):
    name: str

    @property
    def demo_keys(self) -> list[AccessKey | CanKey] | None:
        """A demo source presents one known card: the keys staff would scan from its QR.
        None on a real reader (``POST /api/v1/chip/demo`` answers 404 there)."""
        ...

    def connect(self) -> tuple[CardPort, bytes]:
        """A freshly reset card and its ATR; raises a ReaderError when there is none."""
        ...


@dataclass
class PcscSource:
    reader: str | None = None
    name: str = "PC/SC"

    @property
    def demo_keys(self) -> list[AccessKey | CanKey] | None:
        return None

    def connect(self) -> tuple[CardPort, bytes]:
        from readers.devices import (
            pcsc,  # the only importer of pyscard, loaded when a reader is used
        )

        port = pcsc.connect(self.reader)
        self.name = port.reader
        return port, port.atr


def load_csca_dir(directory: str) -> list[x509.Certificate]:
    if not directory:
        return []
    certs: list[bytes] = []
    for path in sorted(Path(directory).iterdir()):
        if path.suffix.lower() in CSCA_SUFFIXES and path.is_file():
            certs.append(path.read_bytes())
    return load_trust(certs)


def wait_for_card(source: ChipSource, seconds: float,
                  on_wait: Callable[[], None] | None = None) -> CardPort:
    """Blocking: the card left the field mid-read; poll for it to be placed back for up to
    ``seconds`` (a patient's hand moves), then give up with the last ReaderError."""
    deadline = time.monotonic() + seconds
    told = False
    time.sleep(CARD_POLL_SECONDS)  # let the reader notice the card has gone
    while True:
        try:
            return source.connect()[0]
        except ReaderError:
            if time.monotonic() >= deadline:
                raise
        if not told and on_wait is not None:
            on_wait()
            told = True
        time.sleep(CARD_POLL_SECONDS)


def read_from_source(source: ChipSource, keys: list[AccessKey | CanKey], *, extended_mode: str,
                     retries: int, trust: list[x509.Certificate], now: datetime,
                     on_identity: Callable[[ChipIdentity], None] | None = None,
                     return_seconds: float = 0.0,
                     on_wait: Callable[[], None] | None = None,
                     on_card: Callable[[], None] | None = None) -> ChipRead:
    """Blocking: connect, choose short or extended length from the ATR, read with retries.
    ``on_card`` is told once a card answered (no card, no call); ``on_wait`` once when the
    card left mid-read and is being waited for."""
    port, atr = source.connect()
    if on_card is not None:
        on_card()
    ports = [port]
    opened: list[CardPort] = []

    def connect() -> CardPort:
        for old in opened:  # a torn handle is closed before the next one opens
            close_port(old)
        opened[:] = [ports.pop() if ports
                     else wait_for_card(source, return_seconds, on_wait)]
        return opened[0]

    extended = extended_mode == "on" or (extended_mode == "auto"
                                         and supports_extended_length(atr))
    try:
        try:
            return read_with_retries(connect, keys, retries=retries, rnd=os.urandom,
                                     extended=extended, trust=trust, now=now,
                                     on_identity=on_identity)
        except (ApduError, SecureMessagingError) as e:
            if not extended or getattr(e, "sw", None) not in (None, SW.WRONG_LENGTH,
                                                              SW.SM_DATA_INCORRECT):
                raise
        # The card said yes to extended length in its ATR but the reader or the card refused:
        # read again in short APDUs (a reader without extended-APDU support is common).
        log.info("extended-length read refused; reading again with short APDUs")
        return read_with_retries(connect, keys, retries=retries, rnd=os.urandom,
                                 extended=False, trust=trust, now=now, on_identity=on_identity)
    finally:
        for old in opened:
            close_port(old)


def close_port(port: CardPort) -> None:
    """Close a card handle if the port has one (PC/SC does; the in-process card does not)."""
    close = getattr(port, "close", None)
    if callable(close):
        close()
