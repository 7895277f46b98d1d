"""The desk's chip reader, in rooms of its own:

    source.py   where a chip is read (PC/SC or the demo card) and the one blocking read path
                the daemon and ``tiepdon card read`` share
    flow.py     one read wired into the verification flow; everything it ends with is in
                its ChipOutcome
    watcher.py  reader hot-plug and card insert/remove; a card placed after a CCCD QR is read
                with that QR's keys (terminal/flow/offers.py)
    signing.py  the HIS signing window (Active Authentication on the card read last)

:class:`ChipService` only composes them and keeps one contact with the card at a time. The HIS
feeds see it through the narrow :class:`terminal.feeds.ChipPort`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from readers.emrtd.mrz import AccessKey, CanKey
from readers.errors import ReaderError
from terminal.chip.flow import ChipFlow, ChipOutcome
from terminal.chip.signing import SigningWindow
from terminal.chip.source import ChipSource, PcscSource
from terminal.chip.watcher import CardWatcher, ReaderWatch
from terminal.flow.results import DESK, Actor
from verify.credentials import chip_credential

__all__ = ["ChipOutcome", "ChipService"]


class ChipService:
    def __init__(self, source: ChipSource | None, *, flow: ChipFlow, signing: SigningWindow,
                 watch: ReaderWatch | None = None) -> None:
        self.source = source
        self.flow = flow
        self.signing = signing
        self.watch = watch
        # One contact with the card at a time: a read, a re-read asked by the HIS feed, an AA
        # challenge.
        self._busy = asyncio.Lock()

    @property
    def is_demo(self) -> bool:
        return self.source is not None and self.source.demo_keys is not None

    @property
    def busy(self) -> bool:
        return self._busy.locked()

    @property
    def reader_name(self) -> str:
        return self.source.name if self.source is not None else ""

    @property
    def readers(self) -> dict[str, bool] | None:
        return self.watch.readers if self.watch is not None else None

    def photo(self, fingerprint: str) -> tuple[str, bytes] | None:
        """The latest photo, if it was read with ``fingerprint`` (the patient's)."""
        return self.flow.photos.get(fingerprint)

    async def read(self, keys: list[AccessKey | CanKey], *, reader: str | None = None,
                   actor: Actor = DESK) -> ChipOutcome:
        """Read, verify and publish; errors are in the outcome (and told to staff)."""
        if self.source is None:
            raise ReaderError("no chip reader configured")
        source = self.source
        if reader is not None and isinstance(source, PcscSource):
            source = PcscSource(reader)
        async with self._busy:
            outcome = await self.flow.read(source, keys, actor)
        if outcome.read is not None:
            self.signing.remember(keys, active_auth=outcome.read.active_auth,
                                  dg15=outcome.read.files.get("dg15"))
        return outcome

    async def sign_challenge(self, challenge: bytes) -> bytes:
        """Active Authentication with an HIS's challenge on the card read last (its keys are
        kept for the privacy window only). Raises ReaderError / ApduError."""
        source = self.source
        if source is None:
            raise ReaderError("no chip reader configured")
        keys, dg15 = self.signing.signer()
        async with self._busy:
            return await asyncio.to_thread(SigningWindow.sign, source, keys, dg15, challenge)

    async def run_watcher(self, make_watcher: Callable[[], CardWatcher]) -> None:
        if self.watch is not None:
            await self.watch.run(make_watcher)

    def purge(self) -> None:
        """The photo, the last read's keys and an expired key offer go when their windows
        have passed (run on a timer, not only when next asked for)."""
        self.flow.photos.purge()
        self.signing.purge()
        if self.watch is not None:
            self.watch.offers.purge()

    async def health(self) -> dict[str, str]:
        """ok / degraded / down with a reason, for /api/v1/health."""
        if self.source is None:
            return {"status": "down", "reason": "no chip reader configured"}
        last_error = self.flow.last_error
        if last_error is None and self.flow.check_not_done is not None:
            # Not the card's fault: this terminal cannot run the check the chip offers.
            last_error = f"chip authentication not done: {self.flow.check_not_done}"
        if self.is_demo:
            status = "degraded" if last_error else "ok"
            return {"status": status, "reason": last_error or "demo card"}
        from readers.devices import pcsc

        names = await asyncio.to_thread(pcsc.list_readers)
        if not names:
            return {"status": "down", "reason": "no PC/SC reader (check USB and pcscd)"}
        return {"status": "degraded" if last_error else "ok",
                "reason": last_error or ", ".join(names)}

    def result_json(self, outcome: ChipOutcome) -> dict[str, Any]:
        """The chip credential with the final passive authentication, and the eligibility."""
        read = outcome.read
        assert read is not None
        credential = chip_credential(read.identity, read=read, fingerprint="",
                                     today=self.flow.today())
        out: dict[str, Any] = credential.to_json()
        out.pop("raw_fingerprint", None)
        if outcome.verification is not None:
            out["raw_fingerprint"] = outcome.verification.credential.raw_fingerprint
            out["eligibility"] = outcome.verification.eligibility.to_json()
        return out
