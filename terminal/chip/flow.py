"""One chip read wired into the verification flow: source → read (worker thread) → identity →
eligibility (started as soon as the identity is verified) → photo → the final decision.

Everything a read ends with is in its :class:`ChipOutcome` — the decision, the read, or the
error staff were told — so a caller never looks at shared state after the read to learn what
happened. The photo stays in memory for the privacy window only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from cryptography import x509

from readers.emrtd.chip import ChipIdentity, ChipRead
from readers.emrtd.mrz import AccessKey, CanKey
from readers.errors import ApduError, CardRemoved, ReaderError, TlvError
from terminal.chip.source import ChipSource, read_from_source
from terminal.events import EventBus
from terminal.flow.results import DESK, Actor, Verification, error_json
from terminal.flow.verifier import Verifier
from verify.credentials import chip_credential
from verify.errors import InputFormatError
from verify.evidence import Check
from verify.model import VN_TZ

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChipOutcome:
    """``verification``: the final decision (None when nothing was shown); ``read``: the whole
    read (None when it ended early); ``error``: what staff were told when it ended early."""

    verification: Verification | None
    read: ChipRead | None
    error: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ReadSettings:
    extended: str = "auto"
    retries: int = 2
    return_seconds: float = 10.0


async def _settle(f: concurrent.futures.Future[Verification] | None) -> Verification | None:
    """The eligibility started at identity time; input errors there were reported already."""
    if f is None:
        return None
    try:
        return await asyncio.wrap_future(f)
    except InputFormatError:
        return None


class PhotoStore:
    """The latest chip photo, for the privacy window, with the fingerprint it was read with:
    it is given out only to whoever names that fingerprint (the ``photo`` event's URL), so
    a photo is never shown beside the next patient's name."""

    def __init__(self, keep_seconds: float) -> None:
        self.keep_seconds = keep_seconds
        self._photo: tuple[float, str, str, bytes] | None = None

    def keep(self, fingerprint: str, fmt: str, image: bytes) -> None:
        self._photo = (time.monotonic(), fingerprint, fmt, image)

    def get(self, fingerprint: str) -> tuple[str, bytes] | None:
        """The format and image read with ``fingerprint``; None for any other (or none)."""
        self.purge()
        if self._photo is None or not fingerprint:
            return None
        _, kept, fmt, image = self._photo
        if not hmac.compare_digest(kept.encode(), fingerprint.encode()):
            return None
        return fmt, image

    def purge(self) -> None:
        if self._photo is not None and time.monotonic() - self._photo[0] > self.keep_seconds:
            self._photo = None


class ChipFlow:
    """Reads one card and hands the result to the verifier, the staff page and the feeds."""

    def __init__(self, *, verifier: Verifier, bus: EventBus, trust: list[x509.Certificate],
                 settings: ReadSettings, photos: PhotoStore,
                 now: Callable[[], datetime] | None = None) -> None:
        self.verifier = verifier
        self.bus = bus
        self.trust = trust
        self.settings = settings
        self.photos = photos
        self._now = now or (lambda: datetime.now(UTC))
        self.last_error: str | None = None  # for health: the last read's error code
        # For health: why the last finished read could not run Chip Authentication on a chip
        # that offers it (our limit, not the card's fault) — until a read where it ran.
        self.check_not_done: str | None = None

    def today(self) -> date:
        return self._now().astimezone(VN_TZ).date()

    async def read(self, source: ChipSource, keys: list[AccessKey | CanKey],
                   actor: Actor = DESK) -> ChipOutcome:
        loop = asyncio.get_running_loop()
        fp = self.verifier.fingerprint("chip|" + "|".join(k.mrz_information() for k in keys))
        eligibility: concurrent.futures.Future[Verification] | None = None
        started = time.perf_counter()
        feeds = self.verifier.feeds

        def on_identity(identity: ChipIdentity) -> None:  # worker thread
            nonlocal eligibility
            credential = chip_credential(identity, read=None, fingerprint=fp,
                                         today=self.today())
            eligibility = asyncio.run_coroutine_threadsafe(
                self.verifier.verify(credential, actor), loop)
            log.info("chip identity fp=%s pa=%s ms=%.1f", fp, identity.passive_auth.status,
                     (time.perf_counter() - started) * 1000)

        def on_wait() -> None:  # worker thread: hand the event to the loop
            lost = CardRemoved("waiting for the card to come back")
            loop.call_soon_threadsafe(self.bus.publish, "error",
                                      {**error_json(lost, fp), "waiting": True})

        def on_card() -> None:  # worker thread: a card answered (the HIS feed's id 1)
            loop.call_soon_threadsafe(feeds.placed)

        def work() -> ChipRead:
            return read_from_source(
                source, keys, extended_mode=self.settings.extended,
                retries=self.settings.retries, trust=self.trust, now=self._now(),
                on_identity=on_identity, return_seconds=self.settings.return_seconds,
                on_wait=on_wait, on_card=on_card)

        try:
            result = await asyncio.to_thread(work)
        except (ReaderError, TlvError, ApduError) as e:
            return await self._failed(e, fp, eligibility, actor)
        self.last_error = None
        self._count_checks(result)
        shown = await _settle(eligibility)
        if result.photo is not None:
            self.photos.keep(fp, result.photo.format, result.photo.image)
            self.bus.publish("photo", {
                "format": result.photo.format, "bytes": len(result.photo.image),
                "url": f"/api/v1/photo?fp={fp}", "raw_fingerprint": fp,
                "passive_auth": result.passive_auth.to_json()})
        final = None
        if shown is not None:
            whole = chip_credential(result.identity, read=result, fingerprint=fp,
                                    today=self.today())
            final = self.verifier.amend(
                shown, replace(whole, reader=shown.credential.reader), actor)
            self._publish_chip(final)
            feeds.chip_done(final, result)
        log.info("chip read fp=%s apdus=%d pa=%s aa=%s ca=%s ms=%.1f", fp, result.apdus,
                 result.passive_auth.status, result.active_auth, result.chip_auth,
                 (time.perf_counter() - started) * 1000)
        return ChipOutcome(final, result)

    def _count_checks(self, read: ChipRead) -> None:
        metrics = self.verifier.metrics
        metrics.chip_checks["AA", read.active_auth] += 1
        metrics.chip_checks["CA", read.chip_auth] += 1
        if read.chip_auth == Check.NOT_VERIFIED:
            self.check_not_done = read.chip_auth_reason or "unsupported"
            log.warning("chip authentication not done: %s", self.check_not_done)
        elif read.chip_auth in (Check.PASSED, Check.FAILED):
            self.check_not_done = None

    async def _failed(self, e: ReaderError | TlvError | ApduError, fp: str,
                      eligibility: concurrent.futures.Future[Verification] | None,
                      actor: Actor) -> ChipOutcome:
        """Staff are told; an identity already shown is marked unfinished (fail closed)."""
        self.last_error = e.code
        error = error_json(e, fp)
        log.warning("chip read failed fp=%s error=%s", fp, type(e).__name__)
        self.verifier.report(e, fp)
        shown = await _settle(eligibility)
        if shown is None or shown.credential.chip is None:
            return ChipOutcome(None, None, error)
        unfinished = replace(shown.credential, chip=shown.credential.chip.unfinished())
        final = self.verifier.amend(shown, unfinished, actor)
        self._publish_chip(final)
        self.verifier.feeds.chip_done(final, None)
        return ChipOutcome(final, None, error)

    def _publish_chip(self, final: Verification) -> None:
        """The last word on a chip read: what identity time showed, confirmed or corrected."""
        evidence = final.credential.chip
        assert evidence is not None  # a chip credential always carries its evidence
        out = evidence.to_json()
        self.bus.publish("chip", {
            "raw_fingerprint": final.credential.raw_fingerprint,
            "verdict": evidence.reported().verdict,
            "passive_auth": out["passive_auth"], "active_auth": out["active_auth"],
            "chip_auth": out["chip_auth"], "status": final.eligibility.status.value,
            "eligibility": final.eligibility.to_json()})
