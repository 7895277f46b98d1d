"""Shared fixtures: the shipped tables, a registry simulator and a daemon on loopback.

Everything above the unit level runs over real HTTP on 127.0.0.1 with real SQLite; the day
used for card validity is fixed so results do not depend on when the suite runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import httpx
import pytest

from terminal.app import Services, build_services, create_app
from terminal.demo import demo_config
from terminal.resources import load_tables
from terminal.server import BackgroundServer, start_background
from terminal.settings import Settings, parse_settings
from verify.model import VN_TZ
from verify.simulator.registry_sim import (
    SimControl,
    create_sim_app,
    open_registry,
)
from verify.tables import Tables

TODAY = date(2026, 3, 16)
NOW = datetime.combine(TODAY, time(9, 30), tzinfo=VN_TZ)

CCCD_EXAMPLE = "001098012345||NGUYỄN VĂN B|01012000|Nữ|Hà Nội|01012022"
BHYT_OLD_EXAMPLE = (
    "DN479GA78900007|C4906FC3A06E205068C6B0C6A16E67204E6869|15/09/1993|2|"
    "3231332F31204E677579E1BB856E2056C4836E2043E1BBAB202D2070332D205135|79 - 012|01/09/2016|"
    "31/12/2016|16/09/2016|791900565855|-|4|-|27ee82624a6f2342-0101|$"
)
BHYT_NEW_EXAMPLE = (
    "0111077012|4e677579e1bb856e205469e1babf6e20c490e1baa174|29/03/1988|1|-|01 - C54|"
    "01/07/2023|-|31/07/2023|01050111077012|-|4| 01/10/2027|4641c59ff02659c3-1202|4|"
    "5175e1baad6e2043e1baa775204769e1baa5792c205468c3a06e68207068e1bb912048c3a0204ee1bb9969|$"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium through Playwright (tests/test_page.py's arguments)."""
    from playwright.sync_api import sync_playwright

    from tests.test_page import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def tables() -> Tables:
    return load_tables()


def sim_server(tmp_path: Path, control: SimControl | None = None) -> BackgroundServer:
    conn = open_registry(str(tmp_path / "registry.sqlite"), today=TODAY)
    return start_background(create_sim_app(conn, control, today=lambda: TODAY, seed=7))


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[BackgroundServer]:
    server = sim_server(tmp_path)
    yield server
    server.stop()


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


@pytest.fixture
def daemon(sim: BackgroundServer, tmp_path: Path) -> Iterator[BackgroundServer]:
    settings = terminal_settings(sim.url, tmp_path / "data")
    server = start_background(create_app(settings, daemon_services(settings)))
    yield server
    server.stop()
