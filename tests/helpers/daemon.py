"""The registry simulator and the daemon on loopback, in process: settings, services, the
simulator's control knobs and a reader for the daemon's event stream.

Everything above the unit level runs over real HTTP on 127.0.0.1 with real SQLite.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from terminal.app import Services, build_services
from terminal.demo import demo_config
from terminal.server import BackgroundServer, start_background
from terminal.settings import Settings, parse_settings
from tests.helpers.samples import NOW, TODAY
from verify.simulator.registry_sim import SimControl, create_sim_app, open_registry


def sim_server(tmp_path: Path, control: SimControl | None = None) -> BackgroundServer:
    conn = open_registry(str(tmp_path / "registry.sqlite"), today=TODAY)
    return start_background(create_sim_app(conn, control, today=lambda: TODAY, seed=7))


def sim_control(sim: BackgroundServer, **values: object) -> None:
    httpx.post(f"{sim.url}/sim/control", json=values).raise_for_status()


def terminal_settings(registry_url: str, data_dir: Path, **overrides: object) -> Settings:
    """The demo's settings; ``section__key=value`` overrides single keys."""
    doc = demo_config(registry_url, data_dir)
    doc["registry"]["timeout_seconds"] = 2
    for key, value in overrides.items():
        section, name = key.split("__")
        doc.setdefault(section, {})[name] = value
    return parse_settings(doc, environ={})


def daemon_services(settings: Settings) -> Services:
    return build_services(settings, now=lambda: NOW)


Events = list[tuple[str, dict[str, Any]]]


def collect(url: str, until: Callable[[Events], bool], ready: threading.Event,
            out: Events, skip: frozenset[str] = frozenset({"history"})) -> None:
    """Read the event stream into ``out`` until ``until(out)``; ``ready`` once connected.
    Events named in ``skip`` are not kept (the visit history arrives on its own time, after
    the answer; tests/unit/test_history.py and test_daemon.py look at it)."""
    with httpx.stream("GET", f"{url}/api/v1/events", timeout=30) as r:
        name = None
        for line in r.iter_lines():
            if line.startswith(": connected"):
                ready.set()
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name and name not in skip:
                out.append((name, json.loads(line[6:])))
                if until(out):
                    return


def read_events(url: str, count: int, ready: threading.Event, out: Events,
                skip: frozenset[str] = frozenset({"history"})) -> None:
    collect(url, lambda ev: len(ev) >= count, ready, out, skip)


def end_streams(server: BackgroundServer) -> None:
    """End every open event stream from the daemon's side (as its shutdown does), so a test
    that leaves readers open stops its server at once instead of after the grace period."""
    app: Any = server.server.config.app
    loop = server.server.servers[0].get_loop()
    loop.call_soon_threadsafe(app.state.services.bus.close)
