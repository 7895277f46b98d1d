"""The fleet as a hospital runs it (issue 25): a central server with Debian's own engines
(prometheus, prometheus-alertmanager, systemd-journal-remote, nginx-light serving the snapshot
mirror) and three desks with the installed unit, each a container booted by
``systemd-nspawn -b`` on a bridge this test makes (10.250.0.0/24), the registry simulator on the
host's end of the bridge. The shipped configuration in ``deploy/`` is what runs; the test only
shortens intervals (scrape, rule ``for:``, probes, the audit self-check), replaces the opening
hours with "always", names the log server by its address, and gives
the journals room of their own (the log server's files on a tmpfs, the desks' journald told how
much of the shared disk to keep free), so a host disk filled by the containers drops nothing.

Checked: verifications at every desk reach the central journal, one contiguous chain a desk,
the same patient with the same fingerprint at every desk (one desk's terminal key ends in a
newline, as random bytes sometimes do); the central link cut and a desk rebooted meanwhile,
every record arrives once the link is back; a rolled-back snapshot on the
mirror is refused by every desk and SnapshotFetchFailing fires; the gateway hanging, desks
answer offline and one RegistryDown fires for the facility, then resolves; pcscd stopped →
ChipReaderGone; a byte flipped in an audit file → AuditChainBroken. The journal travels over
TLS both ways with a facility CA the test makes, the keys root's own (0600) and handed to the
services by the shipped ``tls.conf`` drop-ins, as a facility installs them.

Skipped, with the reason, where the machine cannot run containers; never silently passed.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from readers.doubles.vcard import demo_card
from terminal.demo import demo_config
from terminal.offline import FETCH_STATUS
from terminal.server import BackgroundServer, start_background
from tests.helpers import container as ct
from tests.helpers.paths import ROOT
from tests.helpers.samples import TODAY
from tests.helpers.tlspki import FacilityCa
from verify.adapters.cache import build
from verify.model import VN_TZ
from verify.simulator.registry_sim import (
    DEMO_FACILITY,
    DEMO_PASSWORD,
    create_sim_app,
    open_registry,
    seed_records,
)
from verify.snapshot import CSV_COLUMNS, public_key_text, records_from_csv

# The central server's engines, as the README's "Many desks" table installs them.
CENTRAL = ("systemd", "systemd-sysv", "dbus", "ca-certificates", "curl", "procps", "prometheus",
           "prometheus-alertmanager", "systemd-journal-remote", "nginx-light")
BRIDGE = "tdfleet0"
NET = "10.250.0"
HOST_IP = f"{NET}.1"
CENTRAL_IP = f"{NET}.2"
DESKS = ("quay-1", "quay-2", "cap-cuu")
METRICS_PORT = 9765
QR = "001088004321||Nguyễn Tiến Đạt|29031988|Nam|Hà Nội|01072021"
PATIENT_ID = "001088004321"
REASON = ct.unavailable() or (None if shutil.which("ip") and shutil.which("journalctl")
                              else "iproute2 (ip) and journalctl are needed for the fleet test")
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")
TIMES: dict[str, float] = {}


@dataclass
class Desk:
    name: str  # audit.desk, the inventory's desk label
    ip: str
    box: ct.Container
    machine: str

    def verify(self) -> dict[str, Any]:
        """A QR verification through the installed daemon, from the desk itself."""
        p = self.box.run("curl", "-sS", "--max-time", "60", "-H",
                         "content-type: application/json", "-d", json.dumps({"qr": QR}),
                         "http://127.0.0.1:8765/api/v1/verify", timeout=90)
        assert p.returncode == 0, p.stderr
        body: dict[str, Any] = json.loads(p.stdout)
        return body

    def last_seq(self) -> int:
        """The newest audit record's number, from the desk's own files."""
        seqs = [json.loads(line)["seq"]
                for path in (self.box.root / "var/lib/tiepdon/audit").glob("audit-*.jsonl")
                for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return max(seqs, default=0)

    def boot(self) -> None:
        self.box.boot(timeout=180)
        self.box.wait_for("tiepdon.service", "active", timeout=120)


@dataclass
class Fleet:
    central: ct.Container
    desks: list[Desk]
    sim: BackgroundServer
    publish: Callable[[int], None]
    work: Path


def wait_until(what: str, check: Callable[[], Any], timeout: float = 120,
               every: float = 1.0) -> Any:
    """``check()``'s first truthy answer within ``timeout`` seconds; its exceptions are retried
    (a service still starting), the last one reported."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = value
        except (httpx.HTTPError, AssertionError, ValueError, KeyError, OSError) as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})")
        time.sleep(every)


