"""The registry client against the simulator over real HTTP on loopback.

Every seeded result code, token reuse and refresh, and each way a gateway breaks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from terminal.server import BackgroundServer, bind
from tests.helpers.daemon import sim_control, sim_server
from verify.adapters.registry_client import RegistryClient
from verify.errors import RegistryAuthError, RegistryProtocolError, RegistryUnavailable
from verify.model import BirthDate, parse_birth_date
from verify.registry import CardQuery, RegistryAnswer
from verify.simulator.registry_sim import (
    DEMO_OFFICER_ID,
    DEMO_OFFICER_NAME,
    DEMO_PASSWORD,
    DEMO_USERNAME,
)


def query(card: str, name: str, dob: str, officer: tuple[str, str] = (
        DEMO_OFFICER_NAME, DEMO_OFFICER_ID)) -> CardQuery:
    return CardQuery(card, name, parse_birth_date(dob), *officer)


def run_checks(url: str, *queries: CardQuery, password: str = DEMO_PASSWORD,
               timeout: float = 5.0, now: object = None) -> list[RegistryAnswer]:
    async def go() -> list[RegistryAnswer]:
        kwargs = {"now": now} if now else {}
        client = RegistryClient(url, DEMO_USERNAME, password, timeout_seconds=timeout,
                                **kwargs)  # type: ignore[arg-type]
        try:
            return [await client.check(q) for q in queries]
        finally:
            await client.aclose()

    return asyncio.run(go())


def stats(sim: BackgroundServer) -> dict[str, int]:
    counts: dict[str, int] = httpx.get(f"{sim.url}/sim/stats").json()
    return counts


# (card, name, dob) → the code the simulator must answer.
CASES = [
    ("GD4010111077012", "Nguyễn Tiến Đạt", "29/03/1988", "000"),
    ("0111077012", "Nguyễn Tiến Đạt", "29/03/1988", "000"),        # BHXH number
    ("001098012345", "NGUYỄN VĂN B", "01/01/2000", "000"),          # CCCD number, upper case
    ("CN3010200000001", "Trần Thị Hoa", "1965", "000"),              # year-only DOB
    ("QN5010200000008", "Trịnh Công Minh", "01/06/1990", "001"),
    ("CA5010200000009", "Lý Thị Hạnh", "14/02/1992", "002"),
    ("HS4010200000006", "Hoàng Thu Trang", "09/09/2008", "003"),
    ("DN4790200000007", "Đặng Quốc Bảo", "30/04/1985", "004"),
    ("HC4010200000005", "Vũ Đức Thắng", "11/11/1970", "010"),
    ("GD4019999999999", "Ai Đó", "01/01/1990", "050"),
    ("XY4010111077012", "Nguyễn Tiến Đạt", "29/03/1988", "051"),
    ("GD4790111077012", "Nguyễn Tiến Đạt", "29/03/1988", "052"),
    ("GD3010111077012", "Nguyễn Tiến Đạt", "29/03/1988", "053"),
    ("GD4010111077012", "Trần Tiến Đạt", "29/03/1988", "060"),
    ("GD4010111077012", "Nguyễn Tiến Dat", "29/03/1988", "061"),
    ("GD4010111077012", "Nguyễn Tiến Đạt", "28/03/1988", "070"),
    ("GD4010200000080", "Cao Văn Khải", "08/08/1968", "080"),
    ("GD4010200000090", "Quách Thị Yến", "09/09/1969", "090"),
    ("GD4010200000100", "Hồ Văn Nam", "10/10/1960", "100"),
    ("GD4010200000101", "Lưu Thị Bích", "11/01/1961", "101"),
    ("GD4010200000010", "Đỗ Văn Lâm", "21/08/1981", "110"),
    ("DN4010200000020", "Ngô Thị Mai", "05/05/1988", "120"),
    ("DN4010200000021", "Dương Văn Hùng", "15/12/1983", "121"),
    ("DN4010200000022", "Tạ Thị Thu", "25/01/1991", "122"),
    ("DN4010200000023", "Kiều Văn Phúc", "19/03/1975", "123"),
    ("DN4010200000024", "Lò Thị Sen", "30/10/1989", "124"),
    ("TE1010200000030", "Phan Gia Huy", "01/01/2024", "130"),
    ("GD4010200000500", "Âu Văn Tài", "12/02/1962", "500"),
    ("GD4010200000099", "Mạc Thị Ngọc", "13/03/1963", "999"),
]


def test_every_seeded_code_over_http(sim: BackgroundServer) -> None:
    answers = run_checks(sim.url, *(query(c, n, d) for c, n, d, _ in CASES))
    assert [a.code for a in answers] == [code for *_, code in CASES]
    ok = answers[0]
    assert ok.full_name == "Nguyễn Tiến Đạt" and ok.registered_facility == "01C54"
    assert ok.valid_to is not None and ok.date_of_birth == BirthDate(1988, 3, 29)
    assert answers[6].new_card_code == "HS4010200000016"
    # One login served all the checks: the token is reused until its expiry.
    assert stats(sim)["login"] == 1


def test_officer_codes(sim: BackgroundServer) -> None:
    a, b = run_checks(
        sim.url,
        query("GD4010111077012", "Nguyễn Tiến Đạt", "29/03/1988", (DEMO_OFFICER_NAME,
                                                                     "001190009999")),
        query("GD4010111077012", "Nguyễn Tiến Đạt", "29/03/1988", ("Người Khác",
                                                                     DEMO_OFFICER_ID)),
    )
    assert (a.code, b.code) == ("054", "055")


def test_parameter_format_error_from_the_gateway(sim: BackgroundServer) -> None:
    token = httpx.post(f"{sim.url}/api/token/take",
                       json={"username": DEMO_USERNAME, "password": "x"}).json()
    assert token["maKetQua"] == "401"
    from verify.registry import password_md5

    key = httpx.post(f"{sim.url}/api/token/take", data={
        "username": DEMO_USERNAME, "password": password_md5(DEMO_PASSWORD)}).json()["APIKey"]
    r = httpx.post(f"{sim.url}/api/egw/KQNhanLichSuKCB2024", params={
        "token": key["access_token"], "id_token": key["id_token"], "username": DEMO_USERNAME,
        "password": password_md5(DEMO_PASSWORD)},
        data={"maThe": "GD4010111077012", "hoTen": "A", "ngaySinh": "1988-03-29"})
    assert r.json()["maKetQua"] == "205"


def test_wrong_password_is_an_auth_error(sim: BackgroundServer) -> None:
    with pytest.raises(RegistryAuthError):
        run_checks(sim.url, query("GD4010111077012", "Nguyễn Tiến Đạt", "29/03/1988"),
                   password="wrong")


def test_token_refreshed_at_its_absolute_expiry(sim: BackgroundServer) -> None:
    sim_control(sim, token_ttl_seconds=3600)
    clock = [datetime.now(UTC)]
    q = query("GD4010111077012", "Nguyễn Tiến Đạt", "29/03/1988")

    async def go() -> list[str]:
        client = RegistryClient(sim.url, DEMO_USERNAME, DEMO_PASSWORD, now=lambda: clock[0])
        try:
            codes = [(await client.check(q)).code]
            clock[0] += timedelta(minutes=30)      # still valid: reused
            codes.append((await client.check(q)).code)
            clock[0] += timedelta(minutes=31)      # past expiry minus margin: log in again
            codes.append((await client.check(q)).code)
            return codes
        finally:
            await client.aclose()

    assert asyncio.run(go()) == ["000", "000", "000"]
    assert stats(sim)["login"] == 2


def test_revoked_token_gets_one_relogin(sim: BackgroundServer) -> None:
    q = query("GD4010111077012", "Nguyễn Tiến Đạt", "29/03/1988")

    async def go() -> list[str]:
        client = RegistryClient(sim.url, DEMO_USERNAME, DEMO_PASSWORD)
        try:
            first = (await client.check(q)).code
            httpx.post(f"{sim.url}/sim/revoke-tokens").raise_for_status()
            second = (await client.check(q)).code
            return [first, second]
        finally:
            await client.aclose()

    assert asyncio.run(go()) == ["000", "000"]
    assert stats(sim)["login"] == 2


@pytest.mark.parametrize(("fault", "error"), [
    ("http500", RegistryUnavailable),
    ("garbage", RegistryProtocolError),
    ("hang", RegistryUnavailable),
])
def test_broken_gateway(sim: BackgroundServer, fault: str, error: type[Exception]) -> None:
    sim_control(sim, fault=fault)
    with pytest.raises(error):
        run_checks(sim.url, query("GD4010111077012", "Nguyễn Tiến Đạt", "29/03/1988"),
                   timeout=0.5)


def test_undocumented_code_passes_through(sim: BackgroundServer) -> None:
    sim_control(sim, fault="undocumented")
    [a] = run_checks(sim.url, query("GD4010111077012", "Nguyễn Tiến Đạt", "29/03/1988"))
    assert a.code == "999"


def test_failure_rate_fails_some_lookups(tmp_path: Path) -> None:
    from verify.simulator.registry_sim import SimControl

    server = sim_server(tmp_path, SimControl(failure_rate=0.5))
    try:
        failures = 0
        for _ in range(20):
            try:
                run_checks(server.url, query("GD4010111077012", "Nguyễn Tiến Đạt",
                                             "29/03/1988"))
            except RegistryUnavailable:
                failures += 1
        assert 0 < failures < 20
    finally:
        server.stop()


@pytest.fixture
def closed_port() -> Iterator[str]:
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    yield f"http://127.0.0.1:{port}"


def test_nothing_listening_is_unavailable(closed_port: str) -> None:
    with pytest.raises(RegistryUnavailable):
        run_checks(closed_port, query("GD4010111077012", "Nguyễn Tiến Đạt", "29/03/1988"))


def test_health_follows_the_last_exchange(sim: BackgroundServer) -> None:
    async def go() -> list[str]:
        client = RegistryClient(sim.url, DEMO_USERNAME, DEMO_PASSWORD, timeout_seconds=0.5)
        try:
            seen = [client.health.status]
            await client.probe()
            seen.append(client.health.status)
            sim_control(sim, fault="http500")
            with pytest.raises(RegistryUnavailable):
                await client.check(query("GD4010111077012", "Nguyễn Tiến Đạt", "29/03/1988"))
            seen.append(client.health.status)
            return seen
        finally:
            await client.aclose()

    assert asyncio.run(go()) == ["unknown", "ok", "degraded"]


@pytest.mark.parametrize("kind", ["endless", "huge"])
def test_an_endless_or_huge_answer_is_refused_not_accumulated(kind: str) -> None:
    """A gateway (or something posing as it) that never stops sending: the client keeps at
    most MAX_ANSWER_BYTES and says so."""
    import http.server
    import threading

    class Endless(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            if kind == "huge":
                self.send_header("content-length", str(50 << 20))
            self.end_headers()
            try:
                self.wfile.write(b'{"maKetQua": "000", "pad": "')
                for _ in range(2000):
                    self.wfile.write(b"x" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(RegistryProtocolError, match="too large"):
            run_checks(f"http://127.0.0.1:{httpd.server_address[1]}",
                       query("GD4010111077012", "Nguyễn Tiến Đạt", "29/03/1988"), timeout=5)
    finally:
        httpd.shutdown()
