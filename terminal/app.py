"""The daemon's app factory: ``create_app(settings, services)``, no module-level app.

The lifespan starts the registry health probe and, on shutdown, ends every event stream and
closes the registry client. Our errors become HTTP answers in one place (``api.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp

from terminal import __version__, api, pages, security, systemd
from terminal.audit import AuditLog
from terminal.chip import ChipService
from terminal.chip.flow import ChipFlow, PhotoStore, ReadSettings
from terminal.chip.signing import SigningWindow
from terminal.chip.source import ChipSource, PcscSource, load_csca_dir
from terminal.chip.watcher import ReaderWatch
from terminal.events import EventBus
from terminal.feeds.hn212 import Hn212Feed
from terminal.feeds.webhook import WebhookFeed
from terminal.flow.offers import KeyOffers
from terminal.flow.verifier import Verifier
from terminal.offline import OfflineStore, load_terminal_key
from terminal.resources import load_tables, static_dir
from terminal.scanners import DeviceHub
from terminal.server import PortRouter
from terminal.settings import Settings, read_reading_key
from verify.adapters.journal import Journal
from verify.adapters.outbox import Outbox
from verify.adapters.registry_client import CircuitBreaker, RegistryClient

log = logging.getLogger(__name__)
PROBE_SECONDS = 60.0


@dataclass
class Services:
    """What the routes use; built by the CLI (``serve``, ``demo``) or by a test."""

    verifier: Verifier
    bus: EventBus
    registry: RegistryClient | None = None
    chip: ChipService | None = None
    offline: OfflineStore | None = None
    devices: DeviceHub | None = None
    demo_clip: Path | None = None  # demo: the clip that POST /api/v1/camera/demo replays
    auth_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))  # sessions
    probe_seconds: float = PROBE_SECONDS
    watch_readers: bool = True
    hn212: Hn212Feed | None = None  # the HN212-compatible HIS feed ([his] hn212_port)
    webhook: WebhookFeed | None = None  # the HIS webhook ([his] webhook_url)
    extra_health: dict[str, dict[str, str]] = field(default_factory=dict)


PURGE_SECONDS = 30.0


async def _purge_loop(services: Services) -> None:
    """The privacy windows kept on a timer: the visit history, the chip photo and keys."""
    while True:
        await asyncio.sleep(PURGE_SECONDS)
        services.verifier.history.purge()
        if services.chip is not None:
            services.chip.purge()


async def _probe_loop(services: Services, every: float) -> None:
    """Registry health, and re-checks of offline answers once the registry is back."""
    registry = services.registry
    assert registry is not None  # started only with a registry
    while True:
        await registry.probe()
        if services.verifier.pending and registry.breaker.allow():
            await services.verifier.recheck()  # after an outage this is the breaker's trial
        if services.offline is not None:
            services.offline.purge()
            await asyncio.to_thread(services.offline.reload_if_changed)
        await asyncio.sleep(every)


def gauges(services: Services) -> dict[str, tuple[str, float]]:
    """Live values for /metrics: breaker state, readers, decode rate (no personal data)."""
    out: dict[str, tuple[str, float]] = {}
    if services.registry is not None:
        state = services.registry.breaker.state
        out["registry_breaker_open"] = ("1 while the circuit breaker keeps the registry out.",
                                        float(state != "closed"))
    devices = services.devices
    if devices is not None:
        camera = devices.readers.get("camera")
        if camera is not None:
            out["camera_frames_read_total"] = ("Frames captured.", float(camera.frames_read))
            out["camera_frames_decoded_total"] = ("Frames run through the QR decoders.",
                                                  float(camera.frames_decoded))
        for name, state_ in devices.states.items():
            out[f"{name}_up"] = (f"1 while the {name} works.", float(state_["status"] == "ok"))
        scanner = devices.readers.get("scanner")
        if scanner is not None:
            out["scanner_payloads_total"] = ("Payloads read from the serial scanner.",
                                             float(scanner.payloads))
    if services.chip is not None:
        out["chip_reader_error"] = ("1 after a failed chip read, until the next success.",
                                    float(services.chip.flow.last_error is not None))
    if services.hn212 is not None:
        out["his_feed_clients"] = ("HIS clients connected to the HN212-compatible feed.",
                                   float(len(services.hn212.clients)))
        out["his_feed_messages_total"] = ("Messages sent on the HN212-compatible feed.",
                                          float(sum(services.hn212.sent.values())))
    hook = services.webhook
    if hook is not None:
        for what in ("written", "delivered", "retried", "rejected", "expired", "refused_full"):
            out[f"his_webhook_{what}_total"] = (f"Webhook entries {what}.",
                                                float(hook.counts[what]))
        out["his_webhook_waiting"] = ("Webhook entries waiting in the outbox.",
                                      float(hook.waiting()))
    return out


def create_app(settings: Settings, services: Services) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_purge_loop(services))]
        if services.registry is not None:
            tasks.append(asyncio.create_task(_probe_loop(services, services.probe_seconds)))
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
                          scanner=settings.scanner.port, baud=settings.scanner.baud)
        interval = systemd.watchdog_interval()
        if interval:
            tasks.append(asyncio.create_task(systemd.watchdog(
                lambda: all(not t.done() for t in tasks[:-1] or [])
                and (devices is None or devices.alive()), interval)))
        systemd.notify("READY=1\nSTATUS=serving")
        try:
            yield
        finally:
            if devices is not None:
                await asyncio.to_thread(devices.stop)
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
            security.close(app)

    app: FastAPI = FastAPIOffline(
        title="Tiếp Đón",
        summary="Reception verification terminal: CCCD / BHYT eligibility for the HIS",
        version=__version__,
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.services = services
    services.verifier.metrics.gauges = lambda: gauges(services)
    users = settings.staff_users() if security.auth_required(settings) else None
    security.install(app, settings, key=services.auth_key, users=users)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    security.add_gate(app, settings)  # outermost: runs before anything else
    return app


def build_services(settings: Settings, *, online: bool = True, key: bytes | None = None,
                   now: Callable[[], datetime] | None = None,
                   chip_source: ChipSource | None = None,
                   trust: list[x509.Certificate] | None = None) -> Services:
    """Tables, the fingerprint key and the registry client, as the settings say."""
    tables = load_tables(settings.data.tables_dir)
    registry = None
    c = settings.cache
    if online:
        registry = RegistryClient(
            settings.registry.url,
            settings.registry.username,
            settings.registry.password.get_secret_value(),
            timeout_seconds=settings.registry.timeout_seconds,
            verify_tls=settings.registry.verify_tls,
            breaker=CircuitBreaker(c.breaker_failures, c.breaker_cooldown_seconds),
        )
    terminal_key = key if key is not None else load_terminal_key(settings.data.dir)
    offline = offline_store(settings, terminal_key, now=now, journal=key is None)
    bus = EventBus(max_total=settings.http.max_streams,
                   max_per_client=settings.http.max_streams_per_client)
    offers = KeyOffers()
    verifier = Verifier(
        tables=tables,
        facility_code=settings.facility.code,
        officer_name=settings.officer.name,
        officer_id=settings.officer.id,
        registry=registry,
        key=derive_key(terminal_key, "fingerprint"),
        bus=bus,
        keep_last_seconds=settings.privacy.last_result_minutes * 60,
        now=now,
        offline=offline,
        budget_seconds=c.budget_seconds,
        recent_hours=settings.privacy.recent_hours,
        audit=None if key is not None else AuditLog(
            audit_dir(settings), derive_key(terminal_key, "audit"),
            retention_days=settings.audit.retention_days),
        desk=settings.audit.desk,
        history=registry if settings.registry.visit_history else None,
        history_timeout_seconds=settings.registry.timeout_seconds,
        offers=offers,
    )
    chip = chip_service(settings, verifier, bus, offers, source=chip_source, trust=trust,
                        now=now)
    hn212 = None
    if settings.his.hn212_port:
        hn212 = Hn212Feed(
            chip=chip, version=f"tiepdon {__version__}",
            device=settings.audit.desk or settings.facility.code,
            hosts=security.allowed_hosts(settings), origins=settings.his.hn212_origins,
            tokens=settings.auth.api_tokens if security.auth_required(settings) else None,
            max_per_client=settings.http.max_streams_per_client,
            max_total=settings.http.max_streams, send_photo=settings.his.send_photo, now=now,
            notices=tables.notices, strict=settings.his.hn212_strict)
        verifier.feeds.add(hn212)
    webhook = None
    if settings.his.webhook_url and key is None:  # a daemon, not a one-shot command
        webhook = webhook_feed(settings, terminal_key)
        verifier.feeds.add(webhook)
    return Services(verifier=verifier, bus=bus, registry=registry, chip=chip, offline=offline,
                    devices=DeviceHub(verifier, bus), auth_key=derive_key(terminal_key, "auth"),
                    hn212=hn212, webhook=webhook)


def chip_service(settings: Settings, verifier: Verifier, bus: EventBus, offers: KeyOffers, *,
                 source: ChipSource | None, trust: list[x509.Certificate] | None,
                 now: Callable[[], datetime] | None) -> ChipService:
    """The desk's chip reader: the read flow, the reader watcher (with the key offers), the
    HIS signing window."""
    keep = settings.privacy.last_result_minutes * 60
    c = settings.chip
    flow = ChipFlow(verifier=verifier, bus=bus,
                    trust=trust if trust is not None else load_csca_dir(c.csca_dir),
                    settings=ReadSettings(c.extended_length, c.retries, c.card_return_seconds),
                    photos=PhotoStore(keep), now=now)
    chip = ChipService(source or PcscSource(c.reader or None), flow=flow,
                       signing=SigningWindow(keep))
    notice = verifier.tables.notices["chip_needs_key"]
    chip.watch = ReaderWatch(bus=bus, offers=offers, feeds=verifier.feeds,
                             read=lambda keys, reader: chip.read(keys, reader=reader),
                             needs_key={"code": "chip_needs_key", "vi": notice.vi,
                                        "en": notice.en})
    return chip


def webhook_feed(settings: Settings, terminal_key: bytes) -> WebhookFeed:
    """Its times (back-off, privacy window) are the wall clock's, even under a set clock."""
    h = settings.his
    secret = settings.webhook_secret_bytes()
    return WebhookFeed(url=h.webhook_url, secret=secret, version=__version__,
                       outbox=Outbox(settings.data.dir, derive_key(terminal_key, "outbox")),
                       timeout_seconds=h.webhook_timeout_seconds,
                       keep_seconds=h.webhook_keep_hours * 3600, send_photo=h.send_photo)