def ip(*args: str, check: bool = True) -> None:
    p = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and p.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {p.stderr.strip()}")


def snapshot_csv(today: Any) -> list[str]:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS))
    writer.writeheader()
    for row in seed_records(today):
        writer.writerow({k: row.get(k, "") for k in CSV_COLUMNS})
    return buf.getvalue().splitlines(keepends=True)


def shortened_rules(text: str) -> str:
    """The shipped rules with the test's clock: `for:` in seconds, always opening hours."""
    text = re.sub(r"for: \d+m", lambda m: "for: 0m" if m.group(0) == "for: 0m" else "for: 5s",
                  text)
    start = text.index("      - record: tiepdon:opening_hours")
    end = text.index("  - name: tiepdon-fleet")
    return (text[:start] + "      - record: tiepdon:opening_hours\n        expr: vector(1)\n\n"
            + text[end:])


# The containers see the host's /etc/ssl/certs (bound over theirs for the package proxy's CA):
# the public certificates go to a folder of their own, and the shipped configuration is pointed
# there — the one change to it besides the URL. Keys stay where it names them.
CERTS = "/etc/ssl/facility"


def shipped_tls_conf(name: str) -> str:
    return (ROOT / "deploy/journal" / name).read_text().replace("/etc/ssl/certs/", CERTS + "/")


def put_tls(root: Path, name: str, ca: FacilityCa, key_cert: tuple[bytes, bytes]) -> None:
    """The facility CA and one key pair where the shipped journal configuration names them:
    the key root's own, 0600 in a 0700 folder (the services get it through LoadCredential)."""
    key, cert = key_cert
    certs, private = root / CERTS.lstrip("/"), root / "etc/ssl/private"
    certs.mkdir(parents=True, exist_ok=True)
    private.mkdir(mode=0o700, parents=True, exist_ok=True)
    private.chmod(0o700)
    (certs / "facility-ca.pem").write_bytes(ca.ca_pem())
    (certs / f"{name}.pem").write_bytes(cert)
    (private / f"{name}.pem").write_bytes(key)
    (private / f"{name}.pem").chmod(0o600)


