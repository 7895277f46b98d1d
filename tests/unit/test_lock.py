"""The supply chain: every runtime dependency pinned with hashes, and installed that way."""

from __future__ import annotations

import re
import tomllib

from tests.helpers.paths import ROOT

LOCK = (ROOT / "requirements.lock").read_text()


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pins() -> dict[str, list[str]]:
    pins: dict[str, list[str]] = {}
    current = ""
    for line in LOCK.splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^ \\]+)", line)
        if m:
            current = m.group(1).lower().replace("_", "-")
            pins[current] = []
        elif "--hash=sha256:" in line and current:
            pins[current].append(line.split("sha256:")[1].strip(" \\"))
    return pins


def test_every_runtime_dependency_is_pinned_with_hashes() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = _pins()
    for requirement in declared:
        assert _name(requirement) in pins, requirement
    assert pins and all(hashes for hashes in pins.values())
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for hashes in pins.values() for h in hashes)
    assert "--find-links" not in LOCK and "--index-url" not in LOCK  # no machine's own index


def test_the_installer_and_setup_install_from_the_lock_with_hashes() -> None:
    for script in ("install", "setup"):
        text = (ROOT / "scripts" / script).read_text()
        assert "--require-hashes" in text and "requirements.lock" in text, script
    assert "scripts/lock" in LOCK  # the one command that regenerates it


def test_the_test_environment_runs_the_locked_versions() -> None:
    """scripts/setup installs the lock first: what the tests exercise is what a desk gets."""
    from importlib.metadata import version

    pins = {}
    for line in LOCK.splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^ \\]+)", line)
        if m:
            pins[m.group(1)] = m.group(2)
    for name in ("fastapi", "cryptography", "uvicorn", "pyscard", "zxing-cpp", "asn1crypto"):
        assert version(name) == pins[name], name
