"""An in-process publish/subscribe bus for the server-sent events of ``/api/v1/events``.

Each subscriber gets a bounded queue; a slow page loses the oldest events rather than
holding memory or blocking the desk. Closing the bus ends every stream (daemon shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

EVENT_NAMES = frozenset({"credential", "eligibility", "photo", "device", "error", "chip"})
QUEUE_SIZE = 64


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    data: dict[str, Any]
    id: int

    def encode(self) -> bytes:
        payload = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f"id: {self.id}\nevent: {self.name}\ndata: {payload}\n\n".encode()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[Event | None]] = set()
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
        for queue in self._subscribers:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[Event | None]]:
        """A queue of events until the block exits; ``None`` in it means the bus closed."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_SIZE)
        if self._closed:
            queue.put_nowait(None)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    def close(self) -> None:
        self._closed = True
        for queue in self._subscribers:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(None)