def configure_central(box: ct.Container, token: str, ca: FacilityCa) -> None:
    r = box.root
    # debootstrap writes no /etc/hosts: Prometheus would ask DNS for "localhost" (its
    # Alertmanager) and fail, as no installed server would.
    (r / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n")
    prom = (ROOT / "deploy/prometheus/prometheus.yml").read_text()
    prom = prom.replace("scrape_interval: 30s", "scrape_interval: 2s").replace(
        "evaluation_interval: 30s", "evaluation_interval: 2s").replace(
        "refresh_interval: 1m", "refresh_interval: 5s")
    (r / "etc/prometheus/prometheus.yml").write_text(prom)
    tiepdon = r / "etc/prometheus/tiepdon"
    (tiepdon / "desks").mkdir(parents=True)
    (tiepdon / "rules.yml").write_text(shortened_rules(
        (ROOT / "deploy/prometheus/rules.yml").read_text()))
    (tiepdon / "desks" / f"{DEMO_FACILITY}.yml").write_text("".join(
        f'- targets: ["{NET}.{11 + i}:{METRICS_PORT}"]\n'
        f'  labels: {{desk: "{DEMO_FACILITY}-{name}", facility: "{DEMO_FACILITY}"}}\n'
        for i, name in enumerate(DESKS)))
    (tiepdon / "metrics.token").write_text(token)
    shutil.copy(ROOT / "deploy/alertmanager/alertmanager.yml", r / "etc/prometheus/")
    # The log server: the shipped settings and drop-in, its certificate from the facility CA.
    conf = r / "etc/systemd/journal-remote.conf.d"
    conf.mkdir(parents=True)
    (conf / "tiepdon.conf").write_text(shipped_tls_conf("journal-remote.conf"))
    shutil.copytree(ROOT / "deploy/journal/systemd-journal-remote.service.d",
                    r / "etc/systemd/system/systemd-journal-remote.service.d")
    put_tls(r, "journal-remote", ca, ca.issue("logs.bv.local", server_ip=CENTRAL_IP))
    (r / "etc/nginx/sites-enabled/default").unlink()
    shutil.copy(ROOT / "deploy/nginx/snapshot-publisher.conf",
                r / "etc/nginx/conf.d/tiepdon-snapshots.conf")
    (r / "srv/tiepdon/snapshots").mkdir(parents=True)
    p = box.run("systemctl", "enable", "systemd-journal-remote.socket")
    assert p.returncode == 0, p.stderr


def install_desk(work: Path, central_root: Path) -> ct.Container:
    """The boot test's root, the log uploader added, `scripts/install` run: one install, copied
    to every desk."""
    box = ct.Container(work)
    archives = central_root / "var/cache/apt/archives"
    debs = [next(archives.glob(f"{name}_*.deb")) for name in
            ("libmicrohttpd12", "systemd-journal-remote")]
    for deb in debs:
        shutil.copy(deb, box.root / "root")
    p = box.run("dpkg", "-i", *(f"/root/{d.name}" for d in debs))
    assert p.returncode == 0, p.stdout[-1000:] + p.stderr[-2000:]
    ct.copy_checkout(box.root / "root" / "tiepdon")
    t0 = time.monotonic()
    p = box.run("/root/tiepdon/scripts/install", timeout=1800)
    TIMES["install_s"] = time.monotonic() - t0
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    r = box.root
    # The uploader: the shipped settings (the log server named by its address), the shipped
    # drop-ins (restart, TLS key), and the test's shorter waits so the outage scenario takes
    # seconds. Each desk's key and certificate: configure_desk.
    upload = shipped_tls_conf("journal-upload.conf")
    upload = "\n".join(
        f"URL=https://{CENTRAL_IP}:19532" if line.startswith("URL=") else
        "NetworkTimeoutSec=10" if line.startswith("NetworkTimeoutSec=") else line
        for line in upload.splitlines())
    (r / "etc/systemd/journal-upload.conf.d").mkdir(parents=True)
    (r / "etc/systemd/journal-upload.conf.d/tiepdon.conf").write_text(upload + "\n")
    shutil.copytree(ROOT / "deploy/journal/systemd-journal-upload.service.d",
                    r / "etc/systemd/system/systemd-journal-upload.service.d")
    (r / "etc/systemd/system/systemd-journal-upload.service.d/test-restart.conf").write_text(
        "[Service]\nRestartSec=2s\n")
    dropin = r / "etc/systemd/system/tiepdon.service.d"
    dropin.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "deploy/desk/metrics.conf", dropin)
    shutil.copy(ROOT / "deploy/desk/subject-key.conf", dropin)
    p = box.run("systemctl", "enable", "systemd-journal-upload.service",
                "systemd-networkd.service", "systemd-networkd-wait-online.service")
    assert p.returncode == 0, p.stderr
    return box


