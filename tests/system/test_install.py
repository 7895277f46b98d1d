"""The installer in a throw-away root, the units checked by systemd-analyze."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import ROOT

UNITS = ("tiepdon.service", "tiepdon-snapshot.service", "tiepdon-snapshot.timer")


def sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def analyze() -> str:
    path = shutil.which("systemd-analyze")
    assert path, "systemd-analyze missing (Debian's systemd package)"
    return path


def test_units_verify(analyze: str, tmp_path: Path) -> None:
    real = str(Path(sys.executable).parent / "tiepdon")
    for unit in UNITS:  # ExecStart must exist on this machine: point it at this checkout's
        text = (ROOT / "systemd" / unit).read_text().replace("/opt/tiepdon/venv/bin/tiepdon",
                                                              real)
        (tmp_path / unit).write_text(text)
    p = sh(analyze, "verify", *(str(tmp_path / u) for u in UNITS))
    assert p.returncode == 0, p.stderr


def test_daemon_unit_exposure_score(analyze: str) -> None:
    p = sh(analyze, "security", "--offline=true", str(ROOT / "systemd" / "tiepdon.service"))
    m = re.search(r"Overall exposure level for tiepdon.service: ([0-9.]+)", p.stdout + p.stderr)
    assert m, p.stdout + p.stderr
    assert float(m.group(1)) <= 1.4


def test_install_is_idempotent_and_uninstall_keeps_data(tmp_path: Path) -> None:
    root = tmp_path / "root"
    p = sh(str(ROOT / "scripts" / "install"), "--prefix", str(root), "--no-apt", "--no-venv")
    assert p.returncode == 0, p.stderr
    etc = root / "etc"
    for unit in UNITS:
        assert (etc / "systemd" / "system" / unit).is_file()
    # enabled: the links point into the root (absolute inside it), so test the links
    assert (etc / "systemd" / "system" / "multi-user.target.wants" /
            "tiepdon.service").is_symlink()
    assert (etc / "systemd" / "system" / "timers.target.wants" /
            "tiepdon-snapshot.timer").is_symlink()
    assert "tiepdon:" in (etc / "passwd").read_text()
    key = etc / "tiepdon" / "credentials" / "terminal.key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    assert (etc / "tiepdon" / "credentials").stat().st_mode & 0o777 == 0o700
    assert len(list((root / "opt" / "tiepdon" / "wheels").glob("tiepdon-*.whl"))) == 1
    assert (etc / "polkit-1" / "rules.d" / "60-tiepdon-pcscd.rules").is_file()
    config = etc / "tiepdon" / "tiepdon.toml"
    config.write_text(config.read_text().replace('code = "00000"', 'code = "01C54"'))
    first_key = key.read_bytes()
    again = sh(str(ROOT / "scripts" / "install"), "--prefix", str(root), "--no-apt",
               "--no-venv")
    assert again.returncode == 0, again.stderr
    assert 'code = "01C54"' in config.read_text() and key.read_bytes() == first_key
    (root / "var" / "lib" / "tiepdon" / "journal.db").write_bytes(b"x")
    gone = sh(str(ROOT / "scripts" / "uninstall"), "--prefix", str(root))
    assert gone.returncode == 0, gone.stderr
    assert not (etc / "systemd" / "system" / "tiepdon.service").exists()
    assert not (root / "opt" / "tiepdon").exists()
    assert config.exists() and (root / "var" / "lib" / "tiepdon" / "journal.db").exists()
    purge = sh(str(ROOT / "scripts" / "uninstall"), "--prefix", str(root), "--purge")
    assert purge.returncode == 0 and not (etc / "tiepdon").exists()


def test_unknown_option_is_refused(tmp_path: Path) -> None:
    p = sh(str(ROOT / "scripts" / "install"), "--bogus")
    assert p.returncode == 2 and "unknown option" in p.stderr
