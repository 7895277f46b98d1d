"""What the terminal offers an HIS besides its HTTP API: the HN212-compatible Socket.IO feed
(``hn212.py``) and the webhook (``webhook.py``; its outbox's accounting in ``ledger.py``).
Both listen to the same moments of the verification flow through :class:`Feeds`:

    placed      a chip read begins (HN212 id 1)
    decided     a verification was decided (id 2; the webhook for QR and typed checks)
    chip_done   a chip read ended: the final decision after CA, AA and the photo (ids 4, 5;
                the webhook for chip reads), ``read`` None when it ended early; what the
                chip proved is the credential's ChipEvidence (verify/evidence.py)
    failed      an error staff were told about (id 3)
    rechecked   an answer given offline changed when the registry was asked again (the
                webhook posts it again, marked; the HN212 feed has no message for it)

A feed never slows or breaks the desk: calls arrive on the event loop, a feed only queues,
and an exception inside one is logged and counted, not raised.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Protocol

from readers.emrtd.chip import ChipRead
from readers.emrtd.mrz import AccessKey, CanKey
from terminal.flow.results import Actor, Verification

log = logging.getLogger(__name__)


class ChipPort(Protocol):
    """What a feed may ask of the desk's chip reader (terminal/chip): no more."""

    @property
    def reader_name(self) -> str: ...

    @property
    def busy(self) -> bool: ...

    async def read(self, keys: list[AccessKey | CanKey], *, actor: Actor) -> object: ...

    async def sign_challenge(self, challenge: bytes) -> bytes: ...


class Feed(Protocol):
    def placed(self) -> None: ...

    def decided(self, result: Verification) -> None: ...

    def chip_done(self, final: Verification, read: ChipRead | None) -> None: ...

    def failed(self, error: dict[str, Any]) -> None: ...

    def rechecked(self, result: Verification, previous: dict[str, Any]) -> None: ...


class Feeds:
    """Fan-out to every configured feed; a feed's failure is its own."""

    def __init__(self, feeds: list[Feed] | None = None) -> None:
        self.feeds: list[Feed] = list(feeds or [])
        self.errors: Counter[str] = Counter()

    def add(self, feed: Feed) -> None:
        self.feeds.append(feed)

    def _each(self, method: str, *args: Any) -> None:
        for feed in self.feeds:
            try:
                getattr(feed, method)(*args)
            except Exception:  # a feed's bug must not reach the desk
                name = type(feed).__name__
                self.errors[name] += 1
                log.exception("feed %s failed in %s", name, method)

    def placed(self) -> None:
        self._each("placed")

    def decided(self, result: Verification) -> None:
        self._each("decided", result)

    def chip_done(self, final: Verification, read: ChipRead | None) -> None:
        self._each("chip_done", final, read)

    def failed(self, error: dict[str, Any]) -> None:
        self._each("failed", error)

    def rechecked(self, result: Verification, previous: dict[str, Any]) -> None:
        self._each("rechecked", result, previous)
