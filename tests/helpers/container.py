"""A Debian 12 reception PC in a container, for the boot test and bench/ops.py.

A minimal Debian root made once with ``debootstrap`` and cached outside the checkout
(``TIEPDON_BOOT_CACHE``, default /var/cache/tiepdon-boot), copied for each run, booted with a
real systemd by ``systemd-nspawn -b``. The container shares the host's network, so the
registry simulator and the snapshot mirror on the host's loopback are reachable from it and the
daemon's port is reachable from the test; it gets the host's CA bundle and pip settings so it
reaches the package registries as the host does. The Debian mirror comes from the host's own
apt sources.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.helpers.paths import ROOT

# What `scripts/install` would apt-get (already there, so a run takes minutes, not tens),
# plus the test's own: curl, and the vpcd driver for the virtual card (never on a desk).
PACKAGES = ("systemd", "systemd-sysv", "dbus", "libpam-systemd", "python3", "python3-venv",
            "python3-dev", "gcc", "swig", "libpcsclite-dev", "libglib2.0-0", "pcscd",
            "libccid", "polkitd", "ca-certificates", "curl", "procps", "vsmartcard-vpcd")
CACHE = Path(os.environ.get("TIEPDON_BOOT_CACHE", "/var/cache/tiepdon-boot"))
HOST_FILES = ("/etc/pip.conf", "/etc/xdg/pip", "/opt/wheels", "/opt/pypi", "/opt/pypi-more",
              "/etc/ssl/certs")
PASSED_ENV = re.compile(r"^(PIP_|SSL_CERT|REQUESTS_CA_BUNDLE$|NIX_SSL)")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def unavailable() -> str | None:
    """Why this machine cannot boot the container, or None."""
    if os.geteuid() != 0:
        return "the boot test needs root (systemd-nspawn, debootstrap)"
    for tool in ("systemd-nspawn", "debootstrap", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (scripts/setup --test installs systemd-container and " \
                   "debootstrap)"
    if mirror() is None:
        return "no Debian mirror in the host's apt sources"
    if not Path("/sys/fs/cgroup").is_dir():
        return "no cgroup file system (systemd in a container needs one)"
    return None


def mirror() -> str | None:
    for source in sorted(Path("/etc/apt").glob("sources.list.d/*.sources")):
        found = re.search(r"^URIs:\s*(\S+)", source.read_text(), re.M)
        if found and "debian" in found.group(1) and "security" not in found.group(1):
            return found.group(1)
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        found = re.search(r"^deb\s+(\S+)\s+bookworm\s", legacy.read_text(), re.M)
        if found:
            return found.group(1)
    return None


def base_root(packages: tuple[str, ...] = PACKAGES) -> Path:
    """The cached Debian root for this package list, made when missing (about a minute)."""
    key = hashlib.sha256(" ".join(packages).encode()).hexdigest()[:12]
    root = CACHE / f"bookworm-{key}"
    if (root / "etc" / "os-release").exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    work = CACHE / f".making-{key}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    p = subprocess.run(["debootstrap", "--variant=minbase", "--include=" + ",".join(packages),
                        "bookworm", str(work), str(mirror())],
                       capture_output=True, text=True, timeout=1800, check=False)
    if p.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise RuntimeError("debootstrap failed: " + (p.stdout + p.stderr)[-2000:])
    work.rename(root)
    return root


def free_port(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def toml(doc: dict[str, dict[str, Any]]) -> str:
    """Settings as the hospital's IT person writes /etc/tiepdon/tiepdon.toml."""
    out = ["# /etc/tiepdon/tiepdon.toml, as the hospital's IT person wrote it"]
    for section, values in doc.items():
        out.append(f"\n[{section}]")
        for key, value in values.items():
            out.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    return "\n".join(out) + "\n"


