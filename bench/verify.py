"""Benchmark: verifications per second through ``POST /api/v1/verify`` and the latency the
terminal itself adds (answer time minus the time it waited for the registry).

Runs the production path in separate processes: ``tiepdon registry-sim`` and ``tiepdon serve``
on loopback; this process is the HIS, sending a mix of CCCD QR, BHYT QR and typed lookups.
The terminal reports its registry wait per answer in a ``Server-Timing`` header.

    .venv/bin/python -m bench.verify            # the full table (about a minute)
    .venv/bin/python -m bench.verify --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from terminal.demo import demo_environment

TIEPDON = str(Path(sys.executable).parent / "tiepdon")
BODIES: list[dict[str, str]] = [
    {"qr": "001098012345||NGUYỄN VĂN B|01012000|Nữ|Hà Nội|01012022"},
    {"qr": "0111077012|4e677579e1bb856e205469e1babf6e20c490e1baa174|29/03/1988|1|-|01 - C54|"
           "01/07/2023|-|31/07/2023|01050111077012|-|4| 01/10/2027|4641c59ff02659c3-1202|4|"
           "5175e1baad6e2043e1baa775204769e1baa5792c205468c3a06e68207068e1bb912048c3a0204ee1bb"
           "9969|$"},
    {"card_code": "HT3790200000003", "full_name": "Phạm Văn Sơn", "date_of_birth": "02/02/1950"},
    {"card_code": "HC4010200000005", "full_name": "Vũ Đức Thắng", "date_of_birth": "11/11/1970"},
]
_TIMING = re.compile(r"registry;dur=([0-9.]+)")


@dataclass
class Row:
    latency_ms: float
    concurrency: int
    requests: int
    seconds: float
    total_ms: list[float]
    added_ms: list[float]
    errors: int


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def start(args: list[str], env: dict[str, str], pattern: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([TIEPDON, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **env})
    stream = proc.stdout if pattern == "stdout" else proc.stderr
    assert stream is not None
    for _ in range(50):
        line = stream.readline()
        m = re.search(r"(http://[0-9.]+:[0-9]+)", line)
        if m:
            # Keep reading the pipe: a full pipe would block the server's log writes.
            threading.Thread(target=stream.read, daemon=True).start()
            return proc, m.group(1)
    proc.kill()
    raise RuntimeError(f"{args[0]} did not start")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


async def load(url: str, requests: int, concurrency: int, latency_ms: float) -> Row:
    total: list[float] = []
    added: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        await client.post("/api/v1/verify", json=BODIES[0])  # warm: login, connections

        async def worker() -> None:
            nonlocal errors
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t0 = time.perf_counter()
                r = await client.post("/api/v1/verify", json=BODIES[i % len(BODIES)])
                ms = (time.perf_counter() - t0) * 1000
                m = _TIMING.search(r.headers.get("server-timing", ""))
                if r.status_code != 200 or not m or r.json()["source"] != "registry":
                    errors += 1
                    continue
                total.append(ms)
                added.append(ms - float(m.group(1)))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - t0
    return Row(latency_ms, concurrency, requests, seconds, total, added, errors)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="few requests, for a smoke run")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    scale = 0.1 if args.quick else 1.0
    plan = [(0.0, 1, 600), (0.0, 8, 2000), (300.0, 1, 40), (300.0, 32, 640)]

    sim, sim_url = start(["registry-sim", "--port", "0"], {}, "stdout")
    data = tempfile.mkdtemp(prefix="tiepdon-bench-")
    env = {**demo_environment(sim_url, Path(data)), "TIEPDON_HTTP_PORT": "0"}
    daemon, url = start(["serve"], env, "stderr")
    rows: list[Row] = []
    try:
        for latency, concurrency, n in plan:
            httpx.post(f"{sim_url}/sim/control", json={"latency_ms": latency}).raise_for_status()
            rows.append(asyncio.run(load(url, max(concurrency, int(n * scale)), concurrency,
                                         latency)))
    finally:
        stop(daemon)
        stop(sim)

    print(f"machine: {machine()}")
    print("terminal: tiepdon serve; registry: tiepdon registry-sim (separate processes, "
          "loopback); client: httpx, keep-alive")
    header = ("| registry latency | clients | requests | verif./s | p50 ms | p99 ms "
              "| added p50 ms | added p99 ms | errors |")
    print(header)
    print("|" + "---|" * 9)
    out: list[dict[str, Any]] = []
    for r in rows:
        rate = len(r.total_ms) / r.seconds
        print(f"| {r.latency_ms:.0f} ms | {r.concurrency} | {r.requests} | {rate:.0f} "
              f"| {pct(r.total_ms, 50):.1f} | {pct(r.total_ms, 99):.1f} "
              f"| {pct(r.added_ms, 50):.2f} | {pct(r.added_ms, 99):.2f} | {r.errors} |")
        out.append({"registry_latency_ms": r.latency_ms, "clients": r.concurrency,
                    "requests": r.requests, "per_second": rate,
                    "p50_ms": pct(r.total_ms, 50), "p99_ms": pct(r.total_ms, 99),
                    "added_p50_ms": pct(r.added_ms, 50), "added_p99_ms": pct(r.added_ms, 99),
                    "added_mean_ms": statistics.fmean(r.added_ms) if r.added_ms else None,
                    "errors": r.errors})
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0 if all(r.errors == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
