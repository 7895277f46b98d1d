"""The gateway protocol's pure half: login answers, times, forms, card-check answers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from verify.errors import RegistryAuthError, RegistryProtocolError
from verify.model import BirthDate, Sex
from verify.registry import (
    CardQuery,
    encode_check_form,
    encode_login_form,
    parse_check_answer,
    parse_gateway_time,
    parse_login_answer,
    password_md5,
)

API_KEY = {"access_token": "a", "id_token": "b", "token_type": "Bearer", "username": "01C54_BV",
           "expires_in": "2024-08-29T08:33:08.5454145Z"}
LOGIN = {"maKetQua": "200", "APIKey": API_KEY}


def test_md5_password() -> None:
    assert password_md5("abc") == "900150983cd24fb0d6963f7d28e17f72"
    assert encode_login_form("01C54_BV", "abc") == {
        "username": "01C54_BV", "password": "900150983cd24fb0d6963f7d28e17f72"}


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-08-29T08:33:08.5454145Z", datetime(2024, 8, 29, 8, 33, 8, 545414, tzinfo=UTC)),
    ("2024-08-29T08:33:08Z", datetime(2024, 8, 29, 8, 33, 8, tzinfo=UTC)),
    ("2024-08-29T08:33:08", datetime(2024, 8, 29, 8, 33, 8, tzinfo=UTC)),
    ("2024-08-29T15:33:08.5+07:00", datetime(2024, 8, 29, 8, 33, 8, 500000, tzinfo=UTC)),
])
def test_expiry_is_an_absolute_time(text: str, expected: datetime) -> None:
    assert parse_gateway_time(text) == expected


@pytest.mark.parametrize("text", ["3600", "", "2024-13-01T00:00:00Z", "tomorrow",
                                  "2099-01-01T00:00:00+99:99",  # no such offset
                                  "9999-12-31T23:59:59-23:59"])  # past year 9999 in UTC
def test_bad_expiry(text: str) -> None:
    with pytest.raises(RegistryProtocolError):
        parse_gateway_time(text)


def test_login_answer() -> None:
    token = parse_login_answer(LOGIN)
    assert (token.access_token, token.id_token, token.username) == ("a", "b", "01C54_BV")
    assert token.is_valid(datetime(2024, 8, 29, 8, 0, tzinfo=UTC))
    assert not token.is_valid(datetime(2024, 8, 29, 8, 33, tzinfo=UTC))  # within the margin


@pytest.mark.parametrize(("body", "error"), [
    ({"maKetQua": "401", "APIKey": None}, RegistryAuthError),
    ([], RegistryProtocolError),
    ({"APIKey": {}}, RegistryProtocolError),
    ({"maKetQua": "200"}, RegistryProtocolError),
    ({"maKetQua": "200", "APIKey": {**API_KEY, "id_token": ""}}, RegistryProtocolError),
])
def test_bad_login_answers(body: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_login_answer(body)


def test_check_form() -> None:
    q = CardQuery("GD4010111077012", "Nguyễn Tiến Đạt", BirthDate(1988), "Cán Bộ",
                  "001190000001")
    assert encode_check_form(q) == {"maThe": "GD4010111077012", "hoTen": "Nguyễn Tiến Đạt",
                                    "ngaySinh": "1988", "hoTenCb": "Cán Bộ",
                                    "cccdCb": "001190000001"}


def test_check_answer_fields() -> None:
    a = parse_check_answer({
        "maKetQua": "004", "ghiChu": "ok", "maThe": "GD4010111077012", "hoTen": "Nguyễn  Văn A",
        "ngaySinh": "01/02/1990", "gioiTinh": "Nữ", "maDKBD": "01C54", "gtTheTu": "01/01/2026",
        "gtTheDen": "31/12/2026", "maKV": "k1", "ngayDu5Nam": "", "maTheMoi": "GD4010111077099",
        "gtTheTuMoi": "01/01/2027", "gtTheDenMoi": "31/12/2027", "dsLichSuKCB2018": None,
    })
    assert a.code == "004" and a.full_name == "Nguyễn Văn A"
    assert a.date_of_birth == BirthDate(1990, 2, 1) and a.sex is Sex.FEMALE
    assert a.valid_to == date(2026, 12, 31) and a.area_code == "K1"
    assert a.five_years_date is None
    assert a.new_valid_to == date(2027, 12, 31)


def test_numeric_code_is_normalised() -> None:
    assert parse_check_answer({"maKetQua": 0}).code == "000"
    assert parse_check_answer({"maKetQua": "10"}).code == "010"


@pytest.mark.parametrize("body", [
    "not an object", [], {}, {"maKetQua": None}, {"maKetQua": True}, {"maKetQua": "OK"},
    {"maKetQua": "000", "gtTheDen": "31/02/2026"},
    {"maKetQua": "000", "ngaySinh": "someday"},
    {"maKetQua": "000", "maKV": "K9"},
    {"maKetQua": "000", "hoTen": {"x": 1}},
])
def test_broken_answers_are_protocol_errors(body: object) -> None:
    with pytest.raises(RegistryProtocolError):
        parse_check_answer(body)
