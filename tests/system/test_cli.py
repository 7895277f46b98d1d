"""The ``tiepdon`` command as scripts and IT staff run it: real processes, real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from terminal.server import BackgroundServer
from tests.helpers.cli import TIEPDON, assert_one_line_error, online_env, run
from tests.helpers.daemon import sim_control
from tests.helpers.hn212 import connect
from tests.helpers.paths import ROOT
from tests.helpers.samples import BHYT_NEW_EXAMPLE, CCCD_EXAMPLE
from verify.simulator.registry_sim import DEMO_FACILITY, DEMO_USERNAME


def test_qr_parse() -> None:
    p = run("qr", "parse", BHYT_NEW_EXAMPLE)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["kind"] == "bhyt_qr" and out["full_name"] == "Nguyễn Tiến Đạt"
    assert len(out["raw_fingerprint"]) == 12


@pytest.mark.parametrize("text", ["garbage", "A" * 10_000,
                                  "001098012345||X|31022000|Nữ|Hà Nội|01012022"])
def test_qr_parse_bad_input(text: str) -> None:
    p = run("qr", "parse", text)
    assert_one_line_error(p, "QR")
    assert text[:20] not in p.stderr


def test_check_online(sim: BackgroundServer, tmp_path: Path) -> None:
    env = online_env(sim, tmp_path)
    p = run("check", "--qr", CCCD_EXAMPLE, env=env)
    assert p.returncode == 0, p.stderr
    e = json.loads(p.stdout)
    assert e["status"] == "eligible" and e["credential"]["kind"] == "cccd_qr"
    expired = run("check", "--card", "HC4010200000005", "--name", "Vũ Đức Thắng", "--dob",
                  "11/11/1970", env=env)
    assert expired.returncode == 1 and json.loads(expired.stdout)["status"] == "not_eligible"
    by_id = run("check", "--id", "001221000222", "--name", "Lê Minh Khang", "--dob", "2021",
                env=env)
    assert by_id.returncode == 0 and json.loads(by_id.stdout)["benefit_level"] == 1
    # A one-shot check does not start the visit history (it would outlive the HTTP client):
    # nothing on stderr, no traceback, in any of them.
    for done in (p, expired, by_id):
        assert "Traceback" not in done.stderr and "RuntimeError" not in done.stderr, done.stderr
    # One-shot commands never create files in the data folder.
    assert not (tmp_path / "data").exists()


def test_check_when_the_gateway_gives_a_token_no_real_time(sim: BackgroundServer,
                                                           tmp_path: Path) -> None:
    """``expires_in`` with an offset of +99:99: an answer that is not the protocol, as the
    daemon says it (tests/unit/test_daemon.py) — it was "internal error (ValueError)"."""
    sim_control(sim, fault="bad_expiry")
    try:
        p = run("check", "--qr", CCCD_EXAMPLE, env=online_env(sim, tmp_path))
    finally:
        sim_control(sim, fault="none")
    assert p.returncode == 1, p.stderr
    e = json.loads(p.stdout)
    assert e["status"] == "needs_review" and e["messages"][0]["code"] == "registry_protocol"
    assert "internal error" not in p.stderr


def test_check_offline_always_answers(tmp_path: Path) -> None:
    p = run("check", "--offline", "--qr", CCCD_EXAMPLE,
            env={"TIEPDON_FACILITY_CODE": DEMO_FACILITY})
    assert p.returncode == 1, p.stderr
    e = json.loads(p.stdout)
    assert e["status"] == "needs_review" and e["source"] == "none"
    assert e["messages"][0]["code"] == "offline"


def test_check_with_registry_unreachable(tmp_path: Path) -> None:
    env = {"TIEPDON_FACILITY_CODE": DEMO_FACILITY, "TIEPDON_REGISTRY_URL": "http://127.0.0.1:9",
           "TIEPDON_REGISTRY_USERNAME": "u", "TIEPDON_REGISTRY_PASSWORD": "p",
           "TIEPDON_OFFICER_NAME": "A", "TIEPDON_OFFICER_ID": "001190000001"}
    p = run("check", "--qr", CCCD_EXAMPLE, env=env)
    assert p.returncode == 1
    e = json.loads(p.stdout)
    assert e["status"] == "needs_review" and e["source"] == "none"
    assert e["messages"][0]["code"] == "registry_unavailable"


@pytest.mark.parametrize(("args", "env", "needle"), [
    (("check", "--qr", CCCD_EXAMPLE), {}, "facility.code (TIEPDON_FACILITY_CODE): required"),
    (("check", "--qr", CCCD_EXAMPLE), {"TIEPDON_FACILITY_CODE": "01C54"},
     "registry.url (TIEPDON_REGISTRY_URL): required"),
    (("check", "--offline", "--card", "GD4010111077012"), {"TIEPDON_FACILITY_CODE": "01C54"},
     "Name or date of birth missing"),
    (("check", "--offline", "--card", "XX", "--name", "A", "--dob", "1990"),
     {"TIEPDON_FACILITY_CODE": "01C54"}, "card code has the wrong shape"),
    (("check", "--offline", "--card", "GD4010111077012", "--name", "A", "--dob", "31/02/1990"),
     {"TIEPDON_FACILITY_CODE": "01C54"}, "Invalid date"),
    (("check", "--offline", "--qr", CCCD_EXAMPLE, "--name", "A"),
     {"TIEPDON_FACILITY_CODE": "01C54"}, "Send either the QR or the typed fields"),
    (("check",), {}, "one of the arguments --qr --card --id is required"),
    # Found by a review helper (each was "internal error (…)", a wrong sentence, or silent):
    (("registry-sim", "--port", "99999"), {}, "invalid port (0-65535) value"),
    (("registry-sim", "--port", "0", "--db", "/nonexistent/dir/x.sqlite"), {},
     "cannot open the simulator's database"),
    (("card", "read", "--can", "12"), {}, "The chip key is not valid"),
    (("card", "read", "--doc", "123456789", "--dob", "991399", "--expiry", "300101"), {},
     "The chip key is not valid"),
    (("serve",), {"TIEPDON_HTTP_PORT": "x"}, "http.port (TIEPDON_HTTP_PORT)"),
    (("serve", "--config", "/nonexistent.toml"), {}, "config file not found"),
    (("registry-sim", "--failure-rate", "2"), {}, "must be between 0 and 1"),
    (("frobnicate",), {}, "invalid choice"),
])
def test_bad_invocations_are_one_line(args: tuple[str, ...], env: dict[str, str],
                                      needle: str) -> None:
    assert_one_line_error(run(*args, env=env), needle)


def test_stray_words_are_not_repeated(tmp_path: Path) -> None:
    """An unquoted name splits into stray arguments; argparse repeated them on stderr (and so
    into a log). Never echoed."""
    p = run("check", "--offline", "--card", "GD4010111077012", "--name", "Nguyễn", "Tiến",
            "Đạt", "--dob", "1988", env={"TIEPDON_FACILITY_CODE": DEMO_FACILITY})
    assert_one_line_error(p, "unrecognized arguments")
    assert "Tiến" not in p.stderr and "Đạt" not in p.stderr


def test_card_probe_without_a_reader_is_an_error_that_says_so() -> None:
    p = run("card", "probe", "--reader", "Nobody 00 00")
    assert p.returncode == 2
    assert json.loads(p.stdout)["error"] == "chip_no_reader"  # the report is still printed
    assert "no chip reader found" in p.stderr


def test_serve_refuses_the_example_placeholders() -> None:
    example = ROOT / "config" / "tiepdon.example.toml"
    assert_one_line_error(run("serve", "--config", str(example)), "placeholder")


def start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TIEPDON_")}
    proc = subprocess.Popen([TIEPDON, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**base, **(env or {})})
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line.startswith("http://"), proc.stderr.read() if proc.stderr else ""
    return proc, line


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    return err


def test_registry_sim_command(tmp_path: Path) -> None:
    db = tmp_path / "registry.sqlite"
    proc, url = start("registry-sim", "--port", "0", "--db", str(db), "--today", "2026-03-16")
    try:
        r = httpx.post(f"{url}/api/token/take", data={"username": DEMO_USERNAME,
                                                      "password": "bad"})
        assert r.json()["maKetQua"] == "401"
    finally:
        stop(proc)
    assert db.stat().st_size > 0


def test_demo_serves_the_page_and_answers(tmp_path: Path) -> None:
    proc, url = start("demo", "--port", "0", "--latency-ms", "0")
    try:
        assert proc.stderr is not None
        feed = ""
        for _ in range(20):  # the demo's lines on stderr, up to the feed's address
            feed = proc.stderr.readline()
            if feed.startswith("HIS feed"):
                break
        assert "Tiếp Đón" in httpx.get(url).text
        his = connect(feed.rsplit(" ", 1)[1].strip())  # the demo's HN212-compatible feed
        e = httpx.post(f"{url}api/v1/verify", json={"qr": BHYT_NEW_EXAMPLE}, timeout=10).json()
        assert e["status"] == "eligible" and e["person"]["full_name"] == "Nguyễn Tiến Đạt"
        assert e["valid_to"] and e["benefit_level"] == 4
        assert his.wait_for([2])[0]["data"]["personName"] == "Nguyễn Tiến Đạt"
        his.client.disconnect()
    finally:
        err = stop(proc)
    assert "Nguyễn Tiến Đạt" not in err


def test_serve_runs_with_valid_settings(sim: BackgroundServer, tmp_path: Path) -> None:
    env = {**online_env(sim, tmp_path), "TIEPDON_HTTP_PORT": "0"}
    base = {k: v for k, v in os.environ.items() if not k.startswith("TIEPDON_")}
    proc = subprocess.Popen([TIEPDON, "serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**base, **env})
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "serving on http://127.0.0.1:" in line, line
    port = line.rsplit(":", 1)[1].strip().strip("/")
    try:
        h = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=10)
        assert h.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    key = tmp_path / "data" / "terminal.key"
    assert key.stat().st_mode & 0o777 == 0o600
