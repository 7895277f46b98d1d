"""How the daemon's parts are doing, read from the live :class:`Services`: the components of
``GET /api/v1/health`` and the gauges of ``GET /metrics`` (no personal data in either)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from terminal import __version__
from terminal.events import END_REASONS, QUEUE_SIZE, EventBus
from terminal.feeds.hn212 import Hn212Feed
from terminal.metrics import Labelled
from terminal.offline import read_fetch_status
from terminal.services import Services
from verify.adapters.registry_client import RegistryClient


async def health(services: Services) -> dict[str, Any]:
    """Each component ``ok`` / ``degraded`` / ``down`` with a reason; overall ``ok`` only
    while the registry is."""
    components: dict[str, dict[str, Any]] = {"registry": _registry_health(services.registry)}
    offline = services.offline
    components["cache"] = (offline.health() if offline is not None else
                           {"status": "down", "reason": "offline store disabled"})
    if services.registry is not None:
        components["registry"]["breaker"] = services.registry.breaker.state
    chip = services.chip
    if chip is not None:
        components["chip_reader"] = await chip.health()
    devices = services.devices
    if devices is not None:
        for name, state in devices.states.items():
            components[name] = dict(state)
    if services.hn212 is not None:
        components["his_feed"] = services.hn212.health()
    if services.webhook is not None:
        components["his_webhook"] = await asyncio.to_thread(services.webhook.health)
    components.update(services.extra_health)
    overall = "ok" if components["registry"]["status"] == "ok" else "degraded"
    return {"status": overall, "components": components}


def _registry_health(registry: RegistryClient | None) -> dict[str, Any]:
    if registry is None:
        return {"status": "down", "reason": "offline mode: no registry"}
    h = registry.health
    status = {"unknown": "degraded"}.get(h.status, h.status)
    return {
        "status": status,
        "reason": h.reason or ("not checked yet" if h.status == "unknown" else ""),
        "last_ok": h.last_ok.isoformat() if h.last_ok else None,
        "last_error": h.last_error.isoformat() if h.last_error else None,
        "last_latency_ms": round(h.last_latency_ms, 1) if h.last_latency_ms else None,
    }


def gauges(services: Services) -> dict[str, tuple[str, float | Labelled]]:
    """Live values for /metrics: breaker state, readers, decode rate (no personal data)."""
    out: dict[str, tuple[str, float | Labelled]] = {}
    if services.registry is not None:
        state = services.registry.breaker.state
        out["registry_breaker_open"] = ("1 while the circuit breaker keeps the registry out.",
                                        float(state != "closed"))
    out.update(_device_gauges(services))
    out.update(fleet_gauges(services))
    out.update(_stream_gauges(services.bus))
    if services.chip is not None:
        out["chip_reader_error"] = ("1 after a failed chip read, until the next success.",
                                    float(services.chip.flow.last_error is not None))
    if services.hn212 is not None:
        out["his_feed_clients"] = ("HIS clients connected to the HN212-compatible feed.",
                                   float(len(services.hn212.clients)))
        out["his_feed_messages_total"] = ("Messages sent on the HN212-compatible feed.",
                                          float(sum(services.hn212.sent.values())))
        out.update(_feed_door(services.hn212))
    hook = services.webhook
    if hook is not None:
        for what in ("written", "delivered", "retried", "rejected", "expired", "refused_full"):
            out[f"his_webhook_{what}_total"] = (f"Webhook entries {what}.",
                                                float(hook.counts[what]))
        out["his_webhook_waiting"] = ("Webhook entries waiting in the outbox.",
                                      float(hook.waiting()))
        out["his_webhook_lost_total"] = (
            "Webhook entries lost before delivery, by reason: key_changed (sealed under an "
            "earlier terminal key, deleted at start), tag_failed (an entry that no longer "
            "decrypts).", Labelled("reason", dict(hook.ledger.lost)))
    return out


def _feed_door(feed: Hn212Feed) -> dict[str, tuple[str, float]]:
    """The HN212 feed's door before any token (terminal/feeds/guard.py)."""
    return {
        "his_feed_sessions": ("Engine.IO sessions open on the HN212 feed, authenticated or "
                              "not.", float(len(feed.guard))),
        "his_feed_sessions_refused_total": (
            "New sessions refused or ended on the HN212 feed (caps, no connect in time).",
            float(sum(feed.guard.refused.values()))),
        "his_feed_bad_packets_total": ("Malformed, binary or refused input on the HN212 feed.",
                                       float(feed.bad.count)),
        "his_feed_token_failures_total": ("Wrong HIS tokens on the HN212 feed, and attempts "
                                          "from an address locked out.",
                                          float(feed.tokens.failures)),
    }


