"""STYLE.md §1: the pure core imports no I/O library, reads no clock and draws no randomness.

The check walks each core module's syntax tree; a second test proves the checker catches a
violation, so it cannot pass by finding nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE_MODULES = [
    "verify/errors.py", "verify/model.py", "verify/ids.py", "verify/qr.py",
    "verify/tables.py", "verify/eligibility.py", "verify/registry.py",
    "verify/fingerprint.py", "readers/framing.py", "readers/errors.py", "readers/apdu.py",
    "readers/atr.py", "readers/mrz.py", "readers/sm.py", "readers/bac.py", "readers/lds.py",
    "readers/pa.py", "readers/chip.py", "readers/access.py", "readers/aa.py", "readers/pace.py",
    "verify/snapshot.py", "readers/scanloop.py", "verify/his.py", "verify/audit.py",
]
CORE_DOTTED = {p.removesuffix(".py").replace("/", ".") for p in CORE_MODULES}
# Third-party libraries the core may use (STYLE.md §1); everything else must be stdlib.
ALLOWED_THIRD_PARTY = {"cryptography", "asn1crypto"}
FORBIDDEN_STDLIB = {
    "os", "io", "pathlib", "socket", "ssl", "sqlite3", "subprocess", "shutil", "asyncio",
    "threading", "multiprocessing", "time", "random", "secrets", "urllib", "http", "select",
    "logging", "tempfile", "glob", "uuid",
}
FORBIDDEN_CALLS = {("datetime", "now"), ("date", "today"), ("datetime", "today"),
                   ("datetime", "utcnow")}
PROJECT_PACKAGES = {"verify", "readers", "terminal"}


def violations(source: str) -> list[str]:
    found: list[str] = []
    stdlib = set(__import__("sys").stdlib_module_names)
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from readers import aa`` imports the module readers.aa
            names = ([f"{node.module}.{a.name}" for a in node.names]
                     if node.module in PROJECT_PACKAGES else [node.module])
        for name in names:
            top = name.split(".")[0]
            if top == "__future__":
                continue
            if top in PROJECT_PACKAGES:
                if name not in CORE_DOTTED:
                    found.append(f"imports non-core project module {name}")
            elif top in FORBIDDEN_STDLIB:
                found.append(f"imports I/O or clock module {name}")
            elif top not in stdlib and top not in ALLOWED_THIRD_PARTY:
                found.append(f"imports third-party library {name}")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and (node.func.value.id, node.func.attr) in FORBIDDEN_CALLS):
            found.append(f"reads the clock: {node.func.value.id}.{node.func.attr}()")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
                node.func.id == "open"):
            found.append("opens a file")
    return found


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_is_pure(module: str) -> None:
    assert violations((ROOT / module).read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(("source", "expected"), [
    ("import httpx", "third-party library httpx"),
    ("from smartcard.System import readers", "third-party library smartcard.System"),
    ("import sqlite3", "I/O or clock module sqlite3"),
    ("from terminal.service import Verifier", "non-core project module terminal.service"),
    ("from verify.registry_client import RegistryClient", "non-core project module"),
    ("from readers import pcsc", "non-core project module readers.pcsc"),
    ("from datetime import datetime\nx = datetime.now()", "reads the clock"),
    ("data = open('x').read()", "opens a file"),
])
def test_checker_catches_violations(source: str, expected: str) -> None:
    found = violations(source)
    assert any(expected in v for v in found), found


def test_every_core_file_is_listed() -> None:
    """A new module in verify/ must be declared core or adapter, not slip past the check."""
    adapters = {"verify/registry_client.py", "verify/registry_sim.py", "verify/__init__.py",
                "verify/cache.py", "verify/journal.py",
                "readers/__init__.py", "readers/vcard.py", "readers/vpcd.py", "readers/pcsc.py",
                "readers/camera.py", "readers/serialport.py"}
    on_disk = {str(p.relative_to(ROOT)) for d in ("verify", "readers") for p in
               (ROOT / d).glob("*.py")}
    assert on_disk - adapters == set(CORE_MODULES)
    assert "import smartcard" not in "".join(
        (ROOT / m).read_text(encoding="utf-8") for m in CORE_MODULES)
