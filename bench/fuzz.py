"""Fuzzing campaign: mutated inputs into every pure parser, one core, a fixed seed.

Each target takes bytes, turns them into its input (bytes or text) and calls the parser; the
exceptions the parser is *meant* to raise (its own error tree) are outcomes, anything else is a
finding, and so is an input that takes longer than ``--slow-ms``. Seeds are real inputs (the
virtual card's files, the specification vectors in tests/data, the QR examples); mutations are
bit flips, byte edits, truncation, inflated lengths, nesting bombs, splices and, for text,
Unicode oddities (lone surrogates, NFD, zero-width, non-ASCII digits). Prints a table:
executions, unique findings (exception and place), slowest input.

    .venv/bin/python -m bench.fuzz                  # 1 000 000 inputs per target
    .venv/bin/python -m bench.fuzz -n 20000 -t mrz  # a quick look at one target
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 16, 2, 30, tzinfo=UTC)


@dataclass
class Target:
    name: str
    run: Callable[[bytes], object]
    expected: tuple[type[BaseException], ...]
    seeds: list[bytes]
    text: bool = False  # mutate as text too


@dataclass
class Report:
    runs: int = 0
    findings: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    slow: list[tuple[float, bytes]] = field(default_factory=list)
    slowest_ms: float = 0.0


# -- mutations -----------------------------------------------------------------------------------
ODD_TEXT = ["\udca5", "\ud800", "\u0301", "\u200b", "\ufeff", "①", "٣", "\u202e", "\x00",
            "\x1b[31m", "NaN", "Infinity", "-0", "1e309", "\n", "|", "ǅ", "İ", "ß"]


def mutate(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(10)
        if op == 0 and b:      # bit flip
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:    # byte set
            b[rng.randrange(len(b))] = rng.choice((0, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0xFF))
        elif op == 2 and b:    # truncate
            del b[rng.randrange(len(b)):]
        elif op == 3:          # insert bytes
            i = rng.randrange(len(b) + 1)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 4 and b:    # delete a run
            i = rng.randrange(len(b))
            del b[i:i + rng.randint(1, 16)]
        elif op == 5 and b:    # inflate a length: a long-form length that claims a lot
            i = rng.randrange(len(b))
            b[i:i + 1] = rng.choice((b"\x84\x7f\xff\xff\xff", b"\x82\xff\xff", b"\x81\xff",
                                     b"\x80", b"\x83\x01\x00\x00"))
        elif op == 6:          # nesting bomb: wrap in constructed tags
            tag = rng.choice((b"\x30", b"\x31", b"\x7c", b"\xa0", b"\x61", b"["))
            depth = rng.choice((10, 100, 1000))
            if tag == b"[":
                b = bytearray(b"[" * depth + bytes(b) + b"]" * depth)
            else:
                inner = bytes(b)
                for _ in range(depth):
                    n = len(inner)
                    length = bytes([n]) if n < 128 else b"\x82" + n.to_bytes(2, "big") \
                        if n < 65536 else b"\x84" + n.to_bytes(4, "big")
                    inner = tag + length + inner
                b = bytearray(inner)
        elif op == 7 and seeds:  # splice with another seed
            other = rng.choice(seeds)
            i, j = rng.randrange(len(b) + 1), rng.randrange(len(other) + 1)
            b = bytearray(bytes(b[:i]) + other[j:])
        elif op == 8 and b:    # duplicate a run (repetition, superlinear parsers)
            i = rng.randrange(len(b))
            run = bytes(b[i:i + rng.randint(1, 64)])
            b[i:i] = run * rng.choice((2, 16, 256))
        elif op == 9:          # text oddities (encoded UTF-8 with surrogatepass)
            odd = rng.choice(ODD_TEXT).encode("utf-8", "surrogatepass")
            i = rng.randrange(len(b) + 1)
            b[i:i] = odd
    return bytes(b[:200_000])


def as_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass") if _decodes(data) else data.decode(
        "utf-8", "replace")


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return False
    return True


# -- targets ---------------------------------------------------------------------------------------
@cache
def card_files() -> dict[Any, bytes]:
    from readers.doubles.vcard import Faults, demo_card, make_pki

    pki = make_pki(now=NOW)
    card = demo_card(now=NOW, faults=Faults(aa="ec"), pki=pki)[0]
    return {**card.files, "csca": pki.csca.public_bytes(
        __import__("cryptography.hazmat.primitives.serialization",
                   fromlist=["Encoding"]).Encoding.DER)}


@cache
def trust() -> list[Any]:
    from cryptography import x509

    return [x509.load_der_x509_certificate(card_files()["csca"])]


def targets() -> list[Target]:
    from readers.emrtd import aa, apdu, atr, ca, lds, mrz, pa, pace
    from readers.emrtd.sm import AesSuite, TerminalChannel
    from readers.errors import ReaderError
    from readers.scan import framing
    from terminal.settings import SettingsError
    from verify import history, hn212, qr, registry, snapshot
    from verify.errors import VerifyError
    from verify.fingerprint import fingerprint

    files = card_files()
    vectors = json.loads((ROOT / "tests" / "data" / "icao9303_11_appendix_g.json").read_text())
    answer = bytes.fromhex(vectors["aes_sm"]["answer"])

    def sm(data: bytes) -> object:
        channel = TerminalChannel(AesSuite(bytes(16), bytes(16)), bytes(16))
        return channel.unwrap(data[:-2], int.from_bytes(data[-2:] or b"\x90\x00", "big"))

    def pa_run(data: bytes) -> object:
        sod = lds.parse_sod(data)
        return pa.passive_authentication(sod, {1: files[1]}, trust(), now=NOW)

    def aa_run(data: bytes) -> object:
        return aa.verify_answer(aa.public_key_from_dg15(data), b"12345678", b"\x00" * 64,
                                0x9000)

    def settings_run(data: bytes) -> object:
        import tomllib

        from terminal.settings import parse_settings

        try:
            doc = tomllib.loads(as_text(data))
        except tomllib.TOMLDecodeError:
            return None
        return parse_settings(doc, environ={})

    def registry_run(data: bytes) -> object:
        try:
            obj = json.loads(data)
        except (ValueError, RecursionError):
            return None
        return registry.parse_check_answer(obj)

    def json_of(data: bytes) -> object:
        try:
            return json.loads(data)
        except (ValueError, RecursionError):
            return None

    def history_run(data: bytes) -> object:
        return history.parse_history_answer(json_of(data))

    def hn212_run(data: bytes) -> object:
        obj = json_of(data)
        keys = hn212.input_keys(obj) if isinstance(obj, dict) else None
        return keys, hn212.aa_challenge(obj)

    def manifest_run(data: bytes) -> object:
        return snapshot.parse_manifest(data, {})

    def framing_run(data: bytes) -> object:
        """Fed in pieces as a serial port delivers them; what comes out must be whole lines."""
        framer = framing.LineFramer()
        step = 1 + (data[0] % 31 if data else 0)
        out = [p for i in range(0, len(data), step) for p in framer.feed(data[i:i + step])]
        for payload in out:
            if payload is not None and (any(c in payload for c in "\r\n") or len(
                    payload.encode("utf-8")) > framing.MAX_LINE_BYTES):
                raise AssertionError("LineFramer let a separator or an over-long line out")
        if framer.pending > framing.MAX_LINE_BYTES:
            raise AssertionError("LineFramer buffered more than a line")
        return out

    def card_access_seed() -> bytes:
        """PACEInfo, PACEDomainParameterInfo (standardized id 13), ChipAuthenticationInfo."""
        tlv = apdu.encode_tlv
        oid = {"pace": "04007f00070202040202", "pace_domain": "04007f000702020402",
               "standardized": "04007f00070102", "ca": "04007f00070202030202"}
        return tlv(0x31, b"".join(tlv(0x30, item) for item in (
            tlv(0x06, bytes.fromhex(oid["pace"])) + tlv(0x02, b"\x02") + tlv(0x02, b"\x0d"),
            tlv(0x06, bytes.fromhex(oid["pace_domain"])) + tlv(0x30, tlv(
                0x06, bytes.fromhex(oid["standardized"])) + tlv(0x02, b"\x0d")),
            tlv(0x06, bytes.fromhex(oid["ca"])) + tlv(0x02, b"\x01"))))

    def dg14_seeds() -> list[bytes]:
        from readers.doubles.vcard import DG14_ENCODINGS, build_dg14
        from readers.emrtd.ec import BRAINPOOLP256R1, SECP384R1

        return [files[14]] + [
            build_dg14(curve, curve.g, f"{ca.OID_CA}.2.2", encoding=encoding, key_id=key_id)
            for encoding in DG14_ENCODINGS for curve, key_id in ((BRAINPOOLP256R1, None),
                                                                 (SECP384R1, 1))]

    settings_seed = (ROOT / "config" / "tiepdon.example.toml").read_bytes()
    qr_seeds = [s.encode() for s in (
        "001088004321||Nguyễn Tiến Đạt|29031988|Nam|Hà Nội|01072021",
        "0111077012|4e677579e1bb856e205469e1babf6e20c490e1baa174|29/03/1988|1|-|01 - C54|"
        "01/07/2023|-|31/07/2023|01050111077012|-|4| 01/10/2027|4641c59ff02659c3-1202|4|"
        "5175e1baad6e2043e1baa775204769e1baa5792c205468c3a06e68207068e1bb912048c3a0204ee1bb"
        "9969|$")]
    check_answer = json.dumps({"maKetQua": "000", "maThe": "HS4010120878811",
                               "hoTen": "Nguyễn Tiến Đạt", "ngaySinh": "29/03/1988",
                               "gioiTinh": "Nam", "maDKBD": "01C54", "gtTheTu": "01/01/2026",
                               "gtTheDen": "31/12/2026"}, ensure_ascii=False).encode()
    return [
        Target("ber-tlv", lambda d: apdu.parse_tlvs(d), (ReaderError,), [files["sod"][:400],
                                                                         files[13]]),
        Target("atr", lambda d: atr.supports_extended_length(d), (ReaderError,),
               [bytes.fromhex("3B8E800180738021C0")]),
        Target("sm-unwrap", sm, (ReaderError,), [answer]),
        Target("mrz", lambda d: mrz.parse_td1(as_text(d)), (ReaderError,),
               [apdu.unwrap_tlv(files[1], 0x61)[5:]], text=True),
        Target("dg1", lds.parse_dg1, (ReaderError,), [files[1]]),
        Target("dg2", lds.parse_dg2, (ReaderError,), [files[2][:3000]]),
        Target("dg13", lds.parse_dg13, (ReaderError,), [files[13]]),
        Target("ef-com", lds.parse_ef_com, (ReaderError,), [files["com"]]),
        Target("dg14", ca.parse_dg14, (ReaderError,), dg14_seeds()),
        Target("ef-cardaccess", pace.pace_curve, (), [files["cardaccess"], card_access_seed()]),
        Target("dg15-aa", aa_run, (ReaderError,), [files[15]]),
        Target("sod-pa", pa_run, (ReaderError,), [files["sod"]]),
        Target("qr", lambda d: qr.parse_qr(as_text(d)), (VerifyError,), qr_seeds, text=True),
        Target("registry-answer", registry_run, (VerifyError,), [check_answer], text=True),
        Target("visit-history", history_run, (VerifyError,), [json.dumps(
            {"maKetQua": "000", "dsLichSuKCB2025": [
                {"maHoSo": "1", "maCSKCB": "01929", "ngayVao": "202503101030",
                 "ngayRa": "202503101430", "tenBenh": "x", "lyDoVV": "1"}]}).encode()],
               text=True),
        Target("hn212-request", hn212_run, (VerifyError,), [json.dumps(
            {"idCode": "001088004321", "dateOfBirth": "29031988", "expiryDate": "29032048",
             "clientId": "1", "challenge": "AAECAwQFBgc="}).encode()], text=True),
        Target("settings", settings_run, (SettingsError,), [settings_seed], text=True),
        Target("manifest", manifest_run, (VerifyError,), [json.dumps(
            {"format": 1, "snapshot_version": 3, "created": "2026-11-20T00:00:00+00:00",
             "expires": "2026-11-27T00:00:00+00:00", "record_count": 10,
             "content_hash": "0" * 64, "records_size": 4096, "key_id": "demo",
             "index_salt": "00" * 16, "signature": "AAAA"}).encode()], text=True),
        Target("scan-framing", framing_run, (), [
            b"001088004321||Nguy\xe1\xbb\x85n Ti\xe1\xba\xbfn \xc4\x90\xe1\xba\xa1t|29031988|Nam|"
            b"H\xc3\xa0 N\xe1\xbb\x99i|01072021\r\n" + qr_seeds[1] + b"\r", b"a\rb\nc\r\n\xff\r"]),
                Target("fingerprint", lambda d: fingerprint(b"k" * 32, as_text(d)), (), qr_seeds,
               text=True),
    ]


def place(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if str(ROOT) in f.filename and "/bench/" not in f.filename]
    where = ours[-1] if ours else (frames[-1] if frames else None)
    if where is None:
        return type(exc).__name__
    name = where.filename
    shown = str(Path(name).relative_to(ROOT)) if str(ROOT) in name else name
    return f"{type(exc).__name__} at {shown}:{where.lineno}"


def campaign(target: Target, n: int, seed: int, slow_ms: float) -> Report:
    rng = random.Random(f"{seed}:{target.name}")
    report = Report()
    pool = list(target.seeds)
    for i in range(n):
        data = mutate(rng, rng.choice(pool), target.seeds)
        t0 = time.perf_counter()
        try:
            target.run(data)
        except target.expected:
            pass
        except Exception as e:  # everything else is the finding
            key = place(e)
            if key not in report.findings:
                report.findings[key] = (1, data)
            else:
                report.findings[key] = (report.findings[key][0] + 1, report.findings[key][1])
        ms = (time.perf_counter() - t0) * 1000
        report.slowest_ms = max(report.slowest_ms, ms)
        if ms > slow_ms and len(report.slow) < 20:
            report.slow.append((ms, data))
        if i % 97 == 0 and len(pool) < 64:
            pool.append(data)  # keep some mutants as seeds: deeper structure-aware walks
        report.runs += 1
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=1_000_000, help="inputs per target")
    ap.add_argument("-t", "--target", action="append", help="only these targets")
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--slow-ms", type=float, default=100.0)
    ap.add_argument("--save", help="write the failing inputs to this folder")
    args = ap.parse_args()
    chosen = [t for t in targets() if not args.target or t.name in args.target]
    print("| target | executions | unique findings | inputs over "
          f"{args.slow_ms:.0f} ms | slowest ms | seconds |")
    print("|---|---|---|---|---|---|")
    bad = 0
    for target in chosen:
        t0 = time.perf_counter()
        report = campaign(target, args.n, args.seed, args.slow_ms)
        seconds = time.perf_counter() - t0
        print(f"| {target.name} | {report.runs} | {len(report.findings)} | {len(report.slow)} "
              f"| {report.slowest_ms:.1f} | {seconds:.0f} |", flush=True)
        for key, (count, data) in report.findings.items():
            print(f"    {key} ×{count}: {data[:80]!r}", flush=True)
        if args.save:
            out = Path(args.save) / target.name
            out.mkdir(parents=True, exist_ok=True)
            for i, (_, data) in enumerate(report.findings.values()):
                (out / f"finding-{i}.bin").write_bytes(data)
            for i, (_, data) in enumerate(report.slow):
                (out / f"slow-{i}.bin").write_bytes(data)
        bad += len(report.findings) + len(report.slow)
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
