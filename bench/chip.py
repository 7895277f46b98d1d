"""Benchmark: full chip reads of the virtual CCCD through pcscd (vpcd driver) and pyscard.

Per read: command APDUs and bytes each way (EF.COM, DG1, DG13, EF.SOD, a 16 KB DG2), short
versus extended length; the terminal's CPU time (the virtual card runs in a separate process,
so it is not counted); time to the identity (DG1 + DG13 + SOD verified) and to the photo.

    .venv/bin/python -m bench.chip            # needs pcscd with vsmartcard-vpcd running
    .venv/bin/python -m bench.chip --reads 5  # a quick run
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench.verify import machine
from readers.devices import pcsc
from readers.doubles.vcard import DEMO_FACE, DEMO_PERSON, VirtualCccd, build_files, make_pki
from readers.emrtd.access import can_of
from readers.emrtd.chip import ChipIdentity, read_chip
from readers.emrtd.mrz import CanKey
from readers.emrtd.pa import PaStatus, load_trust
from readers.errors import ReaderError

DG2_TARGET = 16 * 1024


def photo_16k() -> bytes:
    """The demo JPEG with a comment segment so that DG2 is about 16 KB."""
    jpeg = DEMO_FACE.read_bytes()
    pad = max(0, DG2_TARGET - len(jpeg) - 80)
    return jpeg[:2] + b"\xff\xfe" + (pad + 2).to_bytes(2, "big") + bytes(pad) + jpeg[2:]


def card_process(queue: Any, stop: Any) -> None:
    """Child process: build the card, hand the CSCA to the parent, stay in the reader."""
    from readers.doubles.vpcd import VpcdCard

    pki = make_pki(now=datetime.now(UTC))
    files = build_files(DEMO_PERSON, pki, photo=photo_16k())
    card = VirtualCccd(files, DEMO_PERSON.access_key)
    queue.put((pki.csca_pem(), {str(k): len(v) for k, v in files.items()}))
    with VpcdCard(card):
        stop.wait(600)


def connect() -> pcsc.PcscPort:
    deadline = time.monotonic() + 15
    while True:
        try:
            return pcsc.connect()
        except ReaderError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reads", type=int, default=30)
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    queue, stop = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=card_process, args=(queue, stop), daemon=True)
    child.start()
    csca, sizes = queue.get(timeout=60)
    trust = load_trust([csca])
    rows = []
    try:
        port = connect()
        plans = [(access, extended) for access in ("bac", "pace") for extended in (False, True)]
        for access, extended in plans:
            keys = ([DEMO_PERSON.access_key] if access == "bac"
                    else [CanKey(can_of(DEMO_PERSON.id_number))])
            apdus, bytes_in, bytes_out, cpu, to_id, to_photo = [], [], [], [], [], []
            for _ in range(args.reads + 1):
                marks: dict[str, float] = {}

                def on_identity(identity: ChipIdentity, marks: dict[str, float] = marks) -> None:
                    marks["identity"] = time.perf_counter()

                t0, c0 = time.perf_counter(), time.process_time()
                result = read_chip(port, keys, rnd=os.urandom,
                                   extended=extended, trust=trust, now=datetime.now(UTC),
                                   on_identity=on_identity)
                t1, c1 = time.perf_counter(), time.process_time()
                assert result.passive_auth.status is PaStatus.AUTHENTIC
                apdus.append(result.apdus)
                bytes_in.append(result.bytes_in)
                bytes_out.append(result.bytes_out)
                cpu.append((c1 - c0) * 1000)
                to_id.append((marks["identity"] - t0) * 1000)
                to_photo.append((t1 - t0) * 1000)
            # the first read warms caches (imports, pyscard); leave it out
            rows.append((access, extended, apdus[1:], bytes_in[1:], bytes_out[1:], cpu[1:],
                         to_id[1:], to_photo[1:]))
        port.close()
    finally:
        stop.set()
        child.join(10)

    print(f"machine: {machine()}")
    print(f"path: pyscard → pcscd → vsmartcard vpcd → virtual CCCD (separate process); "
          f"{args.reads} reads per mode after one warm-up; file sizes: "
          + ", ".join(f"{k} {v} B" for k, v in sizes.items()))
    print("| access | length | APDUs/read | bytes in | bytes out | terminal CPU ms p50 / max "
          "| to identity ms p50 | to photo ms p50 / p95 |")
    print("|---|---|---|---|---|---|---|---|")
    for access, extended, a, bi, bo, cpu, ti, tp in rows:
        print(f"| {access.upper()} | {'extended' if extended else 'short (Le ≤ 0xDF)'} "
              f"| {statistics.median(a):.0f} "
              f"| {statistics.median(bi):.0f} | {statistics.median(bo):.0f} "
              f"| {statistics.median(cpu):.1f} / {max(cpu):.1f} | {statistics.median(ti):.1f} "
              f"| {statistics.median(tp):.1f} / {pct(tp, 95):.1f} |")
    short_ok = all(statistics.median(r[2]) <= 95 for r in rows if not r[1])
    ext_ok = all(statistics.median(r[2]) <= 12 for r in rows if r[1])
    cpu_ok = all(max(r[5]) <= 50 for r in rows)
    print(f"targets: short ≤ 95 APDUs {'met' if short_ok else 'MISSED'}; extended ≤ 12 "
          f"{'met' if ext_ok else 'MISSED'}; ≤ 50 ms terminal CPU {'met' if cpu_ok else 'MISSED'}")
    return 0 if short_ok and ext_ok and cpu_ok else 1


if __name__ == "__main__":
    sys.exit(main())
