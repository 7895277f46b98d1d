"""``tiepdon card probe``: what an interop report needs from a new reader or card model, with
no personal data — reader, ATR, extended length, the SecurityInfos of EF.CardAccess and DG14
(OIDs, parameter ids, key encodings), the SOD's data groups and algorithms, the document
signer's issuer and validity, which checks passed, and APDUs and time per step.

No names, numbers, MRZ, photo or key bytes leave this module: the identity files are read
(passive authentication needs them) and dropped.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509

from readers.emrtd.apdu import CardPort
from readers.emrtd.atr import supports_extended_length
from readers.emrtd.chip import ChipRead, ChipSession
from readers.emrtd.lds import parse_sod
from readers.emrtd.mrz import AccessKey, CanKey
from readers.emrtd.secinfo import summarize
from readers.errors import ReaderError, TlvError
from terminal.chip.source import ChipSource, close_port, read_from_source

INS_STEP = {0xA4: "select", 0x84: "bac", 0x82: "bac", 0xB0: "read_files", 0xB1: "read_files",
            0x88: "active_auth"}
GENERAL_AUTH = (0x22, 0x86)  # MSE:Set AT / GENERAL AUTHENTICATE: PACE before files, CA after


@dataclass
class Steps:
    """APDUs and milliseconds per protocol step, told apart by INS and by order."""

    apdus: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    ms: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    files_started: bool = False

    def step(self, apdu: bytes) -> str:
        ins = apdu[1] if len(apdu) > 1 else -1
        if ins in GENERAL_AUTH:
            return "chip_auth" if self.files_started else "pace"
        name = INS_STEP.get(ins, f"ins_{ins:02X}")
        if name == "read_files" and apdu[0] & 0x0C:  # under secure messaging
            self.files_started = True
        return name if name != "read_files" or apdu[0] & 0x0C else "card_access"

    def to_json(self) -> dict[str, dict[str, float]]:
        return {name: {"apdus": self.apdus[name], "ms": round(self.ms[name], 1)}
                for name in self.apdus}


class _Timed:
    """A CardPort that records each APDU's step and time (the bytes are not kept)."""

    def __init__(self, port: CardPort, steps: Steps) -> None:
        self.port = port
        self.steps = steps

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        name = self.steps.step(apdu)
        started = time.perf_counter()
        try:
            return self.port.send_and_receive(apdu)
        finally:
            self.steps.apdus[name] += 1
            self.steps.ms[name] += (time.perf_counter() - started) * 1000

    def close(self) -> None:
        close_port(self.port)


@dataclass
class _TimedSource:
    inner: ChipSource
    steps: Steps
    name: str = ""

    @property
    def demo_keys(self) -> list[AccessKey | CanKey] | None:
        return self.inner.demo_keys

    def connect(self) -> tuple[CardPort, bytes]:
        port, atr = self.inner.connect()
        self.name = self.inner.name
        return _Timed(port, self.steps), atr


def _sod_report(raw: bytes | None) -> dict[str, Any] | str:
    if not raw:
        return "absent"
    try:
        sod = parse_sod(raw)
        signer = sod.signed_data["signer_infos"][0]
        out: dict[str, Any] = {
            "data_groups": sorted(sod.hashes), "hash_algorithm": sod.hash_algorithm,
            "signature_algorithm": str(signer["signature_algorithm"]["algorithm"].native)}
        certs = sod.signed_data["certificates"]
        if certs is not None and len(certs):
            cert = x509.load_der_x509_certificate(certs[0].chosen.dump())
            out["ds_issuer"] = cert.issuer.rfc4514_string()
            out["ds_valid_from"] = cert.not_valid_before_utc.date().isoformat()
            out["ds_valid_to"] = cert.not_valid_after_utc.date().isoformat()
        return out
    except (TlvError, ValueError, KeyError, TypeError, IndexError) as e:
        return f"unreadable ({type(e).__name__})"


def _card_access(source: ChipSource, steps: Steps) -> tuple[bytes, bytes | None]:
    port, atr = source.connect()
    try:
        return atr, ChipSession(_Timed(port, steps), rnd=bytes, extended=False).card_access()
    finally:
        close_port(port)


def probe(source: ChipSource, keys: list[AccessKey | CanKey], *, trust: list[x509.Certificate],
          now: datetime, extended_mode: str = "auto", retries: int = 0) -> dict[str, Any]:
    """Blocking. The report as JSON; a step that failed is named with its error code."""
    steps = Steps()
    report: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        atr, card_access = _card_access(source, steps)
    except ReaderError as e:
        return {"reader": source.name, "error": e.code, "steps": steps.to_json()}
    report.update(reader=source.name, atr=atr.hex().upper(),
                  extended_length=supports_extended_length(atr),
                  card_access=summarize(card_access))
    read: ChipRead | None = None
    if not keys:
        report["read"] = "skipped: no access key given (--qr or --can)"
    try:
        read = None if not keys else read_from_source(
            _TimedSource(source, steps), keys, extended_mode=extended_mode, retries=retries,
            trust=trust, now=now)
    except (ReaderError, TlvError) as e:
        report["error"] = e.code
    if read is not None:
        report.update(
            access=read.identity.access, dg14=summarize(read.files.get("dg14")),
            sod=_sod_report(read.files.get("sod")),
            checks={"passive_auth": read.passive_auth.to_json(),
                    "active_auth": read.active_auth, "chip_auth": read.chip_auth,
                    "chip_auth_reason": read.chip_auth_reason},
            files_read=sorted(read.files), reconnects=read.reconnects)
    report.update(steps=steps.to_json(), apdus=sum(steps.apdus.values()),
                  ms=round((time.perf_counter() - started) * 1000, 1))
    return report
