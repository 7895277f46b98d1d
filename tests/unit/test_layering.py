"""STYLE.md §1: folders show the layers, and the pure core stays pure.

Every module under ``readers/`` and ``verify/`` is **pure core** unless its folder is one of the
adapter or double folders below: it imports no I/O library, reads no clock, opens no file and
draws no randomness. A new file is checked the moment it exists — there is no list of files to
forget. A second test proves the checker catches each kind of violation, so it cannot pass by
finding nothing; a third proves ``tiepdon serve`` never loads a test double.

Direction and ownership, over ``readers/``, ``verify/`` and ``terminal/`` alike: ``readers/``
never imports ``verify`` or ``terminal``, ``verify/`` never imports ``terminal``; each
third-party library has one owning module (``OWNERS``; a library with more than one says why in
``SHARED``), and a library missing from the table is a violation too. Test modules import
shared pieces from ``tests/helpers/``, never from another test module. Each checker is shown
a synthetic violation it must catch.
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
                     "verify/credentials.py", "readers/ocr/read.py", "readers/ocr/mrz.py",
                     "verify/ocr.py"):
        assert expected in core
    for folder in (*ADAPTER_FOLDERS, *DOUBLE_FOLDERS):
        assert any((ROOT / folder).glob("*.py")), folder
    # Each outside library is imported by one adapter folder only.
    owners = {"smartcard": "readers/devices", "cv2": "readers/devices",
              "zxingcpp": "readers/devices", "serial": "readers/devices",
              "tesserocr": "readers/devices",
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
        assert importers and all(any(i == a or i.startswith(a + "/") for a in allowed)
                                 for i in importers), (lib, importers)


# Direction (STYLE.md §1): a layer never imports the layers built on top of it.
NEVER_IMPORTS = {"readers": ("verify", "terminal"), "verify": ("terminal",)}
# The one module that imports each third-party library (STYLE.md §1: an adapter per outside
# library, the wiring included); an owner ending in "/" is a folder. The core's own libraries
# (ALLOWED_THIRD_PARTY) may be used in every layer; test doubles are not production code.
OWNERS: dict[str, tuple[str, ...]] = {
    "smartcard": ("readers/devices/pcsc.py",),
    "cv2": ("readers/devices/camera/",),
    "numpy": ("readers/devices/camera/",),
    "zxingcpp": ("readers/devices/camera/",),
    "tesserocr": ("readers/devices/ocr.py",),
    "serial": ("readers/devices/serialport.py",),
    "httpx": ("verify/adapters/registry_client.py",),
    "sqlite3": ("verify/adapters/cache.py", "verify/adapters/journal.py",
                "verify/adapters/outbox.py", "verify/simulator/registry_sim.py"),
    "socketio": ("terminal/feeds/hn212.py",),
    "uvicorn": ("terminal/server.py",),
    "fastapi_offline": ("terminal/app.py",),
    "fastapi": ("terminal/", "verify/simulator/registry_sim.py"),
    "starlette": ("terminal/",),
    "pydantic": ("terminal/", "verify/simulator/registry_sim.py"),
}
# Why a library has more than one owner, or a folder for one.
SHARED = {
    "sqlite3": "three stores, each its own file and keys; the simulator's registry database",
    "fastapi": "the web framework: every router of the daemon and of the simulator is one",
    "starlette": "fastapi's base (middleware, responses, ASGI app) beside the routers",
    "pydantic": "the edges' models (STYLE.md §4): settings and HTTP JSON bodies",
    "cv2": "the camera adapter is a package: its decoder chain and its capture",
    "numpy": "the camera adapter is a package: its decoder chain and its capture",
    "zxingcpp": "the camera adapter is a package: its decoder chain and its capture",
}


def imported_names(source: str) -> list[str]:
    """Every absolute module name a source imports, at any depth (lazy imports included)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def direction_violations(path: str, source: str) -> list[str]:
    layer = path.split("/")[0]
    return [f"{path} imports {name}: {layer}/ never imports {name.split('.')[0]}/"
            for name in imported_names(source)
            if name.split(".")[0] in NEVER_IMPORTS.get(layer, ())]


def owned_by(path: str, owners: tuple[str, ...]) -> bool:
    return any(path == o or (o.endswith("/") and path.startswith(o)) for o in owners)


