"""The daemon's timers, run in the lifespan's tasks: the privacy-window purge, the registry
probe (with the re-checks of offline answers once the registry is back) and the audit chain's
self-check."""

from __future__ import annotations

import asyncio
import logging

from terminal.audit import AuditLog
from terminal.chip import ChipService
from terminal.flow.verifier import Verifier
from terminal.offline import OfflineStore
from verify.adapters.registry_client import RegistryClient

PURGE_SECONDS = 30.0
PROBE_SECONDS = 60.0
AUDIT_CHECK_SECONDS = 600.0
log = logging.getLogger(__name__)


async def purge_loop(verifier: Verifier, chip: ChipService | None) -> None:
    """The privacy windows kept on a timer: the visit history, the chip photo and keys."""
    while True:
        await asyncio.sleep(PURGE_SECONDS)
        verifier.history.purge()
        if chip is not None:
            chip.purge()


async def probe_loop(registry: RegistryClient, verifier: Verifier,
                     offline: OfflineStore | None, every: float) -> None:
    """Registry health, and re-checks of offline answers once the registry is back."""
    while True:
        try:
            await registry.reach()  # a real request: tiepdon_registry_up
            await registry.probe()
            if verifier.pending and registry.breaker.allow():
                await verifier.recheck()  # after an outage this is the breaker's trial
            if offline is not None:
                offline.purge()
                await asyncio.to_thread(offline.reload_if_changed)
        except Exception as e:
            # A round that failed in a way nobody foresaw must not end the health checks for
            # good (health would stay "not checked yet"): said, and tried again next round.
            log.error("registry probe round failed: %s", type(e).__name__)
        await asyncio.sleep(every)


async def audit_loop(audit: AuditLog, every: float) -> None:
    """The whole audit chain checked now and then (tiepdon_audit_chain_ok): a record edited,
    removed or cut from the end on this desk's disk is noticed within ``every`` seconds."""
    while True:
        await asyncio.to_thread(audit.self_check)
        await asyncio.sleep(every)
