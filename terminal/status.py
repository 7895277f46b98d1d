"""How the daemon's parts are doing, read from the live :class:`Services`: the components of
``GET /api/v1/health`` and the gauges of ``GET /metrics`` (no personal data in either)."""

from __future__ import annotations

import asyncio
from typing import Any

from terminal.events import END_REASONS, QUEUE_SIZE, EventBus
from terminal.metrics import Labelled
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
    out.update(_stream_gauges(services.bus))
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
        out["his_webhook_lost_total"] = (
            "Webhook entries lost before delivery, by reason: key_changed (sealed under an "
            "earlier terminal key, deleted at start), tag_failed (an entry that no longer "
            "decrypts).", Labelled("reason", dict(hook.ledger.lost)))
    return out


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
