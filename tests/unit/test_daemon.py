"""The daemon over real HTTP on loopback, talking to the registry simulator over HTTP."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import httpx
import pytest

from terminal.app import create_app
from terminal.server import BackgroundServer, start_background
from tests.helpers.daemon import daemon_services, read_events, sim_control, terminal_settings
from tests.helpers.samples import BHYT_NEW_EXAMPLE, BHYT_OLD_EXAMPLE, CCCD_EXAMPLE


def verify(daemon: BackgroundServer, body: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{daemon.url}/api/v1/verify", json=body, timeout=10)


def test_cccd_qr_end_to_end(daemon: BackgroundServer) -> None:
    r = verify(daemon, {"qr": CCCD_EXAMPLE})
    assert r.status_code == 200
    e = r.json()
    assert e["status"] == "eligible" and e["source"] == "registry"
    assert e["registry_code"] == "000"
    assert e["person"]["full_name"] == "Nguyễn Văn B"
    assert (e["benefit_level"], e["benefit_percent"]) == (4, 80)
    assert e["valid_to"] == "2026-12-31" and e["is_registered_here"] is True
    assert e["credential"]["kind"] == "cccd_qr"
    assert e["credential"]["id_number"] == "001098012345"
    assert len(e["credential"]["raw_fingerprint"]) == 12
    codes = [m["code"] for m in e["messages"]]
    assert codes[0] == "registry_000"
    assert "id_sex_mismatch" in codes  # the DOMAIN example's ID disagrees with its own sex


def test_both_bhyt_examples(daemon: BackgroundServer) -> None:
    old = verify(daemon, {"qr": BHYT_OLD_EXAMPLE}).json()
    assert old["status"] == "eligible" and old["is_registered_here"] is False
    assert old["person"]["full_name"] == "Đoàn Phương Nhi"
    new = verify(daemon, {"qr": BHYT_NEW_EXAMPLE}).json()
    assert new["status"] == "eligible" and new["card_code"] == "GD4010111077012"
    assert new["five_years_date"] == "2027-10-01" and new["five_years_reached"] is False


def test_manual_entry(daemon: BackgroundServer) -> None:
    e = verify(daemon, {"card_code": "HC4010200000005", "full_name": "Vũ Đức Thắng",
                        "date_of_birth": "11/11/1970"}).json()
    assert e["status"] == "not_eligible" and e["registry_code"] == "010"
    assert e["credential"]["kind"] == "manual"
    by_id = verify(daemon, {"id_number": "001221000222", "full_name": "Lê Minh Khang",
                            "date_of_birth": "2021-05-12"}).json()
    assert by_id["status"] == "eligible" and by_id["benefit_level"] == 1


@pytest.mark.parametrize("body", [
    {"qr": "not a qr"},
    {"qr": "A" * 10_000},
    {"qr": "001098012345||NGUYỄN VĂN B|31022000|Nữ|Hà Nội|01012022"},
    {"qr": "DN479GA78900007|ZZZZ|15/09/1993|2|$"},
    {"card_code": "GD4010111077012"},                          # no name / DOB
    {"card_code": "??", "full_name": "A", "date_of_birth": "1990"},
    {"id_number": "12345", "full_name": "A", "date_of_birth": "1990"},
    {"card_code": "GD4010111077012", "full_name": "A", "date_of_birth": "32/01/1990"},
    {"qr": CCCD_EXAMPLE, "card_code": "GD4010111077012"},
])
def test_bad_input_is_refused_with_a_staff_message(daemon: BackgroundServer,
                                                   body: dict[str, str]) -> None:
    r = verify(daemon, body)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["vi"] and err["en"] and err["code"]
    # ...and the daemon keeps serving.
    assert verify(daemon, {"qr": BHYT_NEW_EXAMPLE}).json()["status"] == "eligible"


@pytest.mark.parametrize("typed", [{"full_name": "Someone Else"},
                                   {"date_of_birth": "01/01/1900"},
                                   {"card_code": "GD4010111077012"}])
def test_a_qr_with_typed_fields_is_refused_as_the_cli_refuses_it(
        daemon: BackgroundServer, typed: dict[str, str]) -> None:
    """The name and date typed beside a QR were silently dropped (the CLI refused them)."""
    r = verify(daemon, {"qr": CCCD_EXAMPLE, **typed})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "mixed_input" and "không gửi cả hai" in error["vi"]


def test_typed_fields_are_held_to_the_same_limits_on_both_paths(
        daemon: BackgroundServer, tmp_path: Path) -> None:
    """A 300-character name was 422 over HTTP but went to the registry from `tiepdon check`
    (and came back needs_review, exit 1); an empty card code said "name or date of birth
    missing" on both. One rule now (manual_credential): too long is refused on both paths,
    and a missing number says so."""
    from tests.helpers.cli import run

    long_name = "A" * 300
    cli_env = {"TIEPDON_DATA_DIR": str(tmp_path / "cli"), "TIEPDON_FACILITY_CODE": "01C54"}
    assert verify(daemon, {"card_code": "GD4010111077012", "full_name": long_name,
                           "date_of_birth": "29/03/1988"}).status_code == 422
    p = run("check", "--card", "GD4010111077012", "--name", long_name, "--dob", "29/03/1988",
            "--offline", env=cli_env)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "too long" in p.stderr
    empty = verify(daemon, {"card_code": "", "full_name": "Nguyễn Tiến Đạt",
                            "date_of_birth": "29/03/1988"})
    assert empty.status_code == 422
    assert "mã thẻ BHYT hoặc số CCCD" in empty.json()["error"]["vi"]
    p = run("check", "--card", "", "--name", "Nguyễn Tiến Đạt", "--dob", "29/03/1988",
            "--offline", env=cli_env)
    assert p.returncode == 2 and ("card code" in p.stderr or "mã thẻ" in p.stderr), p.stderr


def test_unknown_json_fields_are_refused(daemon: BackgroundServer) -> None:
    assert verify(daemon, {"qr": CCCD_EXAMPLE, "extra": "x"}).status_code == 422


@pytest.mark.parametrize(("fault", "message"), [
    ("http500", "registry_unavailable"),
    ("garbage", "registry_protocol"),
    ("hang", "registry_unavailable"),
    ("undocumented", "unknown_registry_code"),
    ("bad_expiry", "registry_protocol"),  # was HTTP 500: ValueError out of the token's time
])
def test_registry_trouble_is_a_needs_review_answer(daemon: BackgroundServer,
                                                   sim: BackgroundServer, fault: str,
                                                   message: str) -> None:
    sim_control(sim, fault=fault)
    e = verify(daemon, {"qr": CCCD_EXAMPLE}).json()
    assert e["status"] == "needs_review"
    assert e["messages"][0]["code"] == message
    assert e["person"]["full_name"]
    sim_control(sim, fault="none")
    assert verify(daemon, {"qr": CCCD_EXAMPLE}).json()["status"] == "eligible"


def test_registry_down_entirely(tmp_path: Path) -> None:
    settings = terminal_settings("http://127.0.0.1:9", tmp_path / "data")
    server = start_background(create_app(settings, daemon_services(settings)))
    try:
        e = verify(server, {"qr": CCCD_EXAMPLE}).json()
        assert e["status"] == "needs_review" and e["source"] == "none"
        health = httpx.get(f"{server.url}/api/v1/health").json()
        assert health["components"]["registry"]["status"] == "degraded"
    finally:
        server.stop()


def test_last_result(daemon: BackgroundServer) -> None:
    assert httpx.get(f"{daemon.url}/api/v1/last").status_code == 404
    verify(daemon, {"qr": BHYT_NEW_EXAMPLE})
    r = httpx.get(f"{daemon.url}/api/v1/last")
    assert r.status_code == 200 and r.json()["credential"]["kind"] == "bhyt_qr"


def test_last_result_is_purged(sim: BackgroundServer, tmp_path: Path) -> None:
    settings = terminal_settings(sim.url, tmp_path / "data", privacy__last_result_minutes=0.001)
    server = start_background(create_app(settings, daemon_services(settings)))
    try:
        verify(server, {"qr": BHYT_NEW_EXAMPLE})
        import time

        time.sleep(0.2)
        assert httpx.get(f"{server.url}/api/v1/last").status_code == 404
    finally:
        server.stop()


def test_server_sent_events(daemon: BackgroundServer) -> None:
    events: list[tuple[str, dict[str, object]]] = []
    ready = threading.Event()
    reader = threading.Thread(target=read_events,
                              args=(daemon.url, 4, ready, events, frozenset()))
    reader.start()
    assert ready.wait(10)
    verify(daemon, {"qr": CCCD_EXAMPLE})
    verify(daemon, {"qr": "garbage"})
    reader.join(10)
    names = [name for name, _ in events]
    assert names.index("history") > names.index("eligibility")  # after the answer, never in it
    events = [e for e in events if e[0] != "history"]
    assert [name for name, _ in events] == ["credential", "eligibility", "error"]
    assert events[0][1]["id_number"] == "001098012345"
    assert events[1][1]["status"] == "eligible"
    assert events[2][1]["code"] == "qr_format" and "raw_fingerprint" in events[2][1]


def test_health_and_metrics(daemon: BackgroundServer) -> None:
    verify(daemon, {"qr": CCCD_EXAMPLE})
    verify(daemon, {"qr": "garbage"})
    h = httpx.get(f"{daemon.url}/api/v1/health").json()
    assert h["status"] == "ok"
    assert h["components"]["registry"]["status"] == "ok"
    assert h["components"]["cache"]["status"] == "down"
    m = httpx.get(f"{daemon.url}/metrics").text
    assert ('tiepdon_verifications_total{status="eligible",source="registry",'
            'registry_code="000"} 1') in m
    assert 'tiepdon_input_errors_total{code="qr_format"} 1' in m
    assert 'tiepdon_registry_seconds_bucket{le="+Inf"} 1' in m
    assert "tiepdon_registry_breaker_open 0" in m and "tiepdon_chip_reader_error 0" in m


def test_pages_and_docs_use_no_cdn(daemon: BackgroundServer) -> None:
    page = httpx.get(f"{daemon.url}/")
    assert page.status_code == 200 and "Tiếp Đón" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    docs = httpx.get(f"{daemon.url}/docs").text
    for html in (page.text, docs):
        assert "cdn" not in html.lower()
        assert "https://" not in html
    for asset in ("/static/app.js", "/static/style.css"):
        assert httpx.get(f"{daemon.url}{asset}").status_code == 200
    spec = httpx.get(f"{daemon.url}/openapi.json").json()
    assert {"/api/v1/verify", "/api/v1/last", "/api/v1/events", "/api/v1/health"} <= set(
        spec["paths"])


def test_default_bind_is_loopback() -> None:
    from terminal.settings import parse_settings

    s = parse_settings({}, environ={})
    assert (s.http.host, s.http.port) == ("127.0.0.1", 8765)


def test_logs_carry_no_personal_data(daemon: BackgroundServer,
                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    verify(daemon, {"qr": CCCD_EXAMPLE})
    verify(daemon, {"qr": BHYT_OLD_EXAMPLE})
    verify(daemon, {"qr": CCCD_EXAMPLE.replace("01012000", "31022000")})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "verified kind=cccd_qr fp=" in text
    for secret in ("001098012345", "NGUYỄN", "Nguyễn", "Đoàn", "DN479GA78900007",
                   "C4906FC3A06E", "01012000", "token=", "password"):
        assert secret not in text
