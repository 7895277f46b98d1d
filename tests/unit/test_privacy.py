"""A whole day's flow with the simulator's seeded people, then a grep of every log line and
every file the daemon wrote for their names, ID numbers, card codes and birth dates. Only the
snapshot, the journal and the audit log may hold them — and only in protected form, so the
grep must find nothing anywhere."""

from __future__ import annotations

import logging
import unicodedata
from pathlib import Path

import httpx
import pytest

from readers.doubles.vcard import DEMO_PERSON
from terminal.server import BackgroundServer
from tests.helpers.chip import serve as chip_serve
from tests.helpers.daemon import sim_control
from tests.helpers.offline import offline_daemon
from tests.helpers.samples import TODAY
from verify.simulator.registry_sim import seed_people


def secrets_of_the_day() -> list[str]:
    out: set[str] = set()
    for p in seed_people(TODAY):
        name = p["full_name"]
        folded = "".join(c for c in unicodedata.normalize("NFD", name)
                         if not unicodedata.combining(c))
        out |= {name, name.upper(), folded, folded.upper(), p["card_code"]}
        if p.get("bhxh"):
            out.add(p["bhxh"])
        if p.get("cccd"):
            out.add(p["cccd"])
        dob = p["dob"]
        if len(dob) == 10:
            d, m, y = dob.split("/")
            out |= {dob, f"{y}-{m}-{d}", f"{d}{m}{y}"}
    out |= {DEMO_PERSON.id_number, DEMO_PERSON.full_name, "NGUYEN<<TIEN<DAT"}
    return sorted(s for s in out if len(s) >= 6)


def day(server: BackgroundServer, sim: BackgroundServer) -> None:
    people = seed_people(TODAY)
    for p in people:
        httpx.post(f"{server.url}/api/v1/verify", json={
            "card_code": p["card_code"], "full_name": p["full_name"],
            "date_of_birth": p["dob"]}, timeout=30)
    httpx.post(f"{server.url}/api/v1/verify", json={
        "qr": "001098012345||NGUYỄN VĂN B|01012000|Nữ|Hà Nội|01012022"}, timeout=30)
    httpx.post(f"{server.url}/api/v1/verify", json={"qr": "001098012345||X|99999999|Nữ||"},
               timeout=30)
    sim_control(sim, fault="http500")  # the afternoon outage: journal and snapshot answer
    for p in people[:8]:
        httpx.post(f"{server.url}/api/v1/verify", json={
            "card_code": p["card_code"], "full_name": p["full_name"],
            "date_of_birth": p["dob"]}, timeout=30)
    sim_control(sim, fault="none")
    httpx.get(f"{server.url}/api/v1/last/checkin")
    httpx.get(f"{server.url}/dashboard")


def test_no_personal_data_in_logs_or_files(sim: BackgroundServer, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = offline_daemon(sim, tmp_path / "a")
    try:
        day(server, sim)
    finally:
        server.stop()
    chip = chip_serve(sim, tmp_path / "b")
    try:
        assert httpx.post(f"{chip.url}/api/v1/chip/demo", timeout=30).status_code == 200
    finally:
        chip.stop()
    logs = "\n".join(f"{r.name} {r.getMessage()} {getattr(r, '__dict__', {})}"
                     for r in caplog.records)
    assert "verified kind=" in logs and "audit seq=" in logs  # the day really happened
    # everything the daemons wrote: their data folders (cache, journal, audit, keys)
    written = [p for d in (tmp_path / "a" / "data", tmp_path / "b" / "data")
               for p in d.rglob("*") if p.is_file()]
    assert any(p.name == "journal.db" for p in written)
    assert any(p.suffix == ".jsonl" for p in written)
    blobs = {str(p.relative_to(tmp_path)): p.read_bytes() for p in written}
    leaks = []
    for secret in secrets_of_the_day():
        if secret in logs:
            leaks.append(f"log: {secret[:3]}…")
        for name, data in blobs.items():
            if secret.encode() in data:
                leaks.append(f"{name}: {secret[:3]}…")
    assert leaks == []
