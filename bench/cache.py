"""Benchmark: signed offline snapshots at 100 k, 1 M (and 10 M with --sizes) records.

Per size: build time, verify time (signature + content hash), install time (copy, fsync,
hash, atomic switch), file size, lookup p50/p99 and peak RSS in a fresh process doing random
lookups (hits and misses). Then, through the daemon with the registry hanging: time to an
answer before and after the circuit breaker opens.

    .venv/bin/python -m bench.cache                       # 100 k and 1 M
    .venv/bin/python -m bench.cache --sizes 100000,1000000,10000000
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.verify import machine, start, stop
from verify.adapters.cache import Snapshot, build, install, verify_dir
from verify.snapshot import lookup_identifier, public_key_text

READING = bytes(range(32))
OBJECTS = ["DN", "HT", "GD", "TE", "CN", "HS", "SV", "XN"]


def synthetic(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    rnd = random.Random(seed)
    for i in range(n):
        bhxh = f"{i:010d}"
        yield {
            "card_code": f"{OBJECTS[i % 8]}4{1 + i % 96:02d}{bhxh}", "bhxh_number": bhxh,
            "cccd_number": f"0{1 + i % 96:02d}{i % 4}{i:08d}"[:12],
            "full_name": f"Nguyễn Văn Thử {i}",
            "date_of_birth": f"{1940 + i % 80}-0{1 + i % 9}-1{i % 9}",
            "sex": "male" if i % 2 else "female", "valid_from": "2026-01-01",
            "valid_to": "2026-12-31",
            "registered_facility": f"{1 + i % 96:02d}{rnd.randint(0, 999):03d}",
            "area_code": None, "five_years_date": None, "benefit_level": 4,
        }


def lookup_worker(cache_dir: str, n: int, count: int, trusted: str) -> None:
    """Child process: open the installed snapshot, time random lookups, report RSS."""
    from verify.snapshot import parse_trusted_keys

    snap = Snapshot.open(Path(cache_dir), parse_trusted_keys([trusted]), READING,
                         verify_hash=False)
    assert snap is not None
    rnd = random.Random(1)
    times = []
    hits = 0
    for k in range(count):
        i = rnd.randrange(n) if k % 10 else n + rnd.randrange(n)  # one in ten is a miss
        ident = lookup_identifier(f"{i:010d}")
        t0 = time.perf_counter()
        hit = snap.lookup(ident)
        times.append((time.perf_counter() - t0) * 1000)
        hits += hit is not None
    times.sort()
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would report the
    # parent's peak from the build.
    hwm = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM:"))
    print(json.dumps({"p50": times[len(times) // 2], "p99": times[int(len(times) * 0.99)],
                      "hits": hits, "rss_mb": hwm / 1024}))


def bench_size(n: int, work: Path, key: Ed25519PrivateKey) -> dict[str, Any]:
    trusted = {"bench": key.public_key()}
    out = work / f"snap-{n}"
    created = datetime.now(UTC)
    t0 = time.perf_counter()
    build(synthetic(n), out, signing_key=key, key_id="bench", reading_key=READING, version=n,
          created=created, expires=created + timedelta(days=7))
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    verify_dir(out, trusted)
    t_verify = time.perf_counter() - t0
    cache = work / f"cache-{n}"
    t0 = time.perf_counter()
    install(out, cache, trusted)
    t_install = time.perf_counter() - t0
    size_mb = (out / "records.db").stat().st_size / 1e6
    shutil.rmtree(out)
    entry = f"bench:{public_key_text(key.public_key())}"
    p = subprocess.run([sys.executable, "-c",
                        "import sys; from bench.cache import lookup_worker; "
                        f"lookup_worker({str(cache)!r}, {n}, 20000, {entry!r})"],
                       capture_output=True, text=True, check=True)
    look = json.loads(p.stdout)
    shutil.rmtree(cache)
    return {"records": n, "build_s": t_build, "verify_s": t_verify, "install_s": t_install,
            "file_mb": size_mb, **look}


def offline_answers(work: Path) -> dict[str, Any]:
    """Registry hanging: answer times before and after the breaker opens."""
    from terminal.demo import demo_environment, demo_snapshot
    from verify.model import VN_TZ

    sim, sim_url = start(["registry-sim", "--port", "0"], {}, "stdout")
    data = work / "daemon"
    data.mkdir()
    cache = demo_snapshot(data, datetime.now(VN_TZ).date())
    env = {**demo_environment(sim_url, data), "TIEPDON_HTTP_PORT": "0",
           "TIEPDON_CACHE_TRUSTED_KEYS": ",".join(cache["trusted_keys"]),
           "TIEPDON_CACHE_READING_KEY_FILE": cache["reading_key_file"],
           "TIEPDON_CACHE_BUDGET_SECONDS": "3", "TIEPDON_REGISTRY_TIMEOUT_SECONDS": "10"}
    daemon, url = start(["serve"], env, "stderr")
    body = {"card_code": "HT3790200000003", "full_name": "Phạm Văn Sơn",
            "date_of_birth": "02/02/1950"}
    before: list[float] = []
    after: list[float] = []
    try:
        httpx.post(f"{url}/api/v1/verify", json=body, timeout=30)  # warm: token, journal
        httpx.post(f"{sim_url}/sim/control", json={"fault": "hang"}).raise_for_status()
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(40):
                breaker = client.get("/api/v1/health").json()["components"]["registry"].get(
                    "breaker")
                t0 = time.perf_counter()
                r = client.post("/api/v1/verify", json=body).json()
                ms = (time.perf_counter() - t0) * 1000
                assert r["source"] == "cache", r["source"]
                (after if breaker == "open" else before).append(ms)
                if len(after) >= 30:
                    break
    finally:
        stop(daemon)
        stop(sim)
    return {"before_n": len(before), "before_p50": statistics.median(before),
            "after_n": len(after), "after_p50": statistics.median(after),
            "after_p99": sorted(after)[int(len(after) * 0.99)]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="100000,1000000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    key = Ed25519PrivateKey.generate()
    work = Path(tempfile.mkdtemp(prefix="tiepdon-bench-cache-", dir="/var/tmp"))
    try:
        rows = [bench_size(n, work, key) for n in sizes]
        offline = offline_answers(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"machine: {machine()}")
    print("| records | build s | verify s | install s | records.db MB | lookup p50 ms "
          "| lookup p99 ms | lookup process RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['records']:,} | {r['build_s']:.1f} | {r['verify_s']:.2f} "
              f"| {r['install_s']:.2f} | {r['file_mb']:.0f} | {r['p50']:.3f} | {r['p99']:.3f} "
              f"| {r['rss_mb']:.0f} |")
    print()
    print("registry hanging, budget 3 s, breaker after 3 failures: "
          f"before it opens {offline['before_n']} answers p50 {offline['before_p50']:.0f} ms; "
          f"after {offline['after_n']} answers p50 {offline['after_p50']:.1f} ms, "
          f"p99 {offline['after_p99']:.1f} ms")
    ok = all(r["p99"] < 1.0 for r in rows) and offline["after_p99"] < 200
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