def _stream_gauges(bus: EventBus) -> dict[str, tuple[str, float | Labelled]]:
    return {
        "event_streams_open": (
            "Open event streams by pool: desk (staff page and HIS, /api/v1/events) and kiosk "
            "(/api/v1/kiosk/events).", Labelled("pool", {p.name: p.open for p in bus.pools},
                                                 kind="gauge")),
        "event_streams_refused_total": (
            "Event streams refused (429) because their pool was full, in all or for the "
            "address.", Labelled("pool", {p.name: p.refused for p in bus.pools})),
        "event_streams_ended_total": (
            "Event streams the daemon ended: session (its staff session ended: logout, "
            "disabled user, changed password, expiry), slow (the client stopped reading "
            f"with {QUEUE_SIZE} events waiting).",
            Labelled("reason", {r: bus.ended[r] for r in END_REASONS})),
    }


def _device_gauges(services: Services) -> dict[str, tuple[str, float]]:
    out: dict[str, tuple[str, float]] = {}
    devices = services.devices
    if devices is None:
        return out
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
    return out


def _stamp(at: datetime | None) -> float:
    return at.timestamp() if at is not None else 0.0


def fleet_gauges(services: Services) -> dict[str, tuple[str, float | Labelled]]:
    """What a central Prometheus alerts on (deploy/prometheus/rules.yml): the build, the
    gateway as the minute's real probe saw it, the snapshot and its fetch, the audit chain,
    the chip reader and the desk's clock."""
    out: dict[str, tuple[str, float | Labelled]] = {
        "build_info": ("The running version (always 1).",
                       Labelled("version", {__version__: 1.0}, kind="gauge")),
        "time_seconds": ("The desk's clock at the scrape (compare with the scrape's time).",
                         round(time.time(), 3)),
    }
    registry = services.registry
    if registry is not None and registry.reachability.up is not None:
        r = registry.reachability
        out["registry_up"] = ("1 while the gateway answered the last minute's probe (a real "
                              "request, not the cached token).", float(bool(r.up)))
        out["registry_last_ok_timestamp_seconds"] = (
            "When the gateway last answered a probe (0: not since start).", _stamp(r.last_ok))
    offline = services.offline
    if offline is not None and offline.trusted and offline.reading_key is not None:
        m = offline.snapshot.manifest if offline.snapshot is not None else None
        out["snapshot_version"] = ("The installed snapshot's signed version (0: none).",
                                   float(m.snapshot_version) if m else 0.0)
        out["snapshot_created_timestamp_seconds"] = (
            "When the installed snapshot was made (0: none installed).",
            _stamp(m.created if m else None))
        out["snapshot_expires_timestamp_seconds"] = (
            "When the installed snapshot expires (0: none installed).",
            _stamp(m.expires if m else None))
    fetched = read_fetch_status(services.fetch_status) if services.fetch_status else None
    if fetched is not None:
        out["snapshot_fetch_ok"] = ("1 when the last `tiepdon cache fetch` installed or "
                                    "already had the publisher's snapshot.",
                                    float(fetched["ok"]))
        out["snapshot_fetch_timestamp_seconds"] = ("When `tiepdon cache fetch` last ran.",
                                                   _stamp(fetched["at"]))
    audit = services.audit
    if audit is not None:
        out["audit_last_seq"] = ("The newest audit record's sequence number.",
                                 float(audit.last_seq))
        if audit.checked is not None:
            out["audit_chain_ok"] = ("1 when the last self-check found the audit chain "
                                     "intact.", float(audit.checked.ok))
    chip = services.chip
    if chip is not None and chip.source is not None:
        readers = chip.readers
        up = chip.is_demo or bool(readers)  # None: pcscd unreachable (or not polled yet)
        out["chip_reader_up"] = ("1 while a chip reader is connected (PC/SC).", float(up))
    return out
