"""An in-process publish/subscribe bus for the server-sent events of ``/api/v1/events``.

Each subscriber gets a bounded queue; a slow page loses the oldest events rather than
holding memory or blocking the desk. Subscribers are capped in total and per client address,
so a flood of streams is refused (:class:`StreamsFull`) instead of slowing every publish.
Closing the bus ends every stream (daemon shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

EVENT_NAMES = frozenset({"credential", "eligibility", "photo", "device", "error", "chip",
                         "history", "card_text"})
QUEUE_SIZE = 64


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    data: dict[str, Any]
    id: int

    def encode(self) -> bytes:
        payload = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f"id: {self.id}\nevent: {self.name}\ndata: {payload}\n\n".encode()


class StreamsFull(Exception):
    """Too many open streams, from this client or in all."""


class Subscription:
    """One stream's place on the bus; released when the stream ends or is dropped unstarted."""

    def __init__(self, bus: EventBus, client: str) -> None:
        self.bus = bus
        self.client = client
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_SIZE)
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.bus._drop(self)

    def __del__(self) -> None:  # a response never started still gives its place back
        self.release()


class EventBus:
    def __init__(self, *, max_total: int = 128, max_per_client: int = 16) -> None:
        self._subscribers: set[Subscription] = set()
        self._per_client: Counter[str] = Counter()
        self.max_total = max_total
        self.max_per_client = max_per_client
        self._next_id = 1
        self._closed = False

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def publish(self, name: str, data: dict[str, Any]) -> None:
        if name not in EVENT_NAMES:
            raise ValueError(f"unknown event {name}")
        event = Event(name, data, self._next_id)
        self._next_id += 1
        # A copy: a dropped stream's place may be given back (its __del__) at any moment.
        for sub in list(self._subscribers):
            _put(sub.queue, event)

    def open(self, client: str) -> Subscription:
        """A place on the bus for ``client`` (its address), or :class:`StreamsFull`; taken
        synchronously, so concurrent requests cannot all pass the check. ``None`` in the
        queue means the bus closed."""
        if (len(self._subscribers) >= self.max_total
                or self._per_client[client] >= self.max_per_client):
            raise StreamsFull(client)
        sub = Subscription(self, client)
        if self._closed:
            sub.queue.put_nowait(None)
        self._subscribers.add(sub)
        self._per_client[client] += 1
        return sub

    def _drop(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.discard(sub)
            self._per_client[sub.client] -= 1
            if self._per_client[sub.client] <= 0:
                del self._per_client[sub.client]

    def close(self) -> None:
        self._closed = True
        for sub in list(self._subscribers):
            _put(sub.queue, None)


def _put(queue: asyncio.Queue[Event | None], item: Event | None) -> None:
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(item)
