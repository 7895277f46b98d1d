"""Chip reads wired into the verification flow: source → read (worker thread) → identity →
eligibility (started as soon as the identity is verified) → photo.

A chip source is the PC/SC reader (production) or the in-process virtual card (demo). Staff
see a short sentence for every failure; the photo stays in memory for the privacy window only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509

from readers.emrtd.aa import FAILED as CHIP_FAILED
from readers.emrtd.apdu import SW, CardPort
from readers.emrtd.atr import supports_extended_length
from readers.emrtd.chip import ChipIdentity, ChipRead, read_with_retries, sign_challenge
from readers.emrtd.mrz import AccessKey, CanKey
from readers.emrtd.pa import PaStatus, load_trust
from readers.errors import (
    ApduError,
    CardRemoved,
    NoCard,
    ReaderError,
    SecureMessagingError,
    TlvError,
)
from terminal.events import EventBus
from terminal.flow.results import DESK, Actor, Verification, error_json
from terminal.flow.verifier import Verifier
from verify.credentials import chip_credential
from verify.errors import InputFormatError
from verify.model import VN_TZ

log = logging.getLogger(__name__)
CSCA_SUFFIXES = (".pem", ".crt", ".cer", ".der")
OFFER_SECONDS = 120.0  # how long a scanned CCCD QR stays the key for the next card
CARD_POLL_SECONDS = 0.1  # how often a lost card is looked for again
NEEDS_KEY = {"code": "chip_needs_key",
             "vi": "Đã có thẻ trên đầu đọc. Quét mã QR trên CCCD (hoặc nhập số CCCD, ngày sinh, "
                   "ngày hết hạn) để đọc chip.",
             "en": "A card is on the reader. Scan the CCCD's QR code (or type the ID number, "
                   "date of birth and expiry date) to read its chip."}


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
    ``on_card`` is told once a card answered (no card, no call)."""
    port, atr = source.connect()
    if on_card is not None:
        on_card()
    ports = [port]
    opened: list[CardPort] = []

    def connect() -> CardPort:
        for old in opened:  # a torn handle is closed before the next one opens
            _close(old)
        opened[:] = [ports.pop() if ports else wait_for_card(source, return_seconds, on_wait)]
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
            _close(old)


def _close(port: CardPort) -> None:
    """Close a card handle if the port has one (PC/SC does; the in-process card does not)."""
    close = getattr(port, "close", None)
    if callable(close):
        close()


def chip_verdict(read: ChipRead) -> str:
    """``verified`` only when every check the chip offers passed; ``copy_suspected`` when AA or
    CA failed; ``not_verified`` when passive authentication failed or had no trust anchor."""
    if CHIP_FAILED in (read.active_auth, read.chip_auth):
        return "copy_suspected"
    return "verified" if read.passive_auth.status is PaStatus.AUTHENTIC else "not_verified"


async def _settle(f: concurrent.futures.Future[Verification] | None) -> Verification | None:
    """The eligibility started at identity time; input errors there were reported already."""
    if f is None:
        return None
    try:
        return await asyncio.wrap_future(f)
    except InputFormatError:
        return None


@dataclass
class ChipOutcome:
    verification: Verification | None
    read: ChipRead | None