def with_feeds(app: FastAPI, services: Services, hn212_port: int) -> ASGIApp:
    """The app the server runs: the HIS feed's port routed to the feed, the rest to ``app``."""
    if services.hn212 is None:
        return app
    return PortRouter(app, {hn212_port: services.hn212.app})


def audit_dir(settings: Settings) -> Path:
    return Path(settings.audit.dir) if settings.audit.dir else settings.data.dir / "audit"


def cache_dir(settings: Settings) -> Path:
    return Path(settings.cache.dir) if settings.cache.dir else settings.data.dir / "cache"


def offline_store(settings: Settings, terminal_key: bytes, *,
                  now: Callable[[], datetime] | None = None,
                  journal: bool = True) -> OfflineStore:
    """Journal (skipped for one-shot commands that must not write) and installed snapshot."""
    c = settings.cache
    trusted = settings.snapshot_keys()
    j = None
    if journal and c.journal_hours > 0:
        j = Journal(settings.data.dir, derive_key(terminal_key, "journal"),
                    retention=timedelta(hours=c.journal_hours), now=now() if now else None)
    return OfflineStore(journal=j, cache_dir=cache_dir(settings), trusted=trusted,
                        reading_key=read_reading_key(c.reading_key_file),
                        max_age_days=c.max_age_days, now=now)


def derive_key(master: bytes, label: str) -> bytes:
    return hmac.new(master, label.encode(), hashlib.sha256).digest()
