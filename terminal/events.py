"""An in-process publish/subscribe bus for the server-sent events of ``/api/v1/events`` (staff
page and HIS) and ``/api/v1/kiosk/events`` (the patient-facing display).

Streams come from two pools: the desk's (staff and HIS, ``http.max_streams`` in all and
``http.max_streams_per_client`` from one address) and the kiosk's, small because it is one
public screen (``http.max_kiosk_streams``, ``http.max_kiosk_streams_per_client``), so the
public page can never take the places the HIS and the staff need. Past a pool's limit a stream
is refused (:class:`StreamsFull`) instead of slowing every publish.

A stream belongs to whoever opened it: its ``live`` check (a staff session still open) is asked
before each event is sent, and :meth:`EventBus.recheck` ends at once the streams of a session
that has just closed. Each subscriber's queue is bounded: a client that stops reading until
``QUEUE_SIZE`` events wait for it is ended — its place and queue given back, counted — rather
than queued for without end or silently skipped (its page reconnects and reads the latest
answer). Closing the bus ends every stream (daemon shutdown).
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

EVENT_NAMES = frozenset({"credential", "eligibility", "photo", "device", "error", "chip",
                         "history", "card_text"})
QUEUE_SIZE = 64
END_REASONS = ("session", "slow")  # why the bus ended a stream (its metric's label values)


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    data: dict[str, Any]
    id: int

    def encode(self) -> bytes:
        payload = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f"id: {self.id}\nevent: {self.name}\ndata: {payload}\n\n".encode()


class StreamsFull(Exception):
    """Too many open streams in this pool, from this client or in all."""


class Pool:
    """A budget of streams: at most ``total`` open, ``per_client`` of them from one address."""

    def __init__(self, name: str, total: int, per_client: int) -> None:
        self.name = name
        self.total = total
        self.per_client = per_client
        self.open = 0
        self.refused = 0
        self._per_client: Counter[str] = Counter()

    def take(self, client: str) -> None:
        if self.open >= self.total or self._per_client[client] >= self.per_client:
            self.refused += 1
            raise StreamsFull(client)
        self.open += 1
        self._per_client[client] += 1

    def give(self, client: str) -> None:
        self.open -= 1
        self._per_client[client] -= 1
        if self._per_client[client] <= 0:
            del self._per_client[client]


def _always() -> bool:
    return True


class Subscription:
    """One stream's place on the bus; released when the stream ends or is dropped unstarted."""

    def __init__(self, bus: EventBus, client: str, pool: Pool,
                 live: Callable[[], bool]) -> None:
        self.bus = bus
        self.client = client
        self.pool = pool
        self.live = live  # may whoever opened the stream still see it?
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_SIZE)
        self._released = False

    def end(self, reason: str) -> None:
        """End the stream now: what waits in its queue is never sent, its place is given
        back, and ``reason`` (one of ``END_REASONS``) is counted."""
        if self._released:
            return
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)
        self.bus.ended[reason] += 1
        self.release()

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.bus._drop(self)

    def __del__(self) -> None:  # a response never started still gives its place back
        self.release()


class EventBus:
    def __init__(self, *, max_total: int = 128, max_per_client: int = 16,
                 kiosk_total: int = 4, kiosk_per_client: int = 2) -> None:
        # Weak: a stream whose response never started (the client left first, so its body
        # and its ``finally`` never ran) is dropped with the response and gives its place
        # back in ``Subscription.__del__``; a strong set would keep it, and its place, forever.
        self._subscribers: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self.desk = Pool("desk", max_total, max_per_client)
        self.kiosk = Pool("kiosk", kiosk_total, kiosk_per_client)
        self.ended: Counter[str] = Counter()  # streams the bus ended, by END_REASONS
        self._next_id = 1
        self._closed = False

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def pools(self) -> tuple[Pool, Pool]:
        return (self.desk, self.kiosk)

    def publish(self, name: str, data: dict[str, Any]) -> None:
        if name not in EVENT_NAMES:
            raise ValueError(f"unknown event {name}")
        event = Event(name, data, self._next_id)
        self._next_id += 1
        # A copy: a dropped stream's place may be given back (its __del__) at any moment.
        for sub in list(self._subscribers):
            if sub.queue.full():
                sub.end("slow")  # QUEUE_SIZE events behind: not reading, or far too slow
            else:
                sub.queue.put_nowait(event)

    def open(self, client: str, *, kiosk: bool = False,
             live: Callable[[], bool] | None = None) -> Subscription:
        """A place on the bus for ``client`` (its address) from the desk's pool or the
        kiosk's, or :class:`StreamsFull`; taken synchronously, so concurrent requests cannot
        all pass the check. ``live`` is asked before each event is sent (None: the stream
        lives as long as the daemon — the loopback desk, an HIS token). ``None`` in the
        queue means the stream is over (the bus closed, or the bus ended it)."""
        pool = self.kiosk if kiosk else self.desk
        pool.take(client)
        sub = Subscription(self, client, pool, live or _always)
        if self._closed:
            sub.queue.put_nowait(None)
        self._subscribers.add(sub)
        return sub

    def recheck(self) -> None:
        """End every stream whose owner may no longer see it (a session has just closed)."""
        for sub in list(self._subscribers):
            if not sub.live():
                sub.end("session")

    def _drop(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.discard(sub)
            sub.pool.give(sub.client)

    def close(self) -> None:
        self._closed = True
        for sub in list(self._subscribers):
            if sub.queue.full():
                sub.queue.get_nowait()
            sub.queue.put_nowait(None)
