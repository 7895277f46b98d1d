"""Benchmark: what the daemon costs a reception PC — the unit's exposure score, RSS and CPU of
``tiepdon serve`` at idle and with the camera loop reading a 15 fps clip, the audit log's
append throughput and verify time at 1 M records, and (``--boot``) the boot test's numbers:
the installer's time, boot to READY, restart after the watchdog, an upgrade, RSS under the
sandbox, and the boot test's own duration with an empty and with a warm Debian-root cache.

    .venv/bin/python -m bench.ops [--boot]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.verify import machine, start, stop
from terminal.audit import AuditLog
from terminal.demo import demo_environment

ROOT = Path(__file__).resolve().parent.parent


def exposure() -> str:
    p = subprocess.run(["systemd-analyze", "security", "--offline=true",
                        str(ROOT / "systemd" / "tiepdon.service")],
                       capture_output=True, text=True, check=False)
    m = re.search(r"Overall exposure level for tiepdon.service: ([0-9.]+ \w+)", p.stdout)
    return m.group(1) if m else "n/a"


def usage(pid: int, seconds: float) -> tuple[float, float]:
    """(RSS MB, CPU % of one core) over ``seconds``."""
    def ticks() -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    hz = os.sysconf("SC_CLK_TCK")
    t0, c0 = time.monotonic(), ticks()
    time.sleep(seconds)
    cpu = (ticks() - c0) / hz / (time.monotonic() - t0)
    rss = next(int(x.split()[1]) for x in Path(f"/proc/{pid}/status").read_text().splitlines()
               if x.startswith("VmRSS:"))
    return rss / 1024, 100 * cpu


def daemon_costs(work: Path) -> list[tuple[str, float, float]]:
    from bench.qrdata import samples
    from readers.doubles.render import write_clip

    clip = work / "clip.avi"
    frames = [s.frame for s in samples(4) if s.family in ("clean", "perspective", "scale")]
    write_clip(clip, [(f, 75) for f in frames])  # 12 frames × 5 s = 60 s at 15 fps
    rows = []
    sim, sim_url = start(["registry-sim", "--port", "0"], {}, "stdout")
    try:
        for label, extra in (("idle", {}), ("camera loop, 15 fps", {
                "TIEPDON_CAMERA_SOURCE": str(clip), "TIEPDON_CAMERA_FPS": "15"})):
            data = work / label.split()[0]
            env = {**demo_environment(sim_url, data), "TIEPDON_HTTP_PORT": "0", **extra}
            daemon, _ = start(["serve"], env, "stderr")
            try:
                time.sleep(3)
                rss, cpu = usage(daemon.pid, 10)
                rows.append((label, rss, cpu))
            finally:
                stop(daemon)
    finally:
        stop(sim)
    return rows


def audit_costs(work: Path, n: int) -> tuple[float, float, int]:
    log = AuditLog(work / "audit", b"k" * 32)
    record = {"desk": "01C54", "officer": "a1b2c3d4e5f6", "kind": "cccd_qr",
              "subject": "0123456789ab", "reader": "camera", "result_code": "000",
              "status": "eligible", "source": "registry"}
    # The daemon fsyncs every record (a crash loses none); here a batch without fsync shows
    # the chain's own cost, and 1 000 fsynced appends show the disk's.
    t0 = time.perf_counter()
    for _ in range(1000):
        log.append(record)
    fsynced = 1000 / (time.perf_counter() - t0)
    import json

    from verify.audit import seal

    path = log.files()[-1]
    prev, seq = log._prev, log._seq
    with path.open("a", encoding="utf-8") as f:
        for _ in range(n - 1000):
            sealed = seal(log.key, prev, {**record, "seq": seq, "at": "2026-11-22T00:00:00"})
            f.write(json.dumps(sealed, ensure_ascii=False) + "\n")
            prev, seq = sealed["mac"], seq + 1
    t0 = time.perf_counter()
    report = AuditLog(work / "audit", b"k" * 32).verify()
    verify_s = time.perf_counter() - t0
    assert report.ok and report.records == n
    return fsynced, verify_s, path.stat().st_size


def boot_runs(work: Path) -> list[tuple[str, dict[str, float]]]:
    """tests/system/test_boot.py twice: with an empty root cache (debootstrap included), then
    warm."""
    import json

    from tests.helpers.container import CACHE

    runs = []
    for label, cache in (("first run (empty cache)", work / "boot-cache"),
                         ("cached root", CACHE)):
        env = {**os.environ, "TIEPDON_BOOT_CACHE": str(cache)}
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(ROOT / "tests" / "system" / "test_boot.py")], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=3600, check=False)
        if p.returncode != 0:
            raise RuntimeError(p.stdout[-3000:])
        runs.append((label, json.loads((cache / "times.json").read_text())))
    return runs


def main() -> int:
    boot = "--boot" in sys.argv[1:]
    work = Path(tempfile.mkdtemp(prefix="tiepdon-bench-ops-", dir="/var/tmp"))
    try:
        runs = boot_runs(work) if boot else []
        rows = daemon_costs(work)
        fsynced, verify_s, size = audit_costs(work, 1_000_000)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"machine: {machine()}")
    print(f"systemd-analyze security --offline=true systemd/tiepdon.service: {exposure()}")
    print("| tiepdon serve | RSS MB | CPU % of one core |")
    print("|---|---|---|")
    for label, rss, cpu in rows:
        print(f"| {label} | {rss:.0f} | {cpu:.1f} |")
    print(f"audit: {fsynced:.0f} appends/s with fsync each; verify of 1,000,000 records "
          f"{verify_s:.1f} s ({size / 1e6:.0f} MB)")
    if runs:
        print("| boot test (systemd-nspawn, Debian 12) | whole test s | install s | boot to "
              "READY s | watchdog restart s | upgrade s | RSS under the sandbox MiB |")
        print("|---|---|---|---|---|---|---|")
        for label, t in runs:
            print(f"| {label} | {t['test_s']:.0f} | {t['install_s']:.0f} "
                  f"| {t['boot_s'] + t['ready_s']:.1f} | {t['watchdog_restart_s']:.1f} "
                  f"| {t['upgrade_s']:.0f} | {t.get('rss_mib', float('nan')):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
