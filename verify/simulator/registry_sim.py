"""``tiepdon registry-sim``: a server speaking the registry gateway protocol (DOMAIN.md §5).

Backed by a SQLite file (or memory) seeded with fictional people, one or more for every
result code; latency, a failure rate and whole-server faults (HTTP 500, non-JSON, hang, an
undocumented code) are switchable at start or at run time through ``POST /sim/control``, so
demos, tests, benchmarks and HIS integrators' training all meet the same behaviour. Nobody in
the seed exists; the numbers are made up.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from verify.errors import CardCodeError, DateFormatError
from verify.history import HISTORY_PATH
from verify.ids import parse_card_code
from verify.model import VN_TZ, is_digits, parse_birth_date, parse_dmy, same_name
from verify.registry import CHECK_PATH, LOGIN_PATH, password_md5

_DOB_PARAM = re.compile(r"[0-9]{2}/[0-9]{2}/[0-9]{4}|[0-9]{4}")
# bad_expiry: a login whose token expiry is no real time (an offset of +99:99), and every
# held token refused, so a client must log in again and meet it.
FAULTS = ("none", "http500", "garbage", "hang", "undocumented", "unauthorized", "bad_expiry")

# Training accounts and officers. The demo settings use the first account and officer.
DEMO_FACILITY = "01C54"
DEMO_USERNAME = "01C54_BV"
DEMO_PASSWORD = "tiepdon-demo"  # noqa: S105 - a public training password of the simulator
DEMO_OFFICER_NAME = "Nguyễn Thị Lan"
DEMO_OFFICER_ID = "001190000001"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS account (username TEXT PRIMARY KEY, password_md5 TEXT NOT NULL,
    facility TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS officer (facility TEXT NOT NULL, cccd TEXT NOT NULL,
    name TEXT NOT NULL, PRIMARY KEY (facility, cccd));
CREATE TABLE IF NOT EXISTS card (
    card_code TEXT PRIMARY KEY, bhxh TEXT, cccd TEXT, full_name TEXT NOT NULL,
    dob TEXT NOT NULL, sex TEXT NOT NULL, address TEXT, facility TEXT, agency TEXT,
    valid_from TEXT, valid_to TEXT, area TEXT, five_years TEXT, forced_code TEXT,
    new_card_code TEXT, new_valid_from TEXT, new_valid_to TEXT, new_facility TEXT,
    new_facility_name TEXT);
CREATE INDEX IF NOT EXISTS card_bhxh ON card (bhxh);
CREATE INDEX IF NOT EXISTS card_cccd ON card (cccd);
"""