def configure_desk(desk: Desk, doc: dict[str, dict[str, Any]], ca: FacilityCa) -> None:
    r = desk.box.root
    put_tls(r, "journal-upload", ca, ca.issue(desk.name))
    (r / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
    # 32 random bytes as `scripts/install` makes them; the last desk's always end in a newline
    # (one desk in twenty does by chance: its central chain could not be checked, CI once).
    key = secrets.token_bytes(32)
    if desk.name.endswith(DESKS[-1]):
        key = key[:31] + b"\n"
    (r / "etc/tiepdon/credentials/terminal.key").write_bytes(key)
    doc = json.loads(json.dumps(doc))
    doc["audit"]["desk"] = desk.name
    doc["metrics"] = {"listen": f"{desk.ip}:{METRICS_PORT}"}
    (r / "etc/tiepdon/tiepdon.toml").write_text(ct.toml(doc), encoding="utf-8")
    # journald keeps 15 % of the disk (at most 4 GiB) free by default, measured on the host's
    # disk here, which four container roots fill: below it, entries are dropped. A desk's own
    # disk is its own.
    (r / "etc/systemd/journald.conf.d").mkdir(parents=True, exist_ok=True)
    (r / "etc/systemd/journald.conf.d/test-disk.conf").write_text(
        "[Journal]\nSystemKeepFree=32M\nSystemMaxUse=256M\n")
    (r / "etc/systemd/network/50-host0.network").write_text(
        f"[Match]\nName=host0\n\n[Network]\nAddress={desk.ip}/24\nLinkLocalAddressing=no\n"
        "IPv6AcceptRA=no\n")


def journal_audit(command: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`tiepdon audit verify|find` on the central copy, as the auditor runs it."""
    return subprocess.run([sys.executable, "-m", "terminal.cli", "audit", command, *args],
                          capture_output=True, text=True, timeout=120, check=False,
                          cwd=ROOT, env={"PATH": ct.PATH, "PYTHONPATH": str(ROOT),
                                         "LANG": "C.UTF-8"})


def central_chain(fleet: Fleet, desk: Desk) -> dict[str, Any]:
    key = desk.box.root / "etc/tiepdon/credentials/terminal.key"
    p = journal_audit("verify", "--journal-dir",
                      str(fleet.central.root / "var/log/journal/remote"),
                      "--desk", desk.name, "--key", str(key))
    out: dict[str, Any] = json.loads(p.stdout) if p.stdout.strip() else {"ok": False}
    out["stderr"] = p.stderr.strip()
    return out


def arrived(fleet: Fleet, desk: Desk) -> dict[str, Any] | None:
    """The desk's chain in the central journal, when it is whole up to the desk's newest."""
    chain = central_chain(fleet, desk)
    if chain["ok"] and chain["first_seq"] == 1 and chain["last_seq"] == desk.last_seq() \
            and chain["records"] == chain["last_seq"]:
        return chain
    return None


def shipping(fleet: Fleet, desk: Desk) -> str:
    """What a failed wait for the central copy reports: the chain as the auditor sees it, the
    desk's newest record, its uploader, and the central files."""
    chain = central_chain(fleet, desk)
    upload = desk.box.run("systemctl", "status", "--no-pager", "-n", "15",
                          "systemd-journal-upload.service", timeout=30)
    host = subprocess.run(["df", "-h", str(fleet.work)], capture_output=True, text=True,
                          timeout=30, check=False)
    remote = fleet.central.run("sh", "-c", "ls -la /var/log/journal/remote; "
                               "df -h /var/log/journal/remote; "
                               "systemctl status --no-pager -n 15 "
                               "systemd-journal-remote.service", timeout=30)
    return (f"chain {chain}; desk's newest record {desk.last_seq()}\n"
            f"-- the desk's uploader:\n{upload.stdout}{upload.stderr}\n"
            f"-- the log server:\n{remote.stdout}{remote.stderr}\n"
            f"-- the host's disk:\n{host.stdout}")


def wait_shipped(fleet: Fleet, desk: Desk, what: str, timeout: float) -> dict[str, Any]:
    """The desk's whole chain in the central journal, or a failure that says why not."""
    try:
        chain: dict[str, Any] = wait_until(what, functools.partial(arrived, fleet, desk),
                                           timeout=timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{shipping(fleet, desk)}") from None
    return chain


def prometheus(query: str) -> list[dict[str, Any]]:
    r = httpx.get(f"http://{CENTRAL_IP}:9090/api/v1/query", params={"query": query}, timeout=10)
    r.raise_for_status()
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    return result


def firing(name: str) -> list[dict[str, str]]:
    """The labels of Prometheus' firing alerts of that name."""
    r = httpx.get(f"http://{CENTRAL_IP}:9090/api/v1/alerts", timeout=10)
    r.raise_for_status()
    return [a["labels"] for a in r.json()["data"]["alerts"]
            if a["labels"]["alertname"] == name and a["state"] == "firing"]


def alertmanager(name: str) -> list[dict[str, Any]]:
    r = httpx.get(f"http://{CENTRAL_IP}:9093/api/v2/alerts",
                  params={"filter": f'alertname="{name}"', "active": "true",
                          "silenced": "false", "inhibited": "true"}, timeout=10)
    r.raise_for_status()
    alerts: list[dict[str, Any]] = r.json()
    return alerts


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    started = time.monotonic()
    work = tmp_path_factory.mktemp("fleet", numbered=True)
    cached = any(ct.CACHE.glob("bookworm-*/etc/os-release"))
    boxes: list[ct.Container] = []
    mounted: list[Path] = []
    sim: BackgroundServer | None = None
    ip("link", "del", BRIDGE, check=False)  # a previous run's, killed before its teardown
    try:
        # Both cached roots, made in parallel when missing.
        t0 = time.monotonic()
        roots: dict[str, Path] = {}
        threads = [threading.Thread(target=lambda k=k, p=p: roots.__setitem__(k, ct.base_root(p)))
                   for k, p in (("central", CENTRAL), ("desk", ct.PACKAGES))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(roots) == {"central", "desk"}, "debootstrap failed (see the log above)"
        TIMES["roots_s"] = time.monotonic() - t0

        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{HOST_IP}/24", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        conn = open_registry(str(work / "registry.sqlite"), today=TODAY)
        sim = start_background(create_sim_app(conn, None, today=lambda: TODAY, seed=7),
                               host=HOST_IP)

        # The publisher's key, and the snapshot each version publishes.
        signing = Ed25519PrivateKey.generate()
        reading = secrets.token_bytes(32)
        records = list(records_from_csv(snapshot_csv(datetime.now(VN_TZ).date())))
        central = ct.Container(work / "central", base=roots["central"],
                               boot_args=("--machine=tdf-central", f"--network-bridge={BRIDGE}",
                                          "--link-journal=no"))
        boxes.append(central)
        mirror = central.root / "srv/tiepdon/snapshots"

        built: dict[int, Path] = {}

        def publish(version: int) -> None:
            """Write a snapshot to a new folder and rename it over the old (the README). A
            version once built is published again as it was: a publisher never reuses a
            version number for other content (desks refuse that)."""
            out = built.get(version)
            if out is None:
                created = datetime.now(UTC) - timedelta(minutes=10 - version)
                out = work / f"snapshot-{version}-{secrets.token_hex(3)}"
                build(records, out, signing_key=signing, key_id="demo", reading_key=reading,
                      version=version, created=created, expires=created + timedelta(days=7))
                out.chmod(0o755)
                for f in out.iterdir():
                    f.chmod(0o644)
                built[version] = out
            staged = mirror / f".{out.name}"
            shutil.copytree(out, staged)
            old = mirror / DEMO_FACILITY
            if old.exists():
                old.rename(mirror / f".old-{secrets.token_hex(3)}")
            staged.rename(old)

        token = secrets.token_hex(32)
        facility_ca = FacilityCa.create()
        configure_central(central, token, facility_ca)
        publish(2)

        t0 = time.monotonic()
        installed = install_desk(work / "installed", roots["central"])
        etc = installed.root / "etc/tiepdon"
        _card, pki = demo_card(now=datetime.now(UTC))
        (etc / "credentials/registry.password").write_text(DEMO_PASSWORD)
        (etc / "credentials/registry.password").chmod(0o600)
        (etc / "credentials/metrics.token").write_text(token)
        (etc / "credentials/metrics.token").chmod(0o600)
        (etc / "credentials/audit.subject_key").write_text(secrets.token_hex(32))
        (etc / "credentials/audit.subject_key").chmod(0o600)
        (etc / "credentials/his.webhook_secret").write_text(secrets.token_hex(32))
        (etc / "csca").mkdir()
        (etc / "csca/test.pem").write_bytes(pki.csca_pem())
        (etc / "reading.key").write_text(reading.hex())
        installed.run("sh", "-c", "chgrp tiepdon /etc/tiepdon/reading.key && "
                                  "chmod 0640 /etc/tiepdon/reading.key")
        doc = demo_config(sim.url, Path("/var/lib/tiepdon"))
        del doc["registry"]["password"]  # a systemd credential, never in the file
        doc["registry"].update(timeout_seconds=3, probe_seconds=2)
        doc["data"] = {}
        doc["audit"]["check_minutes"] = 0.05
        doc["chip"] = {"csca_dir": "/etc/tiepdon/csca"}
        doc["cache"] = {"url": f"http://{CENTRAL_IP}/snapshots/{DEMO_FACILITY}/",
                        "trusted_keys": [f"demo:{public_key_text(signing.public_key())}"],
                        "reading_key_file": "/etc/tiepdon/reading.key"}
        desks = []
        for i, name in enumerate(DESKS):
            machine = f"tdf-{name}"
            box = ct.Container(work / name, base=installed.root,
                               boot_args=(f"--machine={machine}", f"--network-bridge={BRIDGE}",
                                          "--link-journal=no"))
            boxes.append(box)
            desk = Desk(f"{DEMO_FACILITY}-{name}", f"{NET}.{11 + i}", box, machine)
            configure_desk(desk, doc, facility_ca)
            desks.append(desk)
        installed.remove()
        TIMES["desks_s"] = time.monotonic() - t0

        # The log server's files on a disk of their own, as on the facility's server: its
        # journal-remote (systemd 252) keeps 15 % of its disk free, at most 4 GiB, and has no
        # setting for it; the host's disk, shared with the containers, may have less.
        logs = central.root / "var/log/journal/remote"
        logs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512m,mode=0755", "tdfleet-logs",
                        str(logs)], check=True, timeout=30)
        mounted.append(logs)
        t0 = time.monotonic()
        central.boot(timeout=180)
        ip("link", "set", "vb-tdf-central", "up")
        for args in (("addr", "add", f"{CENTRAL_IP}/24", "dev", "host0"),
                     ("link", "set", "host0", "up")):
            subprocess.run(["nsenter", "-t", str(central.leader), "-n", "ip", *args],
                           check=True, timeout=30)
        for desk in desks:
            desk.boot()
        TIMES["boot_s"] = time.monotonic() - t0
        yield Fleet(central, desks, sim, publish, work)
    finally:
        for box in reversed(boxes):
            with contextlib.suppress(Exception):
                box.poweroff()
        for path in mounted:
            subprocess.run(["umount", "--lazy", str(path)], check=False, timeout=30)
        for box in reversed(boxes):
            with contextlib.suppress(Exception):
                box.remove()
        if sim is not None:
            sim.stop()
        ip("link", "del", BRIDGE, check=False)
        TIMES["total_s"] = time.monotonic() - started
        TIMES["cached_roots"] = float(cached)
        (ct.CACHE / "fleet-times.json").write_text(json.dumps(TIMES))
        print("\nfleet times: " + "  ".join(f"{k}={v:.1f}" for k, v in TIMES.items()))


def test_the_fleet_is_up_and_every_desk_has_the_snapshot(fleet: Fleet) -> None:
    for desk in fleet.desks:
        p = desk.box.run("systemctl", "start", "tiepdon-snapshot.service", timeout=120)
        assert p.returncode == 0, desk.box.run("journalctl", "-u", "tiepdon-snapshot",
                                               "--no-pager", "-n", "20").stdout
    t0 = time.monotonic()
    query = 'tiepdon_snapshot_version == 2 and on(instance) up{job="tiepdon"} == 1'
    wait_until("Prometheus scrapes every desk with the installed snapshot",
               lambda: len(prometheus(query)) == len(fleet.desks), timeout=120)
    TIMES["scraped_s"] = time.monotonic() - t0
    labels = {(s["metric"]["desk"], s["metric"]["facility"])
              for s in prometheus("tiepdon_snapshot_fetch_ok == 1")}
    assert labels == {(d.name, DEMO_FACILITY) for d in fleet.desks}


def test_verifications_reach_the_central_journal(fleet: Fleet) -> None:
    for desk in fleet.desks:
        for _ in range(2):
            answer = desk.verify()
            assert answer["status"] == "eligible", answer
    t0 = time.monotonic()
    for desk in fleet.desks:
        chain = wait_shipped(fleet, desk, f"{desk.name}'s chain whole in the central journal",
                             timeout=120)
        assert chain["macs_checked"] and chain["last_seq"] >= 2, chain
    TIMES["shipped_s"] = time.monotonic() - t0
    # "Who looked at this person": the same fingerprint at every desk (the facility's key).
    key = fleet.desks[0].box.root / "etc/tiepdon/credentials/audit.subject_key"
    p = journal_audit("find", "--journal-dir", str(fleet.central.root / "var/log/journal/remote"),
                      "--id", PATIENT_ID, "--subject-key", str(key))
    assert p.returncode == 0, p.stderr
    hits = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    assert {h["desk"] for h in hits} == {d.name for d in fleet.desks}, hits
    assert len({h["subject"] for h in hits}) == 1
    assert len(hits) >= 2 * len(fleet.desks)


def test_records_made_while_the_central_link_is_cut_arrive_after_it_returns(
        fleet: Fleet) -> None:
    rebooted = fleet.desks[1]
    ip("link", "set", "vb-tdf-central", "down")
    try:
        for desk in fleet.desks:
            assert desk.verify()["status"] == "eligible"
        t0 = time.monotonic()
        rebooted.box.poweroff()
        rebooted.boot()
        TIMES["desk_reboot_s"] = time.monotonic() - t0
        assert rebooted.verify()["status"] == "eligible"
        for desk in fleet.desks:  # the outage is real: the central copy lags
            assert arrived(fleet, desk) is None, desk.name
    finally:
        ip("link", "set", "vb-tdf-central", "up")
    t0 = time.monotonic()
    for desk in fleet.desks:
        wait_shipped(fleet, desk, f"{desk.name}'s records after the link returned",
                     timeout=180)
    TIMES["caught_up_s"] = time.monotonic() - t0


def test_a_rolled_back_snapshot_is_refused_everywhere(fleet: Fleet) -> None:
    fleet.publish(1)
    try:
        for desk in fleet.desks:
            p = desk.box.run("systemctl", "start", "tiepdon-snapshot.service", timeout=120)
            assert p.returncode != 0, desk.name
            status = json.loads((desk.box.root / "var/lib/tiepdon" / FETCH_STATUS).read_text())
            assert status["ok"] is False and status["version"] in (None, 1), status
        alerts = wait_until("SnapshotFetchFailing on every desk", lambda: len(
            firing("SnapshotFetchFailing")) == len(fleet.desks) and firing(
            "SnapshotFetchFailing"), timeout=90)
        assert {a["desk"] for a in alerts} == {d.name for d in fleet.desks}
        # The installed snapshot stayed.
        assert len(prometheus("tiepdon_snapshot_version == 2")) == len(fleet.desks)
    finally:
        fleet.publish(2)
    for desk in fleet.desks:
        desk.box.run("systemctl", "start", "tiepdon-snapshot.service", timeout=120)
    wait_until("SnapshotFetchFailing resolved", lambda: not firing("SnapshotFetchFailing"),
               timeout=90)


def test_the_gateway_hanging_is_one_registry_down_for_the_facility(fleet: Fleet) -> None:
    control = f"{fleet.sim.url}/sim/control"
    httpx.post(control, json={"fault": "hang"}, timeout=10).raise_for_status()
    try:
        answer = fleet.desks[0].verify()
        # What the page shows as "NGOẠI TUYẾN — dữ liệu lúc …": the snapshot's answer.
        assert answer["source"] == "cache" and answer["data_as_of"], answer
        assert answer["status"] == "eligible", answer
        alerts = wait_until("RegistryDown", lambda: firing("RegistryDown"), timeout=90)
        assert alerts == [alerts[0]] and alerts[0]["facility"] == DEMO_FACILITY, alerts
        assert "desk" not in alerts[0]
        notified = wait_until("RegistryDown in Alertmanager",
                              lambda: alertmanager("RegistryDown"), timeout=60)
        assert len(notified) == 1, notified
    finally:
        httpx.post(control, json={"fault": "none"}, timeout=10).raise_for_status()
    wait_until("RegistryDown resolved", lambda: not firing("RegistryDown"), timeout=90)


def test_pcscd_stopped_is_chip_reader_gone(fleet: Fleet) -> None:
    desk = fleet.desks[0]
    wait_until("the desk's reader seen", lambda: prometheus(
        f'tiepdon_chip_reader_up{{desk="{desk.name}"}} == 1'), timeout=90)
    desk.box.run("systemctl", "stop", "pcscd.socket", "pcscd.service")
    try:
        alerts = wait_until("ChipReaderGone", lambda: firing("ChipReaderGone"), timeout=90)
        assert [a["desk"] for a in alerts] == [desk.name], alerts
    finally:
        desk.box.run("systemctl", "start", "pcscd.socket")


def test_a_flipped_byte_in_an_audit_file_is_audit_chain_broken(fleet: Fleet) -> None:
    desk = fleet.desks[2]
    path = sorted((desk.box.root / "var/lib/tiepdon/audit").glob("audit-*.jsonl"))[0]
    data = bytearray(path.read_bytes())
    at = data.index(b'"subject": "') + len(b'"subject": "') + 3  # a hex digit of a fingerprint
    data[at] = ord("0") if data[at] != ord("0") else ord("1")
    path.write_bytes(bytes(data))
    alerts = wait_until("AuditChainBroken", lambda: firing("AuditChainBroken"), timeout=90)
    assert [a["desk"] for a in alerts] == [desk.name], alerts
