"""The reader watcher: reader hot-plug and card insert/remove as ``device`` events; a card
placed soon after a CCCD QR was scanned (on any intake path) is read with that QR's keys.
Runs for the daemon's life; pcscd restarts included."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from readers.emrtd.mrz import AccessKey, CanKey
from terminal.events import EventBus
from terminal.feeds import Feeds
from terminal.flow.offers import KeyOffers


class CardWatcher(Protocol):
    def poll(self, timeout_ms: int) -> dict[str, bool] | None:
        """Reader name → card present; None when pcscd cannot be reached."""
        ...

    def close(self) -> None: ...


ReadCard = Callable[[list[AccessKey | CanKey], str], Awaitable[Any]]


class ReaderWatch:
    def __init__(self, *, bus: EventBus, offers: KeyOffers, feeds: Feeds, read: ReadCard,
                 needs_key: dict[str, str]) -> None:
        self.bus = bus
        self.needs_key = needs_key  # staff's sentence (messages.toml notice.chip_needs_key)
        self.offers = offers
        self.feeds = feeds
        self.read = read
        self.readers: dict[str, bool] | None = None  # what the watcher saw last

    async def run(self, make_watcher: Callable[[], CardWatcher]) -> None:
        watcher = make_watcher()
        try:
            while True:
                state = await asyncio.to_thread(watcher.poll, 500)
                await self.seen(state)
                if state is None:
                    await asyncio.sleep(1.0)
        finally:
            watcher.close()

    async def seen(self, state: dict[str, bool] | None) -> None:
        """One poll's answer: publish what changed; read a card placed after a CCCD QR."""
        previous, self.readers = self.readers, state
        if state is None:
            if previous is not None:
                self.bus.publish("device", {"device": "chip_reader", "status": "down",
                                            "reason": "pcscd unreachable"})
            return
        for reader, present in state.items():
            before = (previous or {}).get(reader)
            if before is None or before != present:
                self.bus.publish("device", {"device": "chip_reader", "status": "ok",
                                            "reader": reader, "card": present})
            if present and before is False:
                await self.placed(reader)
        for reader in set(previous or {}) - set(state):
            self.bus.publish("device", {"device": "chip_reader", "status": "down",
                                        "reader": reader, "reason": "unplugged"})

    async def placed(self, reader: str) -> None:
        keys = self.offers.take()
        if keys is not None:
            await self.read(keys, reader)
        else:  # the HIS feed may answer with /input_data
            self.feeds.placed()
            self.feeds.failed(dict(self.needs_key))