def ownership_violations(sources: dict[str, str]) -> list[str]:
    """``sources``: production path → text. Each library imported outside its owners, or
    imported and owned by nobody."""
    stdlib = set(sys.stdlib_module_names) - {"sqlite3"}
    found: list[str] = []
    for path, source in sorted(sources.items()):
        for lib in sorted({n.split(".")[0] for n in imported_names(source)}):
            if lib in stdlib or lib in PROJECT_PACKAGES or lib in ALLOWED_THIRD_PARTY:
                continue
            owners = OWNERS.get(lib)
            if owners is None:
                found.append(f"{path} imports {lib}, which has no owning module in OWNERS")
            elif not owned_by(path, owners):
                found.append(f"{path} imports {lib}, owned by {', '.join(owners)}")
    return found


def production_sources() -> dict[str, str]:
    doubles = tuple(f + "/" for f in DOUBLE_FOLDERS)
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
            for d in sorted(PROJECT_PACKAGES) for p in (ROOT / d).rglob("*.py")
            if not str(p.relative_to(ROOT)).startswith(doubles)}


def test_layers_import_downwards_only() -> None:
    found = [v for d in LAYERED for p in sorted((ROOT / d).rglob("*.py"))
             for v in direction_violations(str(p.relative_to(ROOT)),
                                           p.read_text(encoding="utf-8"))]
    assert found == []


def test_each_library_has_one_owning_module() -> None:
    sources = production_sources()
    assert ownership_violations(sources) == []
    for lib, owners in OWNERS.items():
        assert (len(owners) == 1 and not owners[0].endswith("/")) or lib in SHARED, lib
        for owner in owners:  # the table stays true: every owner exists and uses its library
            assert any(owned_by(path, (owner,))
                       and lib in {n.split(".")[0] for n in imported_names(text)}
                       for path, text in sources.items()), (lib, owner)


@pytest.mark.parametrize(("path", "source", "expected"), [
    ("readers/emrtd/chip.py", "from verify.model import VN_TZ", "readers/ never imports verify/"),
    ("readers/devices/pcsc.py", "def f() -> None:\n    import terminal.app",
     "readers/ never imports terminal/"),
    ("readers/doubles/vcard.py", "from terminal import demo", "readers/ never imports terminal/"),
    ("verify/qr.py", "from terminal.flow.results import Verification",
     "verify/ never imports terminal/"),
])
def test_direction_checker_catches_violations(path: str, source: str, expected: str) -> None:
    found = direction_violations(path, source)
    assert any(expected in v for v in found), found


@pytest.mark.parametrize(("path", "source", "expected"), [
    ("terminal/feeds/webhook.py", "import httpx",
     "imports httpx, owned by verify/adapters/registry_client.py"),
    ("terminal/app.py", "from smartcard.System import readers",
     "imports smartcard, owned by readers/devices/pcsc.py"),
    ("verify/adapters/registry_client.py", "def f() -> None:\n    import cv2",
     "imports cv2, owned by readers/devices/camera/"),
    ("terminal/cli.py", "import sqlite3", "imports sqlite3, owned by verify/adapters/cache.py"),
    ("readers/devices/camera/capture.py", "import requests",
     "requests, which has no owning module"),
])
def test_ownership_checker_catches_violations(path: str, source: str, expected: str) -> None:
    found = ownership_violations({path: source})
    assert any(expected in v for v in found), found


def test_ownership_checker_passes_the_owners() -> None:
    assert ownership_violations({"verify/adapters/registry_client.py": "import httpx",
                                 "terminal/api.py": "from fastapi import APIRouter",
                                 "readers/emrtd/pa.py": "from cryptography import x509"}) == []


def test_modules_import_helpers_not_other_test_modules() -> None:
    """Test modules share through tests/helpers/ (and conftest fixtures), never by importing
    one another."""
    found = [v for p in sorted((ROOT / "tests").rglob("*.py"))
             for v in cross_test_imports(str(p.relative_to(ROOT)),
                                         p.read_text(encoding="utf-8"))]
    assert found == []


def cross_test_imports(path: str, source: str) -> list[str]:
    return [f"{path} imports {name}, not a helper" for name in imported_names(source)
            if name.split(".")[0] == "tests"
            and not (name == "tests.helpers" or name.startswith("tests.helpers."))]


@pytest.mark.parametrize("source", ["from tests.unit.test_cli import run",
                                    "from tests.conftest import NOW",
                                    "def f() -> None:\n    from tests.system import test_pcsc"])
def test_cross_test_import_checker_catches_violations(source: str) -> None:
    assert cross_test_imports("tests/unit/test_x.py", source)
    assert cross_test_imports("tests/unit/test_x.py", "from tests.helpers.cli import run") == []


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
