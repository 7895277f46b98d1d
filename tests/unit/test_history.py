"""Visit history at reception: the Lskcb2025 answer parsed without diagnoses, the registry
simulator's fictional histories over real HTTP, and a history in trouble never touching the
eligibility."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from terminal.app import create_app
from terminal.server import BackgroundServer, start_background
from tests.helpers.daemon import daemon_services, sim_control, terminal_settings
from tests.helpers.samples import TODAY
from verify.errors import RegistryProtocolError
from verify.history import history_json, parse_history_answer

DAT = "001088004321||Nguyễn Tiến Đạt|29031988|Nam|Hà Nội|01072021"  # came this morning too
NHI_BHYT = {"card_code": "DN479GA78900007", "full_name": "Đoàn Phương Nhi",
            "date_of_birth": "15/09/1993"}


def visit(ngay_vao: str, **kw: Any) -> dict[str, Any]:
    return {"maHoSo": "1", "maCSKCB": "01929", "ngayVao": ngay_vao, "ngayRa": None,
            "tenBenh": "Viêm dạ dày", "tinhTrang": "4", "kqDieuTri": "1", "lyDoVV": "1", **kw}


def test_the_answer_is_parsed_newest_first_without_diagnoses() -> None:
    code, visits = parse_history_answer({"maKetQua": "000", "dsLichSuKCB2025": [
        visit("202503101030"), visit("202603160745", maCSKCB="01C54", lyDoVV="2")]})
    assert code == "000" and [v.facility for v in visits] == ["01C54", "01929"]
    shown = history_json(visits, date(2026, 3, 16))
    assert shown["visited_today"] is True and shown["messages"][0]["code"] == "visit_today"
    assert shown["visits"][0]["reason_vi"] == "Cấp cứu"
    assert "Viêm" not in repr(visits) + repr(shown)  # the diagnosis is gone at the parse
    assert shown["visits"][1]["admitted"] == datetime(2025, 3, 10, 10, 30).isoformat()


@pytest.mark.parametrize("answer", [
    [], {"maKetQua": "000", "dsLichSuKCB2025": "x"}, {"maKetQua": "000",
                                                        "dsLichSuKCB2025": [{"ngayVao": "1"}]},
    {"maKetQua": "000", "dsLichSuKCB2025": [visit("202513401030")]},
    {"maKetQua": "000", "dsLichSuKCB2025": [7]}])
def test_malformed_answers_are_protocol_errors(answer: object) -> None:
    with pytest.raises(RegistryProtocolError):
        parse_history_answer(answer)


def test_a_null_list_is_no_visit() -> None:
    assert parse_history_answer({"maKetQua": "000", "dsLichSuKCB2025": None}) == ("000", [])


def serve(sim: BackgroundServer, tmp_path: Path, **overrides: object) -> BackgroundServer:
    settings = terminal_settings(sim.url, tmp_path / "data", **overrides)
    return start_background(create_app(settings, daemon_services(settings)))


@pytest.fixture
def daemon(sim: BackgroundServer, tmp_path: Path) -> Iterator[BackgroundServer]:
    server = serve(sim, tmp_path)
    yield server
    server.stop()


def history_after(server: BackgroundServer, body: dict[str, str]) -> tuple[dict[str, Any],
                                                                          dict[str, Any]]:
    answer = httpx.post(f"{server.url}/api/v1/verify", json=body, timeout=10).json()
    deadline = time.monotonic() + 20
    while True:
        h = httpx.get(f"{server.url}/api/v1/last/history", timeout=10).json()
        if h["status"] != "pending" or time.monotonic() > deadline:
            return answer, h
        time.sleep(0.05)


def test_the_history_shows_visits_and_a_visit_today(daemon: BackgroundServer) -> None:
    answer, h = history_after(daemon, {"qr": DAT})
    assert answer["status"] == "eligible"
    assert h["status"] == "ok" and h["visited_today"] is True
    assert h["visits"][0]["admitted"] == f"{TODAY.isoformat()}T07:45:00"
    assert h["messages"][0]["vi"].startswith("Người bệnh đã có lượt khám hôm nay")
    assert "chẩn đoán" not in str(h)
    _, other = history_after(daemon, NHI_BHYT)
    assert other["status"] == "ok" and other["visited_today"] is False


@pytest.mark.parametrize("fault", ["http500", "garbage", "undocumented", "unauthorized"])
def test_a_broken_history_is_unavailable_and_the_eligibility_stands(
        sim: BackgroundServer, daemon: BackgroundServer, fault: str) -> None:
    sim_control(sim, history_fault=fault)
    answer, h = history_after(daemon, {"qr": DAT})
    assert answer["status"] == "eligible" and answer["source"] == "registry"
    assert h["status"] == "unavailable" and h["messages"][0]["code"] == "history_unavailable"


def test_a_hanging_history_does_not_delay_the_answer(sim: BackgroundServer,
                                                     tmp_path: Path) -> None:
    sim_control(sim, history_fault="hang")
    server = serve(sim, tmp_path, registry__timeout_seconds=1)
    try:
        answer, h = history_after(server, {"qr": DAT})  # the answer returns before the history
        assert answer["status"] == "eligible"
        assert h["status"] == "unavailable" and h["reason"] == "TimeoutError"
    finally:
        server.stop()


def test_history_off_by_the_setting(sim: BackgroundServer, tmp_path: Path) -> None:
    server = serve(sim, tmp_path, registry__visit_history=False)
    try:
        _, h = history_after(server, {"qr": DAT})
        assert h["status"] == "off"
        assert httpx.get(f"{sim.url}/sim/stats").json().get("history", 0) == 0
    finally:
        server.stop()


def test_the_simulator_refuses_json_bodies_and_strangers(sim: BackgroundServer) -> None:
    r = httpx.post(f"{sim.url}/api/egw/Lskcb2025", data={"maThe": "x"})
    assert r.json()["maKetQua"] == "401"
