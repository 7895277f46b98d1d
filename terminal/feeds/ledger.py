"""The webhook outbox's accounting (``webhook.py`` delivers, this keeps the books): bodies
waiting in memory to be written, how many entries are on disk without asking SQLite on the
caller's thread, what became of every entry (the counters of /metrics) and what was lost
before delivery.

A loss — entries sealed under an earlier terminal key, entries that failed their tag, an
outbox file set aside as unreadable — is counted by reason, logged once with its number (by
``verify/adapters/outbox.py``), and keeps the feed's health ``degraded`` for one privacy
window (``[his] webhook_keep_hours``) after it was found: by then the lost entries would have
been dropped unsent anyway, and a monitor that looks at health less often than that is not
watching. The counter stays until the daemon restarts.

The methods that touch the outbox are blocking (SQLite): the feed calls them in worker threads.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from collections.abc import Callable

from verify.adapters.outbox import Entry, Outbox

log = logging.getLogger(__name__)
# Why entries were lost before delivery (the ``reason`` label of
# tiepdon_his_webhook_lost_total): sealed under an earlier terminal key; failed their tag.
LOSS_REASONS = ("key_changed", "tag_failed")
LOSS_TEXT = {"key_changed": "terminal key changed", "tag_failed": "failed their tag"}


class Ledger:
    def __init__(self, outbox: Outbox, clock: Callable[[], float]) -> None:
        self.outbox = outbox
        self._clock = clock
        self.incoming: deque[tuple[str, bytes]] = deque()  # decided, not yet written
        self.counts: Counter[str] = Counter()  # queued, written, delivered, retried, expired…
        self.lost: Counter[str] = Counter({reason: 0 for reason in LOSS_REASONS})
        self.lost_at: float | None = None  # when the latest loss was found
        self.set_aside = outbox.lost  # the outbox file was unreadable: its entries are gone
        self._persisting = threading.Lock()
        self._stored = outbox.count()  # entries on disk (the kept count, read by metrics)
        self._stored_lock = threading.Lock()
        if outbox.lost:
            self.counts["lost"] += 1
            self.lost_at = clock()
        if outbox.key_changed:
            self._lose("key_changed", outbox.key_changed)

    # -- in memory, then on disk ---------------------------------------------------------
    def queue(self, entry_id: str, data: bytes) -> None:
        self.incoming.append((entry_id, data))
        self.counts["queued"] += 1

    def persist(self) -> None:
        """Written, then taken off the queue: a failed write (a full disk) keeps the body in
        memory for the next try. One writer at a time; an id written twice is one entry."""
        with self._persisting:
            while self.incoming:
                entry_id, data = self.incoming[0]
                if self.outbox.put(entry_id, data, self._clock()):
                    self.counts["written"] += 1
                    self._adjust(1)
                else:
                    self.counts["refused_full"] += 1
                    log.error("webhook outbox full: an entry was not kept")
                self.incoming.popleft()

    # -- what became of each entry -------------------------------------------------------
    def expire(self, keep_seconds: float) -> int:
        """Entries past the privacy window are dropped unsent; how many."""
        expired = self.outbox.purge(self._clock() - keep_seconds)
        self._adjust(-expired)
        if expired:
            self.counts["expired"] += expired
            log.warning("webhook: %d entries dropped after the privacy window", expired)
        return expired

    def due(self, limit: int) -> list[Entry]:
        entries, dropped = self.outbox.due(self._clock(), limit)
        if dropped:
            self._adjust(-dropped)
            self._lose("tag_failed", dropped)
        return entries

    def delivered(self, entry_id: str) -> None:
        self.outbox.delete(entry_id)
        self._adjust(-1)
        self.counts["delivered"] += 1

    def rejected(self, entry_id: str) -> None:
        self.outbox.delete(entry_id)
        self._adjust(-1)
        self.counts["rejected"] += 1

    def retry(self, entry_id: str, due: float) -> None:
        self.outbox.retry(entry_id, due)
        self.counts["retried"] += 1

    def _lose(self, reason: str, n: int) -> None:
        self.lost[reason] += n
        self.lost_at = self._clock()

    def _adjust(self, n: int) -> None:
        with self._stored_lock:
            self._stored += n

    # -- what health and metrics read (no SQLite) ----------------------------------------
    def waiting(self) -> int:
        """Entries not yet delivered: on disk and in memory."""
        return max(0, self._stored) + len(self.incoming)

    def loss(self, keep_seconds: float) -> str | None:
        """What was lost, while the loss is within one privacy window of being found."""
        if self.lost_at is None or self._clock() - self.lost_at >= keep_seconds:
            return None
        parts = [f"{n} entries lost ({LOSS_TEXT[reason]})"
                 for reason, n in self.lost.items() if n]
        if self.set_aside:
            parts.append("outbox file unreadable, set aside")
        return "; ".join(parts)
