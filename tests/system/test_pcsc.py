"""The chip path through the real PC/SC stack: pcscd, the vsmartcard vpcd driver, pyscard.

The project's virtual CCCD connects to the vpcd driver as a virtual ICC; everything from
pyscard up is the production code. ``scripts/test`` installs pcscd and vsmartcard-vpcd (test
machines only: the driver listens on a TCP port).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from readers.devices import pcsc
from readers.doubles.render import write_clip
from readers.doubles.vcard import (
    DEMO_PERSON,
    CardProcessPort,
    Faults,
    VirtualCccd,
    compose_mrz,
    demo_card,
)
from readers.doubles.vpcd import VPCD_PORT, VpcdCard
from readers.emrtd.chip import read_chip
from readers.emrtd.mrz import CanKey
from readers.emrtd.pa import PaStatus
from readers.errors import AccessDenied, CardRemoved, ReaderError
from terminal.app import build_services, create_app
from terminal.chip.source import PcscSource, read_from_source
from terminal.server import BackgroundServer, start_background
from tests.helpers.camera import clip
from tests.helpers.cards import demo_back, plain_desk
from tests.helpers.chip import pki, trust
from tests.helpers.cli import TIEPDON
from tests.helpers.daemon import Events, collect, terminal_settings
from tests.helpers.samples import NOW

PCSCD = "/usr/sbin/pcscd"
QR = "001088004321||Nguyễn Tiến Đạt|29031988|Nam|Hà Nội|01072021"


def _vpcd_listening() -> bool:
    try:
        socket.create_connection(("127.0.0.1", VPCD_PORT), timeout=0.5).close()
    except OSError:
        return False
    return True


class Pcscd:
    """pcscd with the vpcd driver, started by the tests when the machine has none running."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([PCSCD, "--foreground"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not _vpcd_listening():
            assert time.monotonic() < deadline, "pcscd did not open the vpcd port"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture(scope="module")
def pcscd() -> Iterator[Pcscd]:
    assert Path(PCSCD).exists(), "pcscd is missing: scripts/test installs pcscd and vpcd"
    daemon = Pcscd()
    if not _vpcd_listening():
        daemon.start()
    yield daemon
    daemon.stop()


def virtual(faults: Faults | None = None) -> VirtualCccd:
    """The virtual CCCD, Chip Authentication included."""
    return demo_card(now=NOW, faults=faults or Faults(), pki=pki())[0]


@pytest.fixture
def inserted(pcscd: Pcscd) -> Iterator[list[VpcdCard]]:
    """Insert cards with ``insert(card)``; all are pulled out at the end."""
    cards: list[VpcdCard] = []
    yield cards
    for c in cards:
        c.remove()
    wait_absent()


def wait_absent() -> None:
    """pcscd polls the driver: wait until it has noticed the last card left."""
    deadline = time.monotonic() + 10
    while pcsc.card_present("Virtual PCD 00 00"):
        assert time.monotonic() < deadline, "pcscd still sees a removed card"
        time.sleep(0.1)


def insert(cards: list[VpcdCard], card: VirtualCccd) -> pcsc.PcscPort:
    """Connect the virtual card to the vpcd driver and wait until pcscd reports it.

    After a card was torn mid-APDU the vpcd driver sometimes ignores the next connection
    until it is made again (a quirk of the test driver, not of pcscd): reconnect then.
    """
    wait_absent()
    for _ in range(5):
        v = VpcdCard(card)
        v.insert()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                port = pcsc.connect()
            except ReaderError:
                time.sleep(0.1)
                continue
            cards.append(v)
            return port
        v.remove()
        card.reset()
    raise AssertionError("pcscd never saw the virtual card")


def full_read(port: pcsc.PcscPort, extended: bool) -> object:
    return read_chip(port, [DEMO_PERSON.access_key], rnd=os.urandom, extended=extended,
                     trust=trust(), now=NOW)


@pytest.mark.parametrize("extended", [False, True])
def test_full_read_through_pcscd(inserted: list[VpcdCard], extended: bool) -> None:
    port = insert(inserted, virtual())
    assert port.reader.startswith("Virtual PCD")
    result = full_read(port, extended)
    assert result.passive_auth.status is PaStatus.AUTHENTIC  # type: ignore[attr-defined]
    dg13 = result.identity.dg13  # type: ignore[attr-defined]
    assert set(dg13.fields) == set(range(1, 17))
    assert dg13.get(2) == "Nguyễn Tiến Đạt"
    assert result.photo.format == "jpeg"  # type: ignore[attr-defined]
    assert result.apdus <= (15 if extended else 98)  # type: ignore[attr-defined]
    assert result.chip_auth == "passed"  # type: ignore[attr-defined]
    port.close()


