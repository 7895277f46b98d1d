"""The package as a reception PC gets it: a wheel built from this checkout, installed into a
fresh virtualenv outside the repository, run from a folder that is not the checkout.

The new venv borrows the third-party libraries of the test venv through a path entry (so the
test needs no downloads) but not its editable install of ``tiepdon``: every project module, table,
static file and demo asset must come from the wheel — the test checks where they were loaded from.
"""

from __future__ import annotations

import json
import os
import signal
import site
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.paths import ROOT
from tests.helpers.samples import BHYT_NEW_EXAMPLE, CCCD_EXAMPLE


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("wheel")
    out = base / "dist"
    build = subprocess.run([str(ROOT / "scripts" / "build-wheel"), str(out)],
                           capture_output=True, text=True, timeout=300, check=False,
                           env={**os.environ, "PYTHON": sys.executable})
    assert build.returncode == 0, build.stderr[-3000:]
    wheels = list(out.glob("tiepdon-*.whl"))
    assert len(wheels) == 1
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    purelib = Path(subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path("
         "'purelib'))"], capture_output=True, text=True, check=True).stdout.strip())
    # Third-party libraries only: a plain path line does not run the test venv's .pth files,
    # so its editable finder for tiepdon stays off.
    (purelib / "borrowed-libraries.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--no-deps", "--no-index", "-q", str(wheels[0])],
        capture_output=True, text=True, timeout=300, check=False)
    assert install.returncode == 0, install.stderr[-3000:]
    yield venv


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TIEPDON_") and k != "PYTHONPATH"}
    return env


def test_wheel_holds_tables_static_and_demo_assets(wheel_venv: Path) -> None:
    wheel = next((wheel_venv.parent / "dist").glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("verify/data/benefit_rules.toml", "verify/data/messages.toml",
                   "verify/data/provinces.toml", "terminal/static/index.html",
                   "terminal/static/app.js", "readers/doubles/data/demo_face.jpg"):
        assert needed in names, needed
    assert not any(n.startswith(("tests/", "bench/", "config/")) for n in names)


def test_installed_modules_come_from_the_wheel(wheel_venv: Path, tmp_path: Path) -> None:
    probe = ("import terminal, verify, readers.doubles\n"
             "from terminal.resources import shipped_tables_dir, static_dir, load_tables\n"
             "load_tables()\n"
             "print(terminal.__file__); print(shipped_tables_dir()); print(static_dir())")
    p = subprocess.run([str(wheel_venv / "bin" / "python"), "-c", probe], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60, env=_env(), check=False)
    assert p.returncode == 0, p.stderr
    for line in p.stdout.split():
        assert line.startswith(str(wheel_venv)), line
        assert not line.startswith(str(ROOT))


def test_check_and_a_broken_table_dir(wheel_venv: Path, tmp_path: Path) -> None:
    tiepdon = str(wheel_venv / "bin" / "tiepdon")
    env = {**_env(), "TIEPDON_FACILITY_CODE": "01001", "TIEPDON_DATA_DIR": str(tmp_path)}
    p = subprocess.run([tiepdon, "check", "--offline", "--qr", BHYT_NEW_EXAMPLE], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60, env=env, check=False)
    assert p.returncode == 1, p.stderr  # decided: needs_review (offline, nothing cached)
    assert json.loads(p.stdout)["status"] == "needs_review"
    broken = tmp_path / "tables"
    broken.mkdir()
    env["TIEPDON_DATA_TABLES_DIR"] = str(broken)
    p = subprocess.run([tiepdon, "check", "--offline", "--qr", BHYT_NEW_EXAMPLE], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60, env=env, check=False)
    assert p.returncode == 2
    assert f"data table {broken / 'benefit_rules.toml'} missing" in p.stderr
    assert "data table" in p.stderr and "try again" not in p.stderr.lower()
    for name in ("messages.toml", "provinces.toml"):  # corrected copies: the shipped ones
        (broken / name).write_bytes((ROOT / "verify" / "data" / name).read_bytes())
    (broken / "benefit_rules.toml").write_text("format = [", encoding="utf-8")
    p = subprocess.run([tiepdon, "check", "--offline", "--qr", BHYT_NEW_EXAMPLE], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60, env=env, check=False)
    assert p.returncode == 2 and "benefit_rules.toml: not valid TOML" in p.stderr, p.stderr


def test_demo_runs_from_the_wheel(wheel_venv: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen([str(wheel_venv / "bin" / "tiepdon"), "demo", "--port", "0",
                             "--latency-ms", "0"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.stderr else ""
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(100):
                if client.get("/api/v1/health").status_code == 200:
                    break
                time.sleep(0.1)
            assert "Tiếp Đón" in client.get("/").text
            assert client.get("/static/app.js").status_code == 200
            answer = client.post("/api/v1/verify", json={"qr": BHYT_NEW_EXAMPLE}).json()
            assert answer["status"] == "eligible" and answer["source"] == "registry"
            assert client.post("/api/v1/verify", json={"qr": CCCD_EXAMPLE}).status_code == 200
            chip = client.post("/api/v1/chip/demo").json()
            assert chip["passive_auth"]["status"] == "authentic"
            photo = client.get("/api/v1/photo", params={"fp": chip["raw_fingerprint"]})
            assert photo.headers["content-type"] == "image/jpeg"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_registry_sim_runs_from_the_wheel(wheel_venv: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen([str(wheel_venv / "bin" / "tiepdon"), "registry-sim", "--port",
                             "0"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://"), proc.stderr.read() if proc.stderr else ""
        assert httpx.get(url + "/sim/stats", timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
