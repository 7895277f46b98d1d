"""What the routes and the lifespan use (:class:`Services`) and how the settings build it
(:func:`build_services`, for ``serve``, ``demo``, one-shot commands and tests)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509

from terminal import __version__, security
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
from terminal.keys import derive_key
from terminal.loops import AUDIT_CHECK_SECONDS, PROBE_SECONDS
from terminal.offline import FETCH_STATUS, OfflineStore, load_terminal_key
from terminal.resources import load_tables
from terminal.scanners import DeviceHub
from terminal.settings import Settings, read_reading_key
from verify.adapters.journal import Journal
from verify.adapters.outbox import Outbox
from verify.adapters.registry_client import CircuitBreaker, RegistryClient
from verify.tables import Tables

Clock = Callable[[], datetime]


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
    # what ``cache fetch`` (the snapshot timer) left for the daemon: tiepdon_snapshot_fetch_ok
    fetch_status: Path | None = None
    audit_check_seconds: float = AUDIT_CHECK_SECONDS

    @property
    def audit(self) -> AuditLog | None:
        """The audit log the verifier writes (None for one-shot commands)."""
        return self.verifier.recorder.audit.audit

    @property
    def is_demo(self) -> bool:
        """A virtual demo card on the chip reader or a demo camera clip: the demo's routes
        (``terminal/routes/demo.py``) are mounted."""
        return (self.chip is not None and self.chip.is_demo) or self.demo_clip is not None


def build_services(settings: Settings, *, online: bool = True, key: bytes | None = None,
                   now: Clock | None = None,
                   chip_source: ChipSource | None = None,
                   trust: list[x509.Certificate] | None = None,
                   read_journal: bool = False) -> Services:
    """Tables, the fingerprint key and the registry client, as the settings say. ``key``
    given: a one-shot command (no audit log, no webhook, nothing written); with
    ``read_journal`` (``key`` is the daemon's own) it reads the daemon's journal of recent
    answers, so it answers offline as the daemon does."""
    tables = load_tables(settings.data.tables_dir)
    registry = registry_client(settings) if online else None
    terminal_key = key if key is not None else load_terminal_key(settings.data.dir)
    journal: Literal["write", "read", "none"] = (
        "write" if key is None else "read" if read_journal else "none")
    offline = offline_store(settings, terminal_key, now=now, journal=journal)
    bus = EventBus(max_total=settings.http.max_streams,
                   max_per_client=settings.http.max_streams_per_client,
                   kiosk_total=settings.http.max_kiosk_streams,
                   kiosk_per_client=settings.http.max_kiosk_streams_per_client)
    verifier = _verifier(settings, terminal_key, tables, registry=registry, offline=offline,
                         bus=bus, now=now, audit=key is None)
    chip = chip_service(settings, verifier, bus, source=chip_source, trust=trust, now=now)
    hn212 = None
    if settings.his.hn212_port:
        hn212 = hn212_feed(settings, chip, now=now)
        verifier.feeds.add(hn212)
    webhook = None
    if settings.his.webhook_url and key is None:  # a daemon, not a one-shot command
        webhook = webhook_feed(settings, terminal_key)
        verifier.feeds.add(webhook)
    return Services(verifier=verifier, bus=bus, registry=registry, chip=chip, offline=offline,
                    devices=DeviceHub(verifier, bus), auth_key=derive_key(terminal_key, "auth"),
                    hn212=hn212, webhook=webhook,
                    fetch_status=settings.data.dir / FETCH_STATUS,
                    probe_seconds=settings.registry.probe_seconds,
                    audit_check_seconds=settings.audit.check_minutes * 60)


def chip_service(settings: Settings, verifier: Verifier, bus: EventBus, *,
                 source: ChipSource | None, trust: list[x509.Certificate] | None,
                 now: Clock | None) -> ChipService:
    """The desk's chip reader: the read flow, the reader watcher (taking the verifier's key
    offers), the HIS signing window."""
    keep = settings.privacy.last_result_minutes * 60
    c = settings.chip
    flow = ChipFlow(verifier=verifier, bus=bus,
                    trust=trust if trust is not None else load_csca_dir(c.csca_dir),
                    settings=ReadSettings(c.extended_length, c.retries, c.card_return_seconds),
                    photos=PhotoStore(keep), now=now)
    chip = ChipService(source or PcscSource(c.reader or None), flow=flow,
                       signing=SigningWindow(keep))
    notice = verifier.tables.notices["chip_needs_key"]
    assert verifier.offers is not None
    chip.watch = ReaderWatch(bus=bus, offers=verifier.offers, feeds=verifier.feeds,
                             read=lambda keys, reader: chip.read(keys, reader=reader),
                             needs_key={"code": "chip_needs_key", "vi": notice.vi,
                                        "en": notice.en})
    return chip


def registry_client(settings: Settings) -> RegistryClient:
    c = settings.cache
    return RegistryClient(
        settings.registry.url,
        settings.registry.username,
        settings.registry.password.get_secret_value(),
        timeout_seconds=settings.registry.timeout_seconds,
        verify_tls=settings.registry.verify_tls,
        breaker=CircuitBreaker(c.breaker_failures, c.breaker_cooldown_seconds),
    )


def _verifier(settings: Settings, terminal_key: bytes, tables: Tables, *,
              registry: RegistryClient | None, offline: OfflineStore, bus: EventBus,
              now: Clock | None, audit: bool) -> Verifier:
    subject_key = settings.subject_key() if audit else None  # a daemon's audit only
    return Verifier(
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
        budget_seconds=settings.cache.budget_seconds,
        recent_hours=settings.privacy.recent_hours,
        audit=AuditLog(audit_dir(settings), derive_key(terminal_key, "audit"),
                       retention_days=settings.audit.retention_days) if audit else None,
        desk=settings.audit.desk,
        # The visit history follows a daemon's answers; a one-shot check would leave it
        # running after its HTTP client closed.
        history=registry if settings.registry.visit_history and audit else None,
        history_timeout_seconds=settings.registry.timeout_seconds,
        offers=KeyOffers(),  # a CCCD QR's chip keys, whichever path brought it
        subject_key=derive_key(subject_key, "subject") if subject_key else None,
    )


def hn212_feed(settings: Settings, chip: ChipService, *, now: Clock | None) -> Hn212Feed:
    """The HN212-compatible HIS feed; HIS tokens are asked for when login is required."""
    return Hn212Feed(
        chip=chip, version=f"tiepdon {__version__}",
        device=settings.audit.desk or settings.facility.code,
        hosts=security.allowed_hosts(settings), origins=settings.his.hn212_origins,
        tokens=settings.auth.api_tokens if security.auth_required(settings) else None,
        max_per_client=settings.http.max_streams_per_client,
        max_total=settings.http.max_streams, send_photo=settings.his.send_photo, now=now,
        notices=chip.flow.verifier.tables.notices, strict=settings.his.hn212_strict)


def webhook_feed(settings: Settings, terminal_key: bytes) -> WebhookFeed:
    """Its times (back-off, privacy window) are the wall clock's, even under a set clock."""
    h = settings.his
    secret = settings.webhook_secret_bytes()
    return WebhookFeed(url=h.webhook_url, secret=secret, version=__version__,
                       outbox=Outbox(settings.data.dir, derive_key(terminal_key, "outbox")),
                       timeout_seconds=h.webhook_timeout_seconds,
                       keep_seconds=h.webhook_keep_hours * 3600, send_photo=h.send_photo)