@pytest.mark.parametrize(("faults", "reason"), [
    (Faults(tamper_dg=13), "dg13_hash_mismatch"),
    (Faults(signer="mismatch"), "sod_signature_invalid"),
])
def test_bad_cards_through_pcscd(inserted: list[VpcdCard], faults: Faults, reason: str) -> None:
    result = full_read(insert(inserted, virtual(faults)), False)
    pa = result.passive_auth  # type: ignore[attr-defined]
    assert (pa.status, pa.reason) == (PaStatus.FAILED, reason)


def test_wrong_key_through_pcscd(inserted: list[VpcdCard]) -> None:
    with pytest.raises(AccessDenied):
        full_read(insert(inserted, virtual(Faults(wrong_key=True))), False)


def _place_back(inserted: list[VpcdCard], card: VirtualCccd, torn: VpcdCard,
                away: float) -> None:
    """The patient: the card leaves the field at its tear, is held away for ``away``
    seconds, then is placed back (again if the vpcd driver missed it, see :func:`insert`)."""
    deadline = time.monotonic() + 30
    while torn.served < min(card.faults.tear_at) - 1 or (torn._thread is not None \
            and torn._thread.is_alive()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(away)
    for _ in range(5):
        back = VpcdCard(card)
        back.insert()
        inserted.append(back)
        until = time.monotonic() + 2
        while time.monotonic() < until:
            if pcsc.card_present("Virtual PCD 00 00"):
                return
            time.sleep(0.05)
        back.remove()
        inserted.remove(back)


@pytest.mark.parametrize("away", [0.1, 1.5, 4.0])
def test_a_torn_card_placed_back_is_resumed_through_pcscd(inserted: list[VpcdCard],
                                                          away: float) -> None:
    """Torn during DG2 through the whole PC/SC stack; the read waits for the card, opens PACE
    and Chip Authentication again, checks it is the same card and reads on from the offset."""
    card = virtual(Faults(tear_at=(40,), extended=False))
    insert(inserted, card).close()
    torn = inserted[-1]
    patient = threading.Thread(target=_place_back, args=(inserted, card, torn, away))
    patient.start()
    waits: list[bool] = []
    result = read_from_source(PcscSource(), [CanKey(DEMO_PERSON.id_number[-6:])],
                              extended_mode="off", retries=2, trust=trust(), now=NOW,
                              return_seconds=10, on_wait=lambda: waits.append(True))
    patient.join(30)
    assert result.passive_auth.status is PaStatus.AUTHENTIC and result.chip_auth == "passed"
    assert result.photo is not None and result.reconnects >= 1
    assert waits == ([True] if away > 1 else waits[:1])  # "Đặt lại thẻ" told once, if at all
    clean = read_chip(CardProcessPort(virtual()), [CanKey(DEMO_PERSON.id_number[-6:])],
                      rnd=os.urandom, extended=False, trust=trust(), now=NOW)
    # PACE, CA, the same-card check and the torn chunk again (12), plus a first APDU on each
    # handle opened before pcscd noticed the card had gone (stale, answered by nobody).
    assert result.apdus - clean.apdus <= 12 + 3 * (result.reconnects - 1)


def test_card_pulled_mid_read(inserted: list[VpcdCard]) -> None:
    port = insert(inserted, virtual(Faults(torn_after=30)))
    with pytest.raises(CardRemoved):
        full_read(port, False)


@pytest.fixture
def chip_daemon(pcscd: Pcscd, tmp_path: Path, sim: BackgroundServer
                ) -> Iterator[BackgroundServer]:
    # A card that never comes back is given 5 s here (10 s by default) to keep the test short.
    settings = terminal_settings(sim.url, tmp_path / "data", chip__card_return_seconds=5)
    services = build_services(settings, now=lambda: NOW, chip_source=PcscSource(),
                              trust=trust())
    server = start_background(create_app(settings, services))
    yield server
    server.stop()


def test_daemon_reads_the_chip_through_pcscd(inserted: list[VpcdCard],
                                             chip_daemon: BackgroundServer) -> None:
    insert(inserted, virtual()).close()
    r = httpx.post(f"{chip_daemon.url}/api/v1/chip/read", json={"qr": QR}, timeout=30)
    assert r.status_code == 200, r.text
    chip = r.json()
    assert chip["kind"] == "chip" and chip["passive_auth"]["status"] == "authentic"
    assert chip["access"] == "pace"  # the QR's CAN first, through pcscd
    assert chip["eligibility"]["status"] == "eligible"
    assert chip["eligibility"]["messages"][1]["code"] == "chip_authentic"
    photo = httpx.get(f"{chip_daemon.url}/api/v1/photo", params={"fp": chip["raw_fingerprint"]})
    assert photo.headers["content-type"] == "image/jpeg" and photo.content[:3] == b"\xff\xd8\xff"
    health = httpx.get(f"{chip_daemon.url}/api/v1/health").json()
    assert health["components"]["chip_reader"]["status"] == "ok"


def test_daemon_reports_a_pulled_card(inserted: list[VpcdCard],
                                      chip_daemon: BackgroundServer) -> None:
    insert(inserted, virtual(Faults(torn_after=5))).close()  # extended reads take 8 APDUs
    r = httpx.post(f"{chip_daemon.url}/api/v1/chip/read", json={"qr": QR}, timeout=30)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "chip_card_removed"
    assert "giữ yên" in r.json()["error"]["vi"]
    # The daemon keeps serving, and the next card reads.
    inserted.pop().remove()
    insert(inserted, virtual()).close()  # waits until pcscd saw the old card go
    r = httpx.post(f"{chip_daemon.url}/api/v1/chip/read", json={"qr": QR}, timeout=30)
    assert r.status_code == 200


def test_card_read_command(inserted: list[VpcdCard], tmp_path: Path) -> None:
    csca = tmp_path / "csca"
    csca.mkdir()
    (csca / "test.pem").write_bytes(pki().csca_pem())
    insert(inserted, virtual()).close()
    photo = tmp_path / "face.jpg"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIEPDON_")}
    p = subprocess.run([TIEPDON, "card", "read", "--qr", QR, "--csca", str(csca),
                        "--photo-out", str(photo)], capture_output=True, text=True,
                       timeout=60, env=env, check=False)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["passive_auth"] == {"status": "authentic", "reason": None}
    assert out["mrz"]["document_number"] == "088004321"
    assert out["photo"] == {"format": "jpeg", "bytes": photo.stat().st_size}
    assert out["apdus"] <= 99 and out["chip_auth"] == "passed"
    unanchored = subprocess.run([TIEPDON, "card", "read", "--doc", "001088004321", "--dob",
                                 "880329", "--expiry", "280329"], capture_output=True,
                                text=True, timeout=60, env=env, check=False)
    assert json.loads(unanchored.stdout)["passive_auth"]["status"] == "unanchored"


def test_card_read_command_survives_a_tear_during_pace(inserted: list[VpcdCard],
                                                       tmp_path: Path) -> None:
    """``tiepdon card read`` reads as the daemon does: a card lifted during PACE is waited
    for (chip.card_return_seconds), staff are told to place it back, the read ends verified."""
    csca = tmp_path / "csca"
    csca.mkdir()
    (csca / "test.pem").write_bytes(pki().csca_pem())
    card = virtual(Faults(tear_at=(4,), extended=False))  # CardAccess, MSE, then GA: torn
    insert(inserted, card).close()
    torn = inserted[-1]
    patient = threading.Thread(target=_place_back, args=(inserted, card, torn, 1.5))
    patient.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIEPDON_")}
    p = subprocess.run([TIEPDON, "card", "read", "--qr", QR, "--csca", str(csca)],
                       capture_output=True, text=True, timeout=60, env=env, check=False)
    patient.join(30)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert (out["verdict"], out["access"], out["chip_auth"]) == ("verified", "pace", "passed")
    assert "Đặt lại thẻ" in p.stderr and "Traceback" not in p.stderr


def test_card_probe_command_reports_without_personal_data(inserted: list[VpcdCard]) -> None:
    insert(inserted, virtual()).close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIEPDON_")}
    p = subprocess.run([TIEPDON, "card", "probe", "--qr", QR], capture_output=True, text=True,
                       timeout=60, env=env, check=False)
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["reader"] == "Virtual PCD 00 00" and report["atr"]
    assert report["access"] == "pace" and report["checks"]["chip_auth"] == "passed"
    assert report["card_access"][0]["protocol"].startswith("0.4.0.127.0.7.2.2.4")
    assert report["sod"]["data_groups"][:2] == [1, 2] and report["steps"]["pace"]["apdus"]
    for secret in ("001088004321", "088004321", "Nguyễn", "Đạt", "880329", "29031988"):
        assert secret not in p.stdout, secret


def test_card_read_without_a_card(pcscd: Pcscd) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIEPDON_")}
    p = subprocess.run([TIEPDON, "card", "read", "--qr", QR], capture_output=True, text=True,
                       timeout=60, env=env, check=False)
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert "No card" in p.stderr


def test_pcscd_binary_present() -> None:
    assert shutil.which("pcscd") or Path(PCSCD).exists()
    assert datetime.now(UTC).year >= 2026


def test_scanned_qr_then_card_on_reader_reads_by_itself(
        inserted: list[VpcdCard], chip_daemon: BackgroundServer) -> None:
    events: list[tuple[str, dict[str, object]]] = []
    ready = threading.Event()
    reader = threading.Thread(target=collect, args=(
        chip_daemon.url, lambda ev: any(n == "photo" for n, _ in ev), ready, events))
    reader.start()
    assert ready.wait(10)
    time.sleep(1.0)  # the watcher has seen the empty reader
    assert httpx.post(f"{chip_daemon.url}/api/v1/verify", json={"qr": QR},
                      timeout=30).json()["status"] == "eligible"
    insert(inserted, virtual()).close()
    reader.join(30)
    names = [n for n, _ in events]
    assert {"device", "credential", "eligibility", "photo"} <= set(names)
    card_events = [d for n, d in events if n == "device" and d.get("card") is True]
    assert card_events and card_events[0]["reader"] == "Virtual PCD 00 00"
    chip = [d for n, d in events if n == "credential" and d["kind"] == "chip"]
    assert chip and chip[0]["passive_auth"]["status"] == "authentic"  # type: ignore[index]


def test_pcscd_restart_is_survived(pcscd: Pcscd, inserted: list[VpcdCard],
                                   chip_daemon: BackgroundServer) -> None:
    if pcscd.proc is None:
        # A pcscd we did not start (with the vpcd driver loaded, so this is a test machine):
        # replace it by one of ours that the test can stop and start.
        subprocess.run(["pkill", "-x", "pcscd"], check=False)
        deadline = time.monotonic() + 10
        while _vpcd_listening():
            assert time.monotonic() < deadline, "the running pcscd did not stop"
            time.sleep(0.1)
        pcscd.start()
        time.sleep(1.0)
    events: list[tuple[str, dict[str, object]]] = []
    ready = threading.Event()

    def seen_again(ev: list[tuple[str, dict[str, object]]]) -> bool:
        downs = [i for i, (n, d) in enumerate(ev) if n == "device" and d["status"] == "down"]
        return bool(downs) and any(n == "device" and d.get("card") is True
                                   for n, d in ev[downs[0]:])

    reader = threading.Thread(target=collect, args=(chip_daemon.url, seen_again, ready,
                                                    events))
    reader.start()
    assert ready.wait(10)
    time.sleep(1.0)
    pcscd.stop()
    time.sleep(2.0)
    health = httpx.get(f"{chip_daemon.url}/api/v1/health").json()
    assert health["components"]["chip_reader"]["status"] == "down"
    pcscd.start()
    insert(inserted, virtual()).close()
    reader.join(30)
    assert seen_again(events), events
    r = httpx.post(f"{chip_daemon.url}/api/v1/chip/read", json={"qr": QR}, timeout=30)
    assert r.status_code == 200 and r.json()["passive_auth"]["status"] == "authentic"


# -- a CCCD QR on any intake path opens the next card (terminal/flow/offers.py) ----------------
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


def test_an_mrz_through_the_camera_opens_the_next_card(
        inserted: list[VpcdCard],
        intake_daemon: tuple[BackgroundServer, int, Path]) -> None:
    """Issue 24, "Trust": the back of the virtual card's holder in front of the camera — its
    MRZ, check digits holding, is the chip's key; the card placed next reads with nothing
    typed."""
    server, _, folder = intake_daemon
    assert len(compose_mrz(DEMO_PERSON)) == 90
    events: Events = []
    ready = threading.Event()

    def offered(ev: Events) -> bool:
        return any(n == "card_text" and d["key_offered"] for n, d in ev)

    reader = threading.Thread(target=collect, args=(server.url, offered, ready, events))
    reader.start()
    assert ready.wait(10)
    write_clip(folder / "tmp.avi", [(plain_desk(), 10), (demo_back(), 60), (plain_desk(), 10)],
               fps=30)
    (folder / "tmp.avi").rename(folder / "cam.avi")
    reader.join(40)
    assert offered(events), events
    draft = next(d for n, d in events if n == "card_text")
    assert (draft["kind"], draft["read_from"], draft["reader"]) == ("cccd_mrz", "mrz", "camera")
    assert not any(n == "eligibility" for n, _ in events)  # a key, not a decision
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
    assert chip["id_number"] == DEMO_PERSON.id_number
    assert not any(n == "error" and d.get("code") == "chip_needs_key" for n, d in after)