def _d(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def seed_people(today: date) -> list[dict[str, Any]]:
    """Fictional people covering every result code, with validity relative to ``today``."""
    y = today.year
    jan1, dec31, next_dec31 = date(y, 1, 1), date(y, 12, 31), date(y + 1, 12, 31)
    base = {"facility": DEMO_FACILITY, "agency": "BHXH quận Cầu Giấy",
            "valid_from": _d(jan1), "valid_to": _d(next_dec31), "address": "Hà Nội"}

    def person(card: str, name: str, dob: str, sex: str, **kw: Any) -> dict[str, Any]:
        row = {**base, "card_code": card, "bhxh": card[5:] if is_digits(card[5:]) else None,
               "full_name": name, "dob": dob, "sex": sex}
        row.update(kw)
        return row

    return [
        # The examples of DOMAIN.md §3, so the demo answers for them.
        person("SV4010123456789", "Nguyễn Văn B", "01/01/2000", "Nữ", cccd="001098012345",
               valid_to=_d(dec31)),
        person("DN479GA78900007", "Đoàn Phương Nhi", "15/09/1993", "Nữ", facility="79012",
               agency="BHXH quận 5", address="213/1 Nguyễn Văn Cừ, P3, Q5, TP HCM"),
        person("GD4010111077012", "Nguyễn Tiến Đạt", "29/03/1988", "Nam",
               valid_from="01/07/2023", five_years="01/10/2027", cccd="001088004321"),
        # 000 with the details that change what staff see.
        person("CN3010200000001", "Trần Thị Hoa", "1965", "Nữ"),
        person("TE1010200000002", "Lê Minh Khang", "12/05/2021", "Nam", cccd="001221000222"),
        person("HT3790200000003", "Phạm Văn Sơn", "02/02/1950", "Nam", facility="79012",
               valid_to=_d(today + timedelta(days=20)), five_years="01/01/2015", area="K2"),
        person("DT2620200000004", "Y Bhăm Niê", "20/10/1979", "Nam", facility="62001",
               area="K1"),
        person("AK4010200000040", "Mai Thanh Tâm", "07/07/1977", "Nữ"),
        person("LH4010200000041", "Bùi Văn Tư", "03/03/1946", "Nam"),
        # 010: expired.
        person("HC4010200000005", "Vũ Đức Thắng", "11/11/1970", "Nam",
               valid_from=_d(date(y - 1, 1, 1)), valid_to=_d(today - timedelta(days=40))),
        # 003: old card expired, new card issued; 004: old card still valid, new card issued.
        person("HS4010200000006", "Hoàng Thu Trang", "09/09/2008", "Nữ",
               valid_from=_d(date(y - 1, 1, 1)), valid_to=_d(today - timedelta(days=10)),
               new_card_code="HS4010200000016", new_valid_from=_d(today - timedelta(days=9)),
               new_valid_to=_d(next_dec31), new_facility=DEMO_FACILITY,
               new_facility_name="Trạm Y tế phường Dịch Vọng"),
        person("DN4790200000007", "Đặng Quốc Bảo", "30/04/1985", "Nam", facility="79012",
               new_card_code="DN4790200000017", new_valid_from=_d(dec31 + timedelta(days=1)),
               new_valid_to=_d(date(y + 2, 12, 31)), new_facility="79012",
               new_facility_name="Bệnh viện quận 5"),
        # Codes the registry decides from its own records.
        person("QN5010200000008", "Trịnh Công Minh", "01/06/1990", "Nam", forced_code="001"),
        person("CA5010200000009", "Lý Thị Hạnh", "14/02/1992", "Nữ", forced_code="002"),
        person("GD4010200000010", "Đỗ Văn Lâm", "21/08/1981", "Nam", forced_code="110"),
        person("DN4010200000020", "Ngô Thị Mai", "05/05/1988", "Nữ", forced_code="120"),
        person("DN4010200000021", "Dương Văn Hùng", "15/12/1983", "Nam", forced_code="121"),
        person("DN4010200000022", "Tạ Thị Thu", "25/01/1991", "Nữ", forced_code="122"),
        person("DN4010200000023", "Kiều Văn Phúc", "19/03/1975", "Nam", forced_code="123"),
        person("DN4010200000024", "Lò Thị Sen", "30/10/1989", "Nữ", forced_code="124"),
        person("TE1010200000030", "Phan Gia Huy", "01/01/2024", "Nam", forced_code="130"),
        person("GD4010200000080", "Cao Văn Khải", "08/08/1968", "Nam", forced_code="080"),
        person("GD4010200000090", "Quách Thị Yến", "09/09/1969", "Nữ", forced_code="090"),
        person("GD4010200000100", "Hồ Văn Nam", "10/10/1960", "Nam", forced_code="100"),
        person("GD4010200000101", "Lưu Thị Bích", "11/01/1961", "Nữ", forced_code="101"),
        person("GD4010200000500", "Âu Văn Tài", "12/02/1962", "Nam", forced_code="500"),
        person("GD4010200000099", "Mạc Thị Ngọc", "13/03/1963", "Nữ", forced_code="999"),
    ]


def seed_records(today: date) -> list[dict[str, Any]]:
    """The seeded people as snapshot records (ISO dates), for the demo's offline snapshot."""
    out = []
    for row in seed_people(today):
        if row.get("forced_code") and row["forced_code"] not in {"110"}:
            continue
        out.append({
            "card_code": row["card_code"], "bhxh_number": row["bhxh"] or "",
            "cccd_number": row.get("cccd") or "", "full_name": row["full_name"],
            "date_of_birth": row["dob"], "sex": row["sex"], "valid_from": row["valid_from"],
            "valid_to": row["valid_to"], "registered_facility": row["facility"],
            "area_code": row.get("area") or "", "five_years_date": row.get("five_years") or "",
        })
    return out


def open_registry(path: str, *, today: date) -> sqlite3.Connection:
    """Open (and on first use create and seed) a simulator database; OSError when the file
    cannot be opened or is not a simulator database."""
    try:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.executescript(_SCHEMA)
    except sqlite3.Error as e:
        raise OSError(f"cannot open {path}: {e}") from None
    if conn.execute("SELECT COUNT(*) FROM account").fetchone()[0] == 0:
        conn.execute("BEGIN")
        for facility in (DEMO_FACILITY, "79012"):
            conn.execute("INSERT INTO account VALUES (?, ?, ?)",
                         (f"{facility}_BV", password_md5(DEMO_PASSWORD), facility))
            conn.execute("INSERT INTO officer VALUES (?, ?, ?)",
                         (facility, DEMO_OFFICER_ID, DEMO_OFFICER_NAME))
        for row in seed_people(today):
            cols = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            conn.execute(f"INSERT INTO card ({cols}) VALUES ({marks})",  # noqa: S608 - own keys
                         list(row.values()))
        conn.execute("COMMIT")
    return conn


class SimControl(BaseModel):
    latency_ms: float = Field(default=0.0, ge=0, le=120_000)
    failure_rate: float = Field(default=0.0, ge=0, le=1)
    fault: str = Field(default="none", pattern="^(" + "|".join(FAULTS) + ")$")
    token_ttl_seconds: int = Field(default=3600, ge=1)
    # The visit-history endpoint's own fault, so it can fail while card checks work.
    history_fault: str = Field(default="none", pattern="^(" + "|".join(FAULTS) + ")$")


@dataclass
class _Session:
    facility: str
    username: str
    id_token: str
    client: str
    expires: datetime


@dataclass
class SimState:
    conn: sqlite3.Connection
    control: SimControl
    today: Callable[[], date]
    now: Callable[[], datetime]
    rng: random.Random
    lock: threading.Lock = field(default_factory=threading.Lock)
    tokens: dict[str, _Session] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1


async def _fields(request: Request) -> dict[str, str]:
    """A form-encoded or JSON body, as the gateway accepts both for login."""
    body = await request.body()
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            data = json.loads(body)
            return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (ValueError, UnicodeDecodeError):
        return {}


def _answer(row: sqlite3.Row | None, code: str, note: str) -> dict[str, Any]:
    out: dict[str, Any] = {"maKetQua": code, "ghiChu": note}
    keys = ("maThe", "hoTen", "ngaySinh", "gioiTinh", "diaChi", "maDKBD", "cqBHXH", "gtTheTu",
            "gtTheDen", "maKV", "ngayDu5Nam", "maSoBHXH", "maTheCu", "maTheMoi", "gtTheTuMoi",
            "gtTheDenMoi", "maDKBDMoi", "tenDKBDMoi")
    out.update(dict.fromkeys(keys))
    out["dsLichSuKCB2018"] = None
    out["dsLichSuKT2018"] = None
    if row is not None:
        out.update({
            "maThe": row["card_code"], "hoTen": row["full_name"], "ngaySinh": row["dob"],
            "gioiTinh": row["sex"], "diaChi": row["address"], "maDKBD": row["facility"],
            "cqBHXH": row["agency"], "gtTheTu": row["valid_from"], "gtTheDen": row["valid_to"],
            "maKV": row["area"], "ngayDu5Nam": row["five_years"], "maSoBHXH": row["bhxh"],
        })
        if row["new_card_code"]:
            out.update({"maTheCu": row["card_code"], "maTheMoi": row["new_card_code"],
                        "gtTheTuMoi": row["new_valid_from"], "gtTheDenMoi": row["new_valid_to"],
                        "maDKBDMoi": row["new_facility"], "tenDKBDMoi": row["new_facility_name"]})
    return out


def _lookup(state: SimState, session: _Session, f: dict[str, str]) -> dict[str, Any]:
    """The gateway's decision for one card check, in the order a real check fails."""
    card = f.get("maThe", "").strip().upper()
    name, dob_text = f.get("hoTen", ""), f.get("ngaySinh", "")
    if not card or not name.strip() or not _DOB_PARAM.fullmatch(dob_text):
        return _answer(None, "205", "Sai định dạng tham số")
    try:
        dob = parse_birth_date(dob_text)
    except DateFormatError:
        return _answer(None, "205", "Sai định dạng tham số")
    conn = state.conn
    officer = conn.execute("SELECT name FROM officer WHERE facility = ? AND cccd = ?",
                           (session.facility, f.get("cccdCb", "").strip())).fetchone()
    if officer is None:
        return _answer(None, "054", "CCCD cán bộ chưa được đăng ký")
    if not same_name(officer["name"], f.get("hoTenCb", "")):
        return _answer(None, "055", "Họ tên cán bộ không khớp CCCD")
    row = None
    if len(card) == 15:
        row = conn.execute("SELECT * FROM card WHERE card_code = ?", (card,)).fetchone()
        if row is None:
            other = conn.execute("SELECT * FROM card WHERE bhxh = ?", (card[5:],)).fetchone()
            if other is not None:
                mine = other["card_code"]
                code = "052" if mine[3:5] != card[3:5] else "053" if mine[2] != card[2] else "051"
                return _answer(None, code, "Sai mã thẻ")
    elif len(card) == 10 and is_digits(card):
        row = conn.execute("SELECT * FROM card WHERE bhxh = ?", (card,)).fetchone()
    elif len(card) == 12 and is_digits(card):
        row = conn.execute("SELECT * FROM card WHERE cccd = ?", (card,)).fetchone()
    if row is None:
        try:
            parse_card_code(card)
        except CardCodeError:
            return _answer(None, "051", "Mã thẻ không đúng")
        return _answer(None, "050", "Không có thông tin thẻ")
    if row["forced_code"]:
        code = row["forced_code"]
        return _answer(row if code in {"110", "120", "121", "122", "123", "124"} else None,
                       code, "")
    if not same_name(row["full_name"], name):
        code = "061" if name.strip()[:1].casefold() == row["full_name"][:1].casefold() else "060"
        return _answer(None, code, "Họ tên không đúng")
    if not parse_birth_date(row["dob"]).matches(dob):
        return _answer(None, "070", "Ngày sinh không đúng")
    today = state.today()
    if row["new_card_code"]:
        old_to = parse_dmy(row["valid_to"])
        if old_to < today:
            return _answer(row, "003", "Thẻ cũ hết giá trị sử dụng, đã được cấp thẻ mới")
        return _answer(row, "004", "Thẻ cũ còn giá trị sử dụng, đã được cấp thẻ mới")
    if row["valid_to"] and parse_dmy(row["valid_to"]) < today:
        return _answer(row, "010", "Thẻ hết giá trị sử dụng")
    return _answer(row, "000", "Thông tin thẻ chính xác")


HISTORY_FACILITIES = ("01C54", "01001", "01929", "79012", "01T01")


def fictional_history(row: sqlite3.Row, today: date) -> list[dict[str, Any]]:
    """Visits made up from the card code (the same every time): none to four in the last
    year; the demo person also came this morning, so the page shows the 'seen today'
    warning. Diagnoses are placeholders — reception must never show them."""
    rng = random.Random(row["card_code"])  # noqa: S311 - fictional data, not security
    days = sorted(rng.sample(range(3, 360), rng.randrange(1, 5)))
    morning = datetime.combine(today, datetime.min.time()).replace(hour=7, minute=45)
    stamps = [morning - timedelta(days=d, hours=rng.randrange(-6, 1)) for d in days]
    if row["full_name"] == "Nguyễn Tiến Đạt":
        stamps.insert(0, morning)
    out = []
    for i, at in enumerate(stamps):
        out.append({"maHoSo": f"{row['card_code'][-6:]}{i:04d}",
                    "maCSKCB": rng.choice(HISTORY_FACILITIES),
                    "ngayVao": at.strftime("%Y%m%d%H%M"),
                    "ngayRa": (at + timedelta(hours=2)).strftime("%Y%m%d%H%M"),
                    "tenBenh": "(chẩn đoán mô phỏng)", "tinhTrang": "1", "kqDieuTri": "1",
                    "lyDoVV": rng.choice("1134")})
    return out


def _history(state: SimState, f: dict[str, str]) -> dict[str, Any]:
    card = f.get("maThe", "").strip().upper()
    name, dob_text = f.get("hoTen", ""), f.get("ngaySinh", "")
    if not card or not name.strip() or not _DOB_PARAM.fullmatch(dob_text):
        return {"maKetQua": "205", "ghiChu": "Sai định dạng tham số", "dsLichSuKCB2025": None}
    column = ("card_code" if len(card) == 15 else "bhxh" if len(card) == 10 else "cccd")
    row = state.conn.execute(f"SELECT * FROM card WHERE {column} = ?",  # noqa: S608 - fixed names
                             (card,)).fetchone()
    if row is None or not same_name(row["full_name"], name):
        return {"maKetQua": "050", "ghiChu": "Không có thông tin thẻ", "dsLichSuKCB2025": None}
    visits = fictional_history(row, state.today())
    return {"maKetQua": "000", "ghiChu": None, "dsLichSuKCB2025": visits or None}


def create_sim_app(
    conn: sqlite3.Connection,
    control: SimControl | None = None,
    *,
    today: Callable[[], date] | None = None,
    now: Callable[[], datetime] | None = None,
    seed: int | None = None,
) -> FastAPI:
    state = SimState(
        conn=conn,
        control=control or SimControl(),
        today=today or (lambda: datetime.now(VN_TZ).date()),  # the gateway keeps Vietnam time
        now=now or (lambda: datetime.now(UTC)),
        rng=random.Random(seed),  # noqa: S311 - simulated failures, not security
    )
    app = FastAPI(title="tiepdon registry simulator", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.sim = state

    @app.get(LOGIN_PATH)
    async def probe(request: Request) -> Response:
        """What a desk's reachability probe meets (a GET on the login path, no credentials):
        the gateway's "wrong method", or the whole-server fault a test set (hang, HTTP 500)."""
        state.count("probe")
        if state.control.fault == "hang":
            await asyncio.sleep(3600)
        if state.control.fault == "http500":
            return PlainTextResponse("Internal Server Error", status_code=500)
        return JSONResponse({"detail": "Method Not Allowed"}, status_code=405)

    @app.post(LOGIN_PATH)
    async def take_token(request: Request) -> Response:
        state.count("login")
        f = await _fields(request)
        with state.lock:
            acct = conn.execute("SELECT * FROM account WHERE username = ?",
                                (f.get("username", ""),)).fetchone()
        if acct is None or not secrets.compare_digest(acct["password_md5"],
                                                      f.get("password", "").lower()):
            return JSONResponse({"maKetQua": "401", "APIKey": None})
        expires = state.now() + timedelta(seconds=state.control.token_ttl_seconds)
        token, id_token = secrets.token_hex(24), secrets.token_hex(16)
        state.tokens[token] = _Session(acct["facility"], acct["username"], id_token,
                                       request.client.host if request.client else "",
                                       expires)
        # .NET prints 7 fraction digits; the real gateway does too.
        stamp = expires.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
        if state.control.fault == "bad_expiry":
            stamp = "2099-01-01T00:00:00+99:99"
        return JSONResponse({"maKetQua": "200", "APIKey": {
            "access_token": token, "id_token": id_token, "token_type": "Bearer",
            "username": acct["username"], "expires_in": stamp}})

    def _session(request: Request) -> _Session | None:
        """The session a card check or history query's query-string token belongs to."""
        q = request.query_params
        session = state.tokens.get(q.get("token", ""))
        client = request.client.host if request.client else ""
        if (session is None or session.expires <= state.now() or session.client != client
                or not secrets.compare_digest(session.id_token, q.get("id_token", ""))
                or session.username != q.get("username")):
            return None
        return session

    @app.post(HISTORY_PATH)
    async def visit_history(request: Request) -> Response:
        state.count("history")
        fault = state.control.history_fault
        if fault == "hang":
            await asyncio.sleep(3600)
        if fault == "http500":
            return PlainTextResponse("Internal Server Error", status_code=500)
        if fault == "garbage":
            return Response("<html><body>Service Unavailable</body></html>",
                            media_type="text/html")
        if fault == "undocumented":
            return JSONResponse({"maKetQua": "000", "dsLichSuKCB2025": "not a list"})
        if _session(request) is None or fault == "unauthorized":
            return JSONResponse({"maKetQua": "401", "ghiChu": "Token không hợp lệ"})
        if request.headers.get("content-type", "").startswith("application/json"):
            # JSON bodies are refused in practice (DOMAIN.md §7): form bodies only.
            return JSONResponse({"maKetQua": "205", "ghiChu": "Sai định dạng tham số"})
        f = await _fields(request)
        with state.lock:
            return JSONResponse(_history(state, f))

    @app.post(CHECK_PATH)
    async def check_card(request: Request) -> Response:
        state.count("check")
        ctl = state.control
        if ctl.latency_ms:
            await asyncio.sleep(ctl.latency_ms / 1000)
        if ctl.fault == "hang":
            await asyncio.sleep(3600)
        if ctl.fault == "http500" or (ctl.failure_rate and state.rng.random() < ctl.failure_rate):
            state.count("failed")
            return PlainTextResponse("Internal Server Error", status_code=500)
        if ctl.fault == "garbage":
            return Response("<html><body>Service Unavailable</body></html>",
                            media_type="text/html")
        if ctl.fault in ("unauthorized", "bad_expiry"):
            return JSONResponse({"maKetQua": "401", "ghiChu": "Token không hợp lệ"})
        session = _session(request)
        if session is None:
            return JSONResponse({"maKetQua": "401", "ghiChu": "Token không hợp lệ"})
        f = await _fields(request)
        with state.lock:
            answer = _lookup(state, session, f)
        if ctl.fault == "undocumented":
            answer["maKetQua"] = "999"
        state.count(f"code_{answer['maKetQua']}")
        return JSONResponse(answer)

    @app.post("/sim/control")
    async def set_control(new: SimControl) -> SimControl:
        state.control = new
        return new

    @app.get("/sim/control")
    async def get_control() -> SimControl:
        return state.control

    @app.get("/sim/stats")
    async def stats() -> dict[str, int]:
        return dict(state.counts)

    @app.post("/sim/revoke-tokens")
    async def revoke_tokens() -> dict[str, int]:
        n = len(state.tokens)
        state.tokens.clear()
        return {"revoked": n}

    return app
