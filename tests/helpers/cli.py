"""The ``tiepdon`` command run as scripts and IT staff run it: a real process per call."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from terminal.demo import demo_environment
from terminal.server import BackgroundServer

TIEPDON = str(Path(sys.executable).parent / "tiepdon")


def run(*args: str, env: dict[str, str] | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TIEPDON_")}
    return subprocess.run([TIEPDON, *args], capture_output=True, text=True, timeout=60,
                          env={**base, **(env or {})}, check=False, input=stdin or "")


def online_env(sim: BackgroundServer, tmp_path: Path) -> dict[str, str]:
    return demo_environment(sim.url, tmp_path / "data")


def assert_one_line_error(p: subprocess.CompletedProcess[str], needle: str) -> None:
    assert p.returncode == 2
    assert p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "Traceback" not in p.stderr
    assert needle in p.stderr
