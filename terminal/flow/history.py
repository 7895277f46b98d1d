"""Visit history at reception, beside the decision and never in its way: looked up after the
eligibility answer was given (``verify/history.py`` parses, and drops diagnoses), published as
the ``history`` event, kept with the latest result for the privacy window only. A history that
cannot be had is "unavailable" — it never changes or delays the eligibility."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import date
from typing import Any, Protocol

from verify.errors import RegistryError
from verify.history import Visit, history_json, unavailable_json
from verify.registry import CardQuery

log = logging.getLogger(__name__)


class HistoryPort(Protocol):
    async def history(self, query: CardQuery) -> list[Visit]: ...


class History:
    def __init__(self, registry: HistoryPort | None, *, enabled: bool, keep_seconds: float,
                 timeout_seconds: float, today: Callable[[], date],
                 publish: Callable[[str, dict[str, Any]], None]) -> None:
        self.registry = registry
        self.enabled = enabled and registry is not None
        self.keep_seconds = keep_seconds
        self.timeout_seconds = timeout_seconds
        self._today = today
        self._publish = publish
        self._last: tuple[float, str | None, dict[str, Any]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._generation = 0
        self.outcomes: dict[str, int] = {}

    def start(self, fingerprint: str | None, query: CardQuery, *, online: bool) -> None:
        """Begin the lookup for the patient just decided (``online``: the registry answered;
        when it did not, the history is not asked for either). Whatever was shown before
        belongs to the previous patient and is dropped at once."""
        if not self.enabled:
            return
        self._generation += 1
        if not online:
            self._done(self._generation, fingerprint, unavailable_json("registry offline"))
            return
        self._last = (time.monotonic(), fingerprint, {"status": "pending", "visits": []})
        task = asyncio.get_running_loop().create_task(
            self._run(self._generation, fingerprint, query))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, generation: int, fingerprint: str | None, query: CardQuery) -> None:
        assert self.registry is not None
        try:
            async with asyncio.timeout(self.timeout_seconds):
                visits = await self.registry.history(query)
            data = history_json(visits, self._today())
        except (RegistryError, TimeoutError) as e:
            log.info("visit history unavailable fp=%s reason=%s", fingerprint, type(e).__name__)
            data = unavailable_json(type(e).__name__)
        except Exception as e:  # never leave the page saying "pending" for the whole window
            log.exception("visit history failed fp=%s", fingerprint)
            data = unavailable_json(type(e).__name__)
        self._done(generation, fingerprint, data)

    def _done(self, generation: int, fingerprint: str | None, data: dict[str, Any]) -> None:
        self.outcomes[data["status"]] = self.outcomes.get(data["status"], 0) + 1
        if generation != self._generation:
            return  # a newer patient came meanwhile: this answer is for nobody now
        self._last = (time.monotonic(), fingerprint, data)
        self._publish("history", {"raw_fingerprint": fingerprint, **data})

    def purge(self) -> None:
        """Forget the history once the privacy window has passed (run on a timer)."""
        last = self._last
        if last is not None and time.monotonic() - last[0] > self.keep_seconds:
            self._last = None

    def get(self, fingerprint: str | None) -> dict[str, Any]:
        """The history of the patient with this fingerprint, while the privacy window lasts."""
        if not self.enabled:
            return {"status": "off", "visits": []}
        last = self._last
        if last is None or time.monotonic() - last[0] > self.keep_seconds:
            self._last = None
            return {"status": "none", "visits": []}
        if last[1] != fingerprint:
            return {"status": "none", "visits": []}
        return last[2]
