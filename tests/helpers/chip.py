"""The chip tests' clock and test PKI (CSCA → document signer, generated once per run), and a
daemon in process whose reader holds the in-process virtual CCCD (the demo's source)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

from cryptography import x509

from readers.doubles.vcard import (
    DEMO_PERSON,
    DemoSource,
    Faults,
    TestPki,
    demo_card,
    make_pki,
)
from readers.emrtd.pa import load_trust
from terminal.app import Services, build_services, create_app
from terminal.server import BackgroundServer, start_background
from tests.helpers import samples
from tests.helpers.daemon import terminal_settings

NOW = datetime(2026, 3, 16, 2, 30, tzinfo=UTC)  # samples.NOW, the same instant in UTC
OTHER_PERSON = replace(DEMO_PERSON, id_number="001192007654", full_name="Trần Thị Bình",
                       date_of_birth=date(1992, 5, 4), sex="Nữ", spouse=None)


@cache
def pki() -> TestPki:
    return make_pki(now=NOW)


def trust() -> list[x509.Certificate]:
    return load_trust([pki().csca_pem()])


def serve(sim: BackgroundServer, tmp_path: Path, faults: Faults | None = None,
          trusted: bool = True) -> BackgroundServer:
    return serve_with_services(sim, tmp_path, faults, trusted)[0]


def serve_with_services(sim: BackgroundServer, tmp_path: Path, faults: Faults | None = None,
                        trusted: bool = True) -> tuple[BackgroundServer, Services]:
    """:func:`serve`, and its services (a test puts another card on the reader by setting
    ``services.chip.source``)."""
    card = demo_card(now=samples.NOW, faults=faults or Faults(), pki=pki())[0]
    settings = terminal_settings(sim.url, tmp_path / "data")
    services = build_services(settings, now=lambda: samples.NOW, chip_source=DemoSource(card),
                              trust=load_trust([pki().csca_pem()]) if trusted else [])
    return start_background(create_app(settings, services)), services


def other_card(faults: Faults | None = None) -> DemoSource:
    """Another patient's chip CCCD (Trần Thị Bình), as the demo source."""
    card = demo_card(now=samples.NOW, faults=faults or Faults(), pki=pki(), person=OTHER_PERSON)
    return DemoSource(card[0], person=OTHER_PERSON)
