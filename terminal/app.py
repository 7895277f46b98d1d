"""The daemon's app factory: ``create_app(settings, services)``, no module-level app.

The lifespan starts the registry health probe and, on shutdown, ends every event stream and
closes the registry client. Our errors become HTTP answers in one place (``api.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from terminal import api, pages
from terminal.chipflow import ChipService, ChipSource, PcscSource, load_csca_dir
from terminal.events import EventBus
from terminal.service import Verifier, load_or_create_key, load_tables
from terminal.settings import Settings
from verify.registry_client import RegistryClient

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"
PROBE_SECONDS = 60.0


@dataclass
class Services:
    """What the routes use; built by the CLI (``serve``, ``demo``) or by a test."""

    verifier: Verifier
    bus: EventBus
    registry: RegistryClient | None = None
    chip: ChipService | None = None
    probe_seconds: float = PROBE_SECONDS
    watch_readers: bool = True
    extra_health: dict[str, dict[str, str]] = field(default_factory=dict)


async def _probe_loop(registry: RegistryClient, every: float) -> None:
    while True:
        await registry.probe()
        await asyncio.sleep(every)


def create_app(settings: Settings, services: Services) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = []
        if services.registry is not None:
            tasks.append(asyncio.create_task(_probe_loop(services.registry,
                                                         services.probe_seconds)))
        chip = services.chip
        if chip is not None and isinstance(chip.source, PcscSource) and services.watch_readers:
            from readers.pcsc import ReaderWatcher  # pyscard only where a reader is watched

            tasks.append(asyncio.create_task(chip.watch(ReaderWatcher)))
        try:
            yield
        finally:
            services.bus.close()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if services.registry is not None:
                await services.registry.aclose()

    app: FastAPI = FastAPIOffline(
        title="Tiếp Đón",
        summary="Reception verification terminal: CCCD / BHYT eligibility for the HIS",
        version="0.1.0",
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.services = services
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def build_services(settings: Settings, *, online: bool = True, key: bytes | None = None,
                   now: Callable[[], datetime] | None = None,
                   chip_source: ChipSource | None = None,
                   trust: list[x509.Certificate] | None = None) -> Services:
    """Tables, the fingerprint key and the registry client, as the settings say."""
    tables = load_tables(settings.data.tables_dir)
    registry = None
    if online:
        registry = RegistryClient(
            settings.registry.url,
            settings.registry.username,
            settings.registry.password.get_secret_value(),
            timeout_seconds=settings.registry.timeout_seconds,
            verify_tls=settings.registry.verify_tls,
        )
    bus = EventBus()
    verifier = Verifier(
        tables=tables,
        facility_code=settings.facility.code,
        officer_name=settings.officer.name,
        officer_id=settings.officer.id,
        registry=registry,
        key=key if key is not None else load_or_create_key(settings.data.dir),
        bus=bus,
        keep_last_seconds=settings.privacy.last_result_minutes * 60,
        now=now,
    )
    chip = ChipService(
        chip_source or PcscSource(settings.chip.reader or None), verifier=verifier, bus=bus,
        trust=trust if trust is not None else load_csca_dir(settings.chip.csca_dir),
        extended=settings.chip.extended_length, retries=settings.chip.retries,
        keep_seconds=settings.privacy.last_result_minutes * 60, now=now)
    return Services(verifier=verifier, bus=bus, registry=registry, chip=chip)
