"""STYLE.md §1: folders show the layers, and the pure core stays pure.

Every module under ``readers/`` and ``verify/`` is **pure core** unless its folder is one of the
adapter or double folders below: it imports no I/O library, reads no clock, opens no file and
draws no randomness. A new file is checked the moment it exists — there is no list of files to
forget. A second test proves the checker catches each kind of violation, so it cannot pass by
finding nothing; a third proves ``tiepdon serve`` never loads a test double.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import ROOT

LAYERED = ("readers", "verify")
# Folders that may do I/O, each for its own outside library or purpose (README: Architecture).
ADAPTER_FOLDERS = {
    "readers/devices": "PC/SC, camera, serial port: one outside library each",
    "verify/adapters": "the gateway over HTTP, the SQLite stores",
    "verify/simulator": "the registry simulator (a product feature for HIS training)",
}
# Test doubles and demo material: used by the demo, the tests and the benchmarks only.
DOUBLE_FOLDERS = {"readers/doubles": "virtual CCCD, its test PKI, vpcd bridge, clip renderer"}
# Third-party libraries the core may use (STYLE.md §1); everything else must be stdlib.
ALLOWED_THIRD_PARTY = {"cryptography", "asn1crypto"}
FORBIDDEN_STDLIB = {
    "os", "io", "pathlib", "socket", "ssl", "sqlite3", "subprocess", "shutil", "asyncio",
    "threading", "multiprocessing", "time", "random", "secrets", "urllib", "http", "select",
    "logging", "tempfile", "glob", "uuid", "importlib", "ctypes", "mmap", "signal",
}
FORBIDDEN_CALLS = {("datetime", "now"), ("date", "today"), ("datetime", "today"),
                   ("datetime", "utcnow"), ("os", "urandom")}
FORBIDDEN_BUILTINS = {"open", "input", "print", "__import__", "exec", "eval"}
PROJECT_PACKAGES = {"verify", "readers", "terminal"}


def folder_of(module: Path) -> str:
    return str(module.parent.relative_to(ROOT))


def is_core(module: Path) -> bool:
    folder = folder_of(module)
    return not any(folder == f or folder.startswith(f + "/")
                   for f in (*ADAPTER_FOLDERS, *DOUBLE_FOLDERS))


def core_modules() -> list[Path]:
    return sorted(p for d in LAYERED for p in (ROOT / d).rglob("*.py") if is_core(p))


def core_dotted() -> set[str]:
    out = set()
    for p in core_modules():
        parts = p.relative_to(ROOT).with_suffix("").parts
        out.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def violations(source: str, core: set[str]) -> list[str]:
    found: list[str] = []
    stdlib = set(sys.stdlib_module_names)
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from readers.emrtd import aa`` imports the module readers.emrtd.aa
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in _all_project()
                     else node.module for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.append("relative import (say the layer: write the full module name)")
        for name in names:
            top = name.split(".")[0]
            if top == "__future__":
                continue
            if top in PROJECT_PACKAGES:
                if name not in core:
                    found.append(f"imports non-core project module {name}")
            elif top in FORBIDDEN_STDLIB:
                found.append(f"imports I/O, clock or randomness module {name}")
            elif top not in stdlib and top not in ALLOWED_THIRD_PARTY:
                found.append(f"imports third-party library {name}")
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                    and (f.value.id, f.attr) in FORBIDDEN_CALLS):
                found.append(f"reads the clock or randomness: {f.value.id}.{f.attr}()")
            if isinstance(f, ast.Name) and f.id in FORBIDDEN_BUILTINS:
                found.append(f"calls {f.id}() (a file, the console or dynamic code)")
    return found


def _all_project() -> set[str]:
    return {".".join(p.relative_to(ROOT).with_suffix("").parts)
            for d in PROJECT_PACKAGES for p in (ROOT / d).rglob("*.py")}


@pytest.mark.parametrize("module", [str(p.relative_to(ROOT)) for p in core_modules()])
def test_core_module_is_pure(module: str) -> None:
    assert violations((ROOT / module).read_text(encoding="utf-8"), core_dotted()) == []


@pytest.mark.parametrize(("source", "expected"), [
    ("import httpx", "third-party library httpx"),
    ("from smartcard.System import readers", "third-party library smartcard.System"),
    ("import sqlite3", "I/O, clock or randomness module sqlite3"),
    ("import secrets", "I/O, clock or randomness module secrets"),
    ("from terminal.flow.verifier import Verifier", "non-core project module terminal.flow"),
    ("from verify.adapters.registry_client import RegistryClient", "non-core project module"),
    ("from readers.devices import pcsc", "non-core project module readers.devices.pcsc"),
    ("from readers.doubles.vcard import VirtualCccd", "non-core project module"),
    ("from datetime import datetime\nx = datetime.now()", "reads the clock"),
    ("import os\nx = os.urandom(8)", "randomness: os.urandom()"),
    ("data = open('x').read()", "calls open()"),
    ("from .sm import x", "relative import"),
])
def test_checker_catches_violations(source: str, expected: str) -> None:
    found = violations(source, core_dotted())
    assert any(expected in v for v in found), found


def test_folders_are_the_layers() -> None:
    """The pure folders exist and hold the protocol cores; adapters sit where declared."""
    core = {str(p.relative_to(ROOT)) for p in core_modules()}
    for expected in ("readers/emrtd/pace.py", "readers/emrtd/sm.py", "readers/emrtd/pa.py",
                     "readers/scan/framing.py", "verify/eligibility.py", "verify/qr.py",
                     "verify/credentials.py"):
        assert expected in core
    for folder in (*ADAPTER_FOLDERS, *DOUBLE_FOLDERS):
        assert any((ROOT / folder).glob("*.py")), folder
    # Each outside library is imported by one adapter folder only.
    owners = {"smartcard": "readers/devices", "cv2": "readers/devices",
              "zxingcpp": "readers/devices", "serial": "readers/devices",
              "httpx": "verify/adapters", "sqlite3": "verify/adapters"}
    for lib, owner in owners.items():
        importers = set()
        for d in LAYERED:
            for p in (ROOT / d).rglob("*.py"):
                tree = ast.parse(p.read_text(encoding="utf-8"))
                for node in ast.walk(tree):
                    mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                            else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                    if any(m.split(".")[0] == lib for m in mods):
                        importers.add(folder_of(p))
        allowed = {owner, *DOUBLE_FOLDERS, "verify/simulator"}
        assert importers and importers <= allowed, (lib, importers)


SERVE_PROBE = """
import sys
from terminal.app import build_services, create_app
from terminal.settings import parse_settings
settings = parse_settings({"data": {"dir": sys.argv[1]}, "facility": {"code": "01001"}}, environ={})
create_app(settings, build_services(settings, online=True))
import terminal.cli
bad = sorted(m for m in sys.modules if m.startswith(("readers.doubles", "verify.simulator",
                                                     "segno", "pyzbar", "bench", "tests")))
print(",".join(bad))
"""


def test_serve_never_imports_test_doubles(tmp_path: Path) -> None:
    """What ``tiepdon serve`` builds loads no virtual card, simulator or renderer."""
    out = subprocess.run([sys.executable, "-c", SERVE_PROBE, str(tmp_path)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ""