def copy_checkout(dest: Path) -> None:
    """The tracked files, as a clone would have them (what an operator copies to the PC)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / name.decode()
        if source.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


class Container:
    """A copy of the cached root: run commands in it, boot it, look inside, power it off."""

    def __init__(self, workdir: Path, base: Path | None = None,
                 boot_args: tuple[str, ...] = ()) -> None:
        """A copy of ``base`` (default: the boot test's root); ``boot_args`` go to the booting
        nspawn (the fleet test's ``--machine=``, ``--network-bridge=``)."""
        self.root = workdir / "root"
        workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", "--reflink=auto", str(base or base_root()), str(self.root)],
                       check=True, timeout=600)
        self.boot_args = boot_args
        self.nspawn: subprocess.Popen[bytes] | None = None
        self.leader = 0
        self.console = workdir / "console.log"

    def _binds(self) -> list[str]:
        out = []
        for path in HOST_FILES:
            if Path(path).exists():
                out.append(f"--bind-ro={path}")
        cache = Path("/root/.cache/pip")
        cache.mkdir(parents=True, exist_ok=True)
        out.append(f"--bind={cache}")
        out += [f"--setenv={k}={v}" for k, v in os.environ.items() if PASSED_ENV.match(k)]
        return out

    def _env(self) -> list[str]:
        return ["env", "-i", f"PATH={PATH}", "LANG=C.UTF-8", "HOME=/root",
                *(f"{k}={v}" for k, v in os.environ.items() if PASSED_ENV.match(k))]

    def run(self, *cmd: str, stdin: str | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Inside the container: booted, through its namespaces; else a one-off nspawn."""
        if self.leader:
            args = ["nsenter", "-t", str(self.leader), "-a", "--", *self._env(), *cmd]
        else:
            args = ["systemd-nspawn", "--register=no", "--keep-unit", "-q", "--pipe",
                    "--resolv-conf=copy-host", "-D", str(self.root), *self._binds(), "--",
                    *self._env(), *cmd]
        return subprocess.run(args, input=stdin, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def boot(self, timeout: float = 120) -> float:
        """Boot; returns the seconds until systemd reported the boot finished."""
        t0 = time.monotonic()
        with self.console.open("wb") as log:
            self.nspawn = subprocess.Popen(
                ["systemd-nspawn", "--register=no", "--keep-unit", "--console=passive",
                 "--resolv-conf=copy-host", "-D", str(self.root), *self._binds(),
                 *self.boot_args, "-b"],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self.leader:
            if self.nspawn.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the container did not start: " + self.console.read_text(
                    errors="replace")[-2000:])
            children = Path(f"/proc/{self.nspawn.pid}/task/{self.nspawn.pid}/children")
            for pid in children.read_text().split() if children.exists() else []:
                with contextlib.suppress(OSError):
                    if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                        self.leader = int(pid)
            time.sleep(0.05)
        while True:  # the container's systemd may not have its bus yet: ask again
            state = self.run("systemctl", "is-system-running", "--wait",
                             timeout=max(1.0, deadline - time.monotonic()))
            if state.stdout.strip() in ("running", "degraded"):
                return time.monotonic() - t0
            if time.monotonic() > deadline:
                raise RuntimeError(f"boot ended {state.stdout.strip()!r}: "
                                   f"{state.stderr[-500:]}")
            time.sleep(0.1)

    def systemctl(self, *args: str) -> str:
        return self.run("systemctl", *args).stdout.strip()

    def wait_for(self, unit: str, state: str, timeout: float = 90) -> float:
        t0 = time.monotonic()
        while self.systemctl("is-active", unit) != state:
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"{unit} not {state}: " + self.run(
                    "journalctl", "-u", unit, "--no-pager", "-n", "30").stdout)
            time.sleep(0.1)
        return time.monotonic() - t0

    def main_pid(self, unit: str = "tiepdon.service") -> int:
        """The unit's main process, as the host sees it (the container shares the host's
        PID numbers through its namespace: translate through /proc/<pid>/status NSpid)."""
        inner = int(self.systemctl("show", "-p", "MainPID", "--value", unit))
        for status in Path("/proc").glob("[0-9]*/status"):
            with contextlib.suppress(OSError):
                text = status.read_text()
                found = re.search(r"^NSpid:\s+(\d+)\s+(\d+)$", text, re.M)
                if found and int(found.group(2)) == inner and self._ours(int(found.group(1))):
                    return int(found.group(1))
        raise AssertionError(f"no host PID for {unit}'s {inner}")

    def _ours(self, pid: int) -> bool:
        with contextlib.suppress(OSError):
            return os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(
                f"/proc/{self.leader}/ns/pid")
        return False

    def poweroff(self) -> None:
        if self.nspawn is None or self.nspawn.poll() is not None:
            return
        self.nspawn.send_signal(signal.SIGTERM)  # nspawn asks the container's systemd
        try:
            self.nspawn.wait(60)
        except subprocess.TimeoutExpired:
            self.nspawn.kill()
            self.nspawn.wait(10)
        self.leader = 0

    def remove(self) -> None:
        self.poweroff()
        shutil.rmtree(self.root, ignore_errors=True)