def offline_store(settings: Settings, terminal_key: bytes | None, *, now: Clock | None = None,
                  journal: Literal["write", "read", "none"] = "write") -> OfflineStore:
    """Journal (``read``: a one-shot command reading the daemon's, never writing; ``none``:
    not at all, and no terminal key needed) and installed snapshot."""
    c = settings.cache
    trusted = settings.snapshot_keys()
    j = None
    if journal != "none" and c.journal_hours > 0:
        if terminal_key is None:
            raise ValueError("the journal needs the terminal key")
        key, keep = derive_key(terminal_key, "journal"), timedelta(hours=c.journal_hours)
        j = (Journal(settings.data.dir, key, retention=keep, now=now() if now else None)
             if journal == "write" else Journal.reader(settings.data.dir, key, retention=keep))
    return OfflineStore(journal=j, cache_dir=cache_dir(settings), trusted=trusted,
                        reading_key=read_reading_key(c.reading_key_file),
                        max_age_days=c.max_age_days, now=now, facility=settings.facility.code)


def audit_dir(settings: Settings) -> Path:
    return Path(settings.audit.dir) if settings.audit.dir else settings.data.dir / "audit"


def cache_dir(settings: Settings) -> Path:
    return Path(settings.cache.dir) if settings.cache.dir else settings.data.dir / "cache"
