"""Fixtures every folder uses: the shipped tables, a registry simulator, a daemon on loopback and
an HIS webhook receiver. Everything above the unit level runs over real HTTP on 127.0.0.1 with
real SQLite; the constants and builders behind these fixtures live in ``tests/helpers/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.app import create_app
from terminal.resources import load_tables
from terminal.server import BackgroundServer, start_background
from tests.helpers.daemon import daemon_services, sim_server, terminal_settings
from tests.helpers.webhook import Receiver
from verify.tables import Tables


@pytest.fixture(scope="session")
def tables() -> Tables:
    return load_tables()


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[BackgroundServer]:
    server = sim_server(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def daemon(sim: BackgroundServer, tmp_path: Path) -> Iterator[BackgroundServer]:
    settings = terminal_settings(sim.url, tmp_path / "data")
    server = start_background(create_app(settings, daemon_services(settings)))
    yield server
    server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.stop()