class ChipService:
    def __init__(self, source: ChipSource | None, *, verifier: Verifier, bus: EventBus,
                 trust: list[x509.Certificate], extended: str = "auto", retries: int = 2,
                 keep_seconds: float = 900.0, return_seconds: float = 10.0,
                 now: Callable[[], datetime] | None = None) -> None:
        self.source = source
        self.verifier = verifier
        self.bus = bus
        self.trust = trust
        self.extended = extended
        self.retries = retries
        self.return_seconds = return_seconds
        self.keep_seconds = keep_seconds
        self._now = now or (lambda: datetime.now(UTC))
        self._photo: tuple[float, str, bytes] | None = None
        self.last_error: str | None = None
        self.last_error_json: dict[str, Any] | None = None
        self._offered: tuple[float, list[AccessKey | CanKey]] | None = None
        self.readers: dict[str, bool] | None = None  # what the watcher saw last
        # One contact with the card at a time: a read, a re-read asked by the HIS feed, an AA
        # challenge. The keys of the last good read stay (privacy window) for the HIS's AA.
        self.busy = asyncio.Lock()
        self._last_keys: tuple[float, list[AccessKey | CanKey]] | None = None

    def _today(self) -> date:
        return self._now().astimezone(VN_TZ).date()

    @property
    def is_demo(self) -> bool:
        return self.source is not None and self.source.demo_keys is not None

    def photo(self) -> tuple[str, bytes] | None:
        if self._photo is None or time.monotonic() - self._photo[0] > self.keep_seconds:
            self._photo = None
            return None
        return self._photo[1], self._photo[2]

    async def read(self, keys: list[AccessKey | CanKey], *, reader: str | None = None,
                   actor: Actor | None = None) -> ChipOutcome:
        """Read, verify and publish; a ReaderError is reported to staff and re-raised."""
        if self.source is None:
            raise ReaderError("no chip reader configured")
        async with self.busy:
            return await self._read(keys, reader=reader, actor=actor)

    async def _read(self, keys: list[AccessKey | CanKey], *, reader: str | None,
                    actor: Actor | None) -> ChipOutcome:
        assert self.source is not None
        loop = asyncio.get_running_loop()
        fp = self.verifier.fingerprint("chip|" + "|".join(k.mrz_information() for k in keys))
        eligibility: concurrent.futures.Future[Verification] | None = None
        started = time.perf_counter()

        def on_identity(identity: ChipIdentity) -> None:
            nonlocal eligibility
            credential = chip_credential(identity, passive_auth=identity.passive_auth,
                                         photo=None, active_auth="not_supported", apdus=0,
                                         fingerprint=fp, today=self._today())
            eligibility = asyncio.run_coroutine_threadsafe(
                self.verifier.verify(credential, actor or DESK), loop)
            log.info("chip identity fp=%s pa=%s ms=%.1f", fp, identity.passive_auth.status,
                     (time.perf_counter() - started) * 1000)

        source = self.source
        if reader is not None and isinstance(source, PcscSource):
            source = PcscSource(reader)

        def on_wait() -> None:  # worker thread: hand the event to the loop
            lost = CardRemoved("waiting for the card to come back")
            loop.call_soon_threadsafe(self.bus.publish, "error",
                                      {**error_json(lost, fp), "waiting": True})

        def on_card() -> None:  # worker thread: a card answered (the HIS feed's id 1)
            loop.call_soon_threadsafe(self.verifier.feeds.placed)

        def work() -> ChipRead:
            return read_from_source(source, keys, extended_mode=self.extended,
                                    retries=self.retries, trust=self.trust, now=self._now(),
                                    on_identity=on_identity,
                                    return_seconds=self.return_seconds, on_wait=on_wait,
                                    on_card=on_card)

        try:
            result = await asyncio.to_thread(work)
        except (ReaderError, TlvError, ApduError) as e:
            self.last_error = e.code
            self.last_error_json = error_json(e, fp)
            log.warning("chip read failed fp=%s error=%s", fp, type(e).__name__)
            self.verifier.report(e, fp)
            shown = await _settle(eligibility)
            if shown is None:
                return ChipOutcome(None, None)
            # The identity was shown, the rest of the read was not verified: fail closed.
            unfinished = replace(shown.credential,
                                 chip={**(shown.credential.chip or {}), "incomplete": True})
            final = self.verifier.amend(shown, unfinished, actor or DESK)
            self._publish_chip(final, "incomplete")
            self.verifier.feeds.chip_done(final, None, "incomplete")
            return ChipOutcome(final, None)
        self.last_error = None
        self.last_error_json = None
        self._last_keys = (time.monotonic(), keys)
        verification = await _settle(eligibility)
        if result.photo is not None:
            self._photo = (time.monotonic(), result.photo.format, result.photo.image)
            self.bus.publish("photo", {
                "format": result.photo.format, "bytes": len(result.photo.image),
                "url": f"/api/v1/photo?fp={fp}", "raw_fingerprint": fp,
                "passive_auth": result.passive_auth.to_json()})
        if verification is not None:
            whole = chip_credential(result.identity, passive_auth=result.passive_auth,
                                    photo=result.photo, active_auth=result.active_auth,
                                    apdus=result.apdus, fingerprint=fp, today=self._today(),
                                    chip_auth=result.chip_auth)
            verification = self.verifier.amend(
                verification, replace(whole, reader=verification.credential.reader),
                actor or DESK)
            self._publish_chip(verification, chip_verdict(result))
            self.verifier.feeds.chip_done(verification, result, chip_verdict(result))
        log.info("chip read fp=%s apdus=%d pa=%s aa=%s ms=%.1f", fp, result.apdus,
                 result.passive_auth.status, result.active_auth,
                 (time.perf_counter() - started) * 1000)
        return ChipOutcome(verification, result)

    def _publish_chip(self, final: Verification, verdict: str) -> None:
        """The last word on a chip read: what identity time showed, confirmed or corrected."""
        chip = final.credential.chip or {}
        self.bus.publish("chip", {
            "raw_fingerprint": final.credential.raw_fingerprint, "verdict": verdict,
            "passive_auth": chip.get("passive_auth"), "active_auth": chip.get("active_auth"),
            "chip_auth": chip.get("chip_auth"), "status": final.eligibility.status.value,
            "eligibility": final.eligibility.to_json()})

    def purge(self) -> None:
        """The photo and the last read's keys go when the privacy window has passed (run on a
        timer, not only when next asked for)."""
        now = time.monotonic()
        if self._photo is not None and now - self._photo[0] > self.keep_seconds:
            self._photo = None
        if self._last_keys is not None and now - self._last_keys[0] > self.keep_seconds:
            self._last_keys = None

    async def sign_challenge(self, challenge: bytes) -> bytes:
        """Active Authentication with an HIS's challenge on the card read last (its keys are
        kept for the privacy window only). Raises ReaderError / ApduError."""
        source = self.source
        if source is None:
            raise ReaderError("no chip reader configured")
        last = self._last_keys
        if last is None or time.monotonic() - last[0] > self.keep_seconds:
            self._last_keys = None
            raise NoCard("no card was read recently")
        keys = last[1]

        def work() -> bytes:
            port, _atr = source.connect()
            try:
                return sign_challenge(port, keys, challenge, rnd=os.urandom)
            finally:
                _close(port)

        async with self.busy:
            return await asyncio.to_thread(work)

    def offer_keys(self, keys: list[AccessKey | CanKey]) -> None:
        """Keys from a CCCD QR just scanned: a card placed on the reader soon after is read
        with them without any click."""
        self._offered = (time.monotonic(), keys)

    def _take_offer(self) -> list[AccessKey | CanKey] | None:
        if self._offered is None or time.monotonic() - self._offered[0] > OFFER_SECONDS:
            return None
        keys, self._offered = self._offered[1], None
        return keys

    async def watch(self, make_watcher: Callable[[], Any]) -> None:
        """Reader hot-plug and card insert/remove as ``device`` events; reads a card placed
        after a CCCD QR was scanned. Runs for the daemon's life; pcscd restarts included."""
        watcher = make_watcher()
        try:
            while True:
                state = await asyncio.to_thread(watcher.poll, 500)
                previous, self.readers = self.readers, state
                if state is None:
                    if previous is not None:
                        self.bus.publish("device", {"device": "chip_reader", "status": "down",
                                                    "reason": "pcscd unreachable"})
                    await asyncio.sleep(1.0)
                    continue
                for reader, present in state.items():
                    before = (previous or {}).get(reader)
                    if before is None or before != present:
                        self.bus.publish("device", {"device": "chip_reader", "status": "ok",
                                                    "reader": reader, "card": present})
                    if present and before is False:
                        keys = self._take_offer()
                        if keys is not None:
                            await self.read(keys, reader=reader)
                        else:  # the HIS feed may answer with /input_data
                            self.verifier.feeds.placed()
                            self.verifier.feeds.failed(dict(NEEDS_KEY))
                for reader in set(previous or {}) - set(state):
                    self.bus.publish("device", {"device": "chip_reader", "status": "down",
                                                "reader": reader, "reason": "unplugged"})
        finally:
            watcher.close()

    async def health(self) -> dict[str, str]:
        """ok / degraded / down with a reason, for /api/v1/health."""
        if self.source is None:
            return {"status": "down", "reason": "no chip reader configured"}
        if self.is_demo:
            status = "degraded" if self.last_error else "ok"
            return {"status": status, "reason": self.last_error or "demo card"}
        from readers.devices import pcsc

        names = await asyncio.to_thread(pcsc.list_readers)
        if not names:
            return {"status": "down", "reason": "no PC/SC reader (check USB and pcscd)"}
        return {"status": "degraded" if self.last_error else "ok",
                "reason": self.last_error or ", ".join(names)}

    def result_json(self, outcome: ChipOutcome) -> dict[str, Any]:
        """The chip credential with the final passive authentication, and the eligibility."""
        read = outcome.read
        assert read is not None
        credential = chip_credential(read.identity, passive_auth=read.passive_auth,
                                     photo=read.photo, active_auth=read.active_auth,
                                     apdus=read.apdus, fingerprint="", today=self._today(),
                                     chip_auth=read.chip_auth)
        out: dict[str, Any] = credential.to_json()
        out.pop("raw_fingerprint", None)
        if outcome.verification is not None:
            out["raw_fingerprint"] = outcome.verification.credential.raw_fingerprint
            out["eligibility"] = outcome.verification.eligibility.to_json()
        return out

