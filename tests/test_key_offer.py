"""A CCCD QR read on any intake path makes the next card on the reader read with no key typed.

The same key offer (terminal/flow/offers.py) for the HTTP API (tests/test_pcsc.py), the
serial scanner on a pseudo-terminal and the camera reading a clip; the card is the virtual
CCCD through the real pcscd and vpcd driver.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from readers.doubles.vpcd import VpcdCard
from terminal.app import build_services, create_app
from terminal.chip.source import PcscSource
from terminal.server import BackgroundServer, start_background
from tests.conftest import NOW, terminal_settings
from tests.test_camera import clip
from tests.test_daemon import Events, collect
from tests.test_pcsc import QR, Pcscd, insert, inserted, pcscd, trust, virtual

__all__ = ["inserted", "pcscd"]  # fixtures


@pytest.fixture
def intake_daemon(pcscd: Pcscd, tmp_path: Path, sim: BackgroundServer
                  ) -> Iterator[tuple[BackgroundServer, int, Path]]:
    master, slave = os.openpty()
    settings = terminal_settings(sim.url, tmp_path / "data",
                                 camera__source=str(tmp_path / "cam.avi"), camera__fps=60,
                                 scanner__port=os.ttyname(slave))
    services = build_services(settings, now=lambda: NOW, chip_source=PcscSource(),
                              trust=trust())
    server = start_background(create_app(settings, services))
    yield server, master, tmp_path
    server.stop()
    os.close(master)
    os.close(slave)


def _chip_read(ev: Events) -> bool:
    return any(n == "credential" and d.get("kind") == "chip" for n, d in ev) and any(
        n == "photo" for n, _ in ev)


@pytest.mark.parametrize("path", ["scanner", "camera"])
def test_a_qr_from_the_scanner_or_the_camera_opens_the_next_card(
        path: str, inserted: list[VpcdCard],
        intake_daemon: tuple[BackgroundServer, int, Path]) -> None:
    server, master, folder = intake_daemon
    events: Events = []
    ready = threading.Event()

    def scanned(ev: Events) -> bool:
        return any(n == "eligibility" and d["credential"]["reader"] == path for n, d in ev)

    # The QR first, on the path under test; wait until the flow has decided it.
    reader = threading.Thread(target=collect, args=(server.url, scanned, ready, events))
    reader.start()
    assert ready.wait(10)
    if path == "scanner":
        os.write(master, QR.encode() + b"\r")
    else:
        clip(folder / "tmp.avi", QR).rename(folder / "cam.avi")
    reader.join(30)
    assert scanned(events), events
    # Then the card, with nothing typed: the watcher reads it with the QR's keys.
    after: Events = []
    ready = threading.Event()
    reader = threading.Thread(target=collect, args=(server.url, _chip_read, ready, after))
    reader.start()
    assert ready.wait(10)
    insert(inserted, virtual()).close()
    reader.join(40)
    assert _chip_read(after), after
    chip = next(d for n, d in after if n == "credential" and d.get("kind") == "chip")
    assert chip["passive_auth"]["status"] == "authentic"
    assert chip["id_number"] == "001088004321"
    assert not any(n == "error" and d.get("code") == "chip_needs_key" for n, d in after)
