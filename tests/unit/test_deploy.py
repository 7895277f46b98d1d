"""The central engines' shipped configuration (``deploy/``), checked by the engines' own tools
when they are installed (``scripts/setup --test`` installs them, their daemons not started):
``promtool test rules`` runs the alert rules' unit tests, ``promtool check config`` the scrape
config, ``amtool check-config`` the routing, ``nginx -t`` the snapshot mirror and cache. And the
rules read only gauges the daemon exports; the systemd drop-ins say what the README says."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.paths import ROOT

DEPLOY = ROOT / "deploy"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (scripts/setup --test installs it)")
    return path


def check(argv: list[str], cwd: Path | None = None) -> str:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd, check=False)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p.stdout + p.stderr


def test_the_alert_rules_pass_their_unit_tests() -> None:
    out = check([tool("promtool"), "test", "rules", "rules_test.yml"],
                cwd=DEPLOY / "prometheus")
    assert "SUCCESS" in out


def test_the_rules_and_the_scrape_config_load(tmp_path: Path) -> None:
    """Laid out as /etc/prometheus is: prometheus.yml beside tiepdon/{rules.yml, desks/}."""
    promtool = tool("promtool")
    out = check([promtool, "check", "rules", str(DEPLOY / "prometheus" / "rules.yml")])
    assert "10 rules found" in out
    etc = tmp_path / "prometheus"
    (etc / "tiepdon").mkdir(parents=True)
    shutil.copy(DEPLOY / "prometheus" / "prometheus.yml", etc)
    shutil.copy(DEPLOY / "prometheus" / "rules.yml", etc / "tiepdon")
    shutil.copytree(DEPLOY / "prometheus" / "desks", etc / "tiepdon" / "desks")
    (etc / "tiepdon" / "metrics.token").write_text("f3" * 32 + "\n")
    out = check([promtool, "check", "config", str(etc / "prometheus.yml")])
    assert "SUCCESS" in out and "10 rules found" in out


def test_every_alert_is_tested_and_reads_only_what_exists() -> None:
    rules = (DEPLOY / "prometheus" / "rules.yml").read_text(encoding="utf-8")
    tests = (DEPLOY / "prometheus" / "rules_test.yml").read_text(encoding="utf-8")
    alerts = re.findall(r"- alert: (\w+)", rules)
    assert alerts == ["DeskDown", "RegistryDown", "SnapshotStale", "SnapshotFetchFailing",
                      "ChipReaderGone", "WebhookBacklog", "AuditChainBroken",
                      "LogShippingStopped", "ClockUnsynced"]
    for alert in alerts:
        assert f"alertname: {alert}\n" in tests, f"{alert} has no test"
    exported = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "terminal").glob("*.py"))
    for name in set(re.findall(r"\btiepdon_(\w+)", rules)):
        assert f'"{name}"' in exported, f"rules.yml reads tiepdon_{name}; the daemon has none"


def test_the_alert_routing_loads() -> None:
    out = check([tool("amtool"), "check-config", str(DEPLOY / "alertmanager" /
                                                     "alertmanager.yml")])
    assert "SUCCESS" in out


@pytest.mark.parametrize("conf", ["snapshot-publisher.conf", "snapshot-cache.conf"])
def test_the_nginx_mirror_and_cache_load(tmp_path: Path, conf: str) -> None:
    """``nginx -t`` in a throw-away prefix; the publisher's name points at loopback (nginx
    resolves upstreams at load) and the cache and logs at the temporary folder."""
    nginx = tool("nginx")
    text = (DEPLOY / "nginx" / conf).read_text(encoding="utf-8")
    text = (text.replace("snapshots.soyte.example:80", "127.0.0.1:9")
            .replace("/var/cache/nginx/", f"{tmp_path}/cache/")
            .replace("/var/log/nginx/", f"{tmp_path}/"))
    (tmp_path / conf).write_text(text, encoding="utf-8")
    (tmp_path / "cache").mkdir()
    mime = "include /etc/nginx/mime.types;" if Path("/etc/nginx/mime.types").exists() else ""
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ {mime} include {tmp_path / conf}; }}\n", encoding="utf-8")
    out = check([nginx, "-t", "-q", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
                 "-c", str(tmp_path / "nginx.conf")])
    assert "failed" not in out


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    return parser


def test_the_uploader_keeps_trying_through_an_outage() -> None:
    """The stock unit latches failed after quick restarts; the drop-in keeps it alive."""
    d = unit(DEPLOY / "journal" / "systemd-journal-upload.service.d" / "restart.conf")
    assert d["Unit"]["StartLimitIntervalSec"] == "0"
    assert d["Service"]["Restart"] == "always" and d["Service"]["RestartSec"]
    upload = unit(DEPLOY / "journal" / "journal-upload.conf")
    assert upload["Upload"]["URL"].startswith("https://")
    assert int(upload["Upload"]["NetworkTimeoutSec"]) > 0
    remote = unit(DEPLOY / "journal" / "journal-remote.conf")
    assert remote["Remote"]["SplitMode"] == "host"


def test_the_metrics_dropin_opens_the_listeners_port() -> None:
    d = unit(DEPLOY / "desk" / "metrics.conf")
    assert d["Service"]["SocketBindAllow"] == "tcp:9765"
    assert d["Service"]["LoadCredential"].startswith("metrics.token:")
    shipped = (ROOT / "systemd" / "tiepdon.service").read_text(encoding="utf-8")
    assert "SocketBindDeny=any" in shipped and "SocketBindAllow=tcp:9765" not in shipped
    desks = (DEPLOY / "prometheus" / "desks" / "01C54.yml").read_text(encoding="utf-8")
    assert ":9765" in desks
