"""The daemon's app factory: ``create_app(settings, services)``, no module-level app.

The lifespan starts the background loops (``loops.py``), the HIS feeds, the reader watcher and
the devices, and on shutdown stops them, drains the audit, ends every event stream and closes
the registry client. The routes are in ``routes/``, one router per resource; the parts they use
are built in ``services.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp

from terminal import __version__, security, systemd
from terminal.chip.source import PcscSource
from terminal.keys import derive_key
from terminal.loops import audit_loop, probe_loop, purge_loop
from terminal.resources import static_dir
from terminal.routes import chip, demo, kiosk, login, ops, pages, verify
from terminal.server import PortRouter
from terminal.services import Services, audit_dir, build_services, cache_dir
from terminal.settings import Settings, read_reading_key
from terminal.status import gauges

# Names the CLI and older callers import from here.
__all__ = ["Services", "audit_dir", "build_services", "cache_dir", "create_app", "derive_key",
           "read_reading_key", "with_feeds"]

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(settings: Settings, services: Services) -> FastAPI:
    app: FastAPI = FastAPIOffline(
        title="Tiếp Đón",
        summary="Reception verification terminal: CCCD / BHYT eligibility for the HIS",
        version=__version__,
        lifespan=lifespan(settings, services),
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.services = services
    services.verifier.metrics.gauges = lambda: gauges(services)
    users = security.staff_users(settings)
    security.install(app, settings, key=services.auth_key, users=users)
    if users is not None:
        app.include_router(login.router)
    for routes in (verify, chip, ops, kiosk):
        app.include_router(routes.router)
    if services.is_demo:
        app.include_router(demo.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    security.add_gate(app, settings)  # outermost: runs before anything else
    return app


def lifespan(settings: Settings, services: Services) -> Lifespan:
    """Start what runs beside the routes; on shutdown stop it all, the audit drained first."""

    @contextlib.asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        tasks = await _start(settings, services)
        systemd.notify("READY=1\nSTATUS=serving")
        try:
            yield
        finally:
            await _stop(services, tasks)
            security.close(app)

    return run


async def _start(settings: Settings, services: Services) -> list[asyncio.Task[None]]:
    tasks = [asyncio.create_task(purge_loop(services.verifier, services.chip))]
    if services.registry is not None:
        tasks.append(asyncio.create_task(probe_loop(
            services.registry, services.verifier, services.offline, services.probe_seconds)))
    if services.audit is not None:
        tasks.append(asyncio.create_task(audit_loop(services.audit,
                                                    services.audit_check_seconds)))
    if services.offline is not None:
        await asyncio.to_thread(services.offline.load)  # signature + content hash
    for feed in (services.hn212, services.webhook):
        if feed is not None:
            feed.start()
    chip = services.chip
    if chip is not None and isinstance(chip.source, PcscSource) and services.watch_readers:
        from readers.devices.pcsc import ReaderWatcher  # pyscard only where a reader is watched

        tasks.append(asyncio.create_task(chip.run_watcher(ReaderWatcher)))
    devices = services.devices
    if devices is not None:
        devices.start(asyncio.get_running_loop(), camera=settings.camera.source,
                      fps=settings.camera.fps, repeat_seconds=settings.camera.repeat_seconds,
                      read_cards=settings.camera.read_cards,
                      scanner=settings.scanner.port, baud=settings.scanner.baud)
    interval = systemd.watchdog_interval()
    if interval:
        tasks.append(asyncio.create_task(systemd.watchdog(
            lambda: all(not t.done() for t in tasks[:-1] or [])
            and (devices is None or devices.alive()), interval)))
    return tasks


async def _stop(services: Services, tasks: list[asyncio.Task[None]]) -> None:
    if services.devices is not None:
        await asyncio.to_thread(services.devices.stop)
    await asyncio.to_thread(services.verifier.drain)  # the last audit records
    for feed in (services.hn212, services.webhook):
        if feed is not None:
            await feed.stop()
    services.bus.close()
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if services.registry is not None:
        await services.registry.aclose()


def with_feeds(app: FastAPI, services: Services, hn212_port: int, *,
               metrics_port: int = 0, metrics_token: bytes | None = None) -> ASGIApp:
    """The app the server runs: the HIS feed's port routed to the feed, the metrics
    listener's to the scrape app (``terminal/scrape.py``), the rest to ``app``."""
    by_port: dict[int, ASGIApp] = {}
    if services.hn212 is not None:
        by_port[hn212_port] = services.hn212.app
    if metrics_port and metrics_token is not None:
        from terminal.scrape import create_scrape_app

        by_port[metrics_port] = create_scrape_app(services, metrics_token)
    return PortRouter(app, by_port) if by_port else app
