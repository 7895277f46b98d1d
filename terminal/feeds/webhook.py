"""The webhook: every decided verification POSTed to ``[his] webhook_url`` from the durable
outbox (``verify/adapters/outbox.py``), signed, with an idempotency key (``verify/webhook.py``).

The desk never waits for it: the flow's moments only queue the body in memory; one task on
the daemon's loop writes it to the outbox (in a worker thread), then delivers oldest first
over one kept-alive connection. An HIS that is down, slow (each post has a hard deadline) or
answers 408/429/5xx is tried again with a doubling back-off up to five minutes, every waiting
entry with it, as do 401/403/404 (a receiver whose secret or route is wrong); only 400, 413,
415 and 422 are that entry's own problem, retried ten times and then dropped. Entries
older than ``[his] webhook_keep_hours`` are dropped (the privacy window). Every outcome is
counted for /metrics and /api/v1/health by the outbox's :class:`Ledger` (``ledger.py``),
entries lost before delivery (a changed terminal key) too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from readers.emrtd.chip import ChipRead
from terminal.feeds.ledger import Ledger
from terminal.flow.results import Verification
from verify import webhook
from verify.adapters.outbox import Outbox
from verify.adapters.registry_client import Poster, PostUnanswered
from verify.model import CredentialKind

log = logging.getLogger(__name__)
MAX_REJECTIONS = 10   # refusals before an entry is dropped as one the HIS will never take
# What says "this entry is wrong": only these. Anything else (401/403/404: a receiver whose
# secret or route is misconfigured; 408/429/5xx; no answer) holds every entry back instead of
# dropping them one by one.
ENTRY_REFUSED = frozenset({400, 413, 415, 422})
IDLE_SECONDS = 60.0   # the longest sleep: the privacy purge runs at least this often
BATCH = 100


def _report_death(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("webhook task ended: %s", type(task.exception()).__name__)


class WebhookFeed:
    def __init__(self, *, url: str, secret: bytes, outbox: Outbox, version: str,
                 timeout_seconds: float = 10.0, keep_seconds: float = 24 * 3600,
                 send_photo: bool = True, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.secret = secret
        self.outbox = outbox
        self.version = version
        self.timeout = timeout_seconds
        self.keep_seconds = keep_seconds
        self.send_photo = send_photo
        self._clock = clock
        self.first_retry_seconds = webhook.FIRST_RETRY_SECONDS
        self.max_retry_seconds = webhook.MAX_RETRY_SECONDS
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._wake: asyncio.Event | None = None     # the deliverer: something is due
        self._written: asyncio.Event | None = None  # the writer: something came in
        self._tasks: list[asyncio.Task[None]] = []
        self.ledger = Ledger(outbox, clock)
        self.counts = self.ledger.counts  # queued, delivered, retried, rejected, expired…
        self.last_error: str | None = None
        self.down_since: float | None = None
        self._hold_until = 0.0  # the HIS is down: nothing is posted before this

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._written = asyncio.Event()
        self._tasks = [asyncio.create_task(self._write_loop()), asyncio.create_task(self._run())]
        for task in self._tasks:
            task.add_done_callback(_report_death)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.ledger.incoming:  # bodies not yet written: written now, delivered next start
            await asyncio.to_thread(self.ledger.persist)
        self.outbox.close()

    # -- the flow's moments -----------------------------------------------------------------
    def placed(self) -> None:
        pass

    def failed(self, error: dict[str, Any]) -> None:
        pass

    def decided(self, result: Verification) -> None:
        if result.credential.kind is not CredentialKind.CHIP:  # a chip read ends in chip_done
            self._enqueue(result, None)

    def chip_done(self, final: Verification, read: ChipRead | None) -> None:
        photo = read.photo.image if read is not None and read.photo is not None else None
        self._enqueue(final, photo if self.send_photo else None)

    def rechecked(self, result: Verification, previous: dict[str, Any]) -> None:
        """Posted again with ``recheck`` (the previous status, source and time): the HIS
        that took the offline answer learns it changed."""
        self._enqueue(result, None, recheck=previous)

    def _enqueue(self, result: Verification, photo: bytes | None,
                 recheck: dict[str, Any] | None = None) -> None:
        entry_id = uuid.uuid4().hex
        payload = webhook.body(result.credential, result.eligibility.to_json(),
                               event_id=entry_id, photo=photo)
        if recheck is not None:
            payload["recheck"] = dict(recheck)
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        self.ledger.queue(entry_id, data)
        loop, wake = self._loop, self._written
        if loop is None or wake is None:
            return
        if threading.get_ident() == self._thread:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    # -- delivery ---------------------------------------------------------------------------
    async def _write_loop(self) -> None:
        """Written at once, whatever the deliverer is waiting for: a body in memory is lost
        by a crash, a body in the outbox is not."""
        assert self._written is not None and self._wake is not None
        while True:
            await self._written.wait()
            self._written.clear()
            try:
                await asyncio.to_thread(self.ledger.persist)
            except Exception:  # a full or broken disk: counted, tried again in a second
                self.counts["write_failed"] += 1
                log.exception("webhook outbox write failed")
                loop = asyncio.get_running_loop()
                loop.call_later(1.0, self._written.set)
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        async with Poster(timeout_seconds=self.timeout) as poster:
            while True:
                try:
                    await self._round(poster)
                    nxt = await asyncio.to_thread(self.outbox.next_due)
                except Exception:  # a broken disk: held back like a down HIS, never a spin
                    self.counts["round_failed"] += 1
                    log.exception("webhook round failed")
                    self._hold_until = self._clock() + self.max_retry_seconds
                    nxt = None
                now = self._clock()
                wait = IDLE_SECONDS if nxt is None else min(
                    IDLE_SECONDS, max(0.0, max(nxt, self._hold_until) - now))
                if self._hold_until > now:
                    wait = min(IDLE_SECONDS, max(wait, self._hold_until - now))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                self._wake.clear()

    async def _round(self, poster: Poster) -> None:
        await asyncio.to_thread(self.ledger.expire, self.keep_seconds)
        while self._clock() >= self._hold_until:
            entries = await asyncio.to_thread(self.ledger.due, BATCH)
            for entry in entries:
                if not await self._deliver(poster, entry.id, entry.body, entry.attempts):
                    return  # the HIS is down: everything waits for the back-off
            if len(entries) < BATCH:
                return

    async def _deliver(self, poster: Poster, entry_id: str, body: bytes,
                       attempts: int) -> bool:
        """True when the round may go on (delivered, or refused for this entry only)."""
        stamp = int(self._clock())
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "User-Agent": f"tiepdon/{self.version}",
                   webhook.IDEMPOTENCY_HEADER: entry_id,
                   webhook.TIMESTAMP_HEADER: str(stamp),
                   webhook.SIGNATURE_HEADER: webhook.signature(self.secret, stamp, body)}
        status: int | None = None
        try:
            async with asyncio.timeout(self.timeout):  # a trickling HIS has a hard deadline
                status = await poster.post(self.url, body, headers)
        except PostUnanswered as e:
            self.last_error = e.kind
        except (TimeoutError, OSError) as e:
            self.last_error = type(e).__name__
        if status is not None and 200 <= status < 300:
            await asyncio.to_thread(self.ledger.delivered, entry_id)
            self.last_error, self.down_since = None, None
            return True
        delay = webhook.retry_after(attempts + 1, secrets.randbelow(1000) / 1000,
                                    first=self.first_retry_seconds,
                                    most=self.max_retry_seconds)
        due = self._clock() + delay
        if status in ENTRY_REFUSED:
            self.last_error = f"HTTP {status}"
            if attempts + 1 >= MAX_REJECTIONS:
                await asyncio.to_thread(self.ledger.rejected, entry_id)
                log.error("webhook: an entry refused %d times (HTTP %d) was dropped",
                          MAX_REJECTIONS, status)
            else:
                await asyncio.to_thread(self.ledger.retry, entry_id, due)
            return True
        if status is not None:
            self.last_error = f"HTTP {status}"
        if self.down_since is None:
            self.down_since = self._clock()
            log.warning("webhook: HIS unreachable (%s); entries wait", self.last_error)
        await asyncio.to_thread(self.ledger.retry, entry_id, due)
        self._hold_until = due  # every entry waits, the ones queued meanwhile too
        return False

    async def wake(self) -> None:
        """Try now (tests, and an operator after fixing the HIS)."""
        if self._wake is not None:
            self._wake.set()

    def waiting(self) -> int:
        """Entries not yet delivered (kept count, no SQLite on the caller's thread)."""
        return self.ledger.waiting()

    def health(self) -> dict[str, str]:
        """Degraded while the HIS fails, and for one privacy window after entries were lost
        (terminal/feeds/ledger.py)."""
        problems = [p for p in (self.last_error, self.ledger.loss(self.keep_seconds)) if p]
        waiting = f"{self.waiting()} waiting"
        if not problems:
            return {"status": "ok", "reason": waiting}
        return {"status": "degraded",
                "reason": "HIS webhook: " + "; ".join([*problems, waiting])}
