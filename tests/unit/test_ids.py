"""The 12-digit citizen ID and the BHYT card code (DOMAIN.md §2)."""

from __future__ import annotations

import pytest

from verify.errors import CardCodeError, IdNumberError
from verify.ids import (
    CardCodeKind,
    cross_check_id,
    normalize_facility,
    parse_card_code,
    parse_citizen_id,
)
from verify.model import BirthDate, Sex
from verify.tables import Tables


@pytest.mark.parametrize(("number", "sex", "year", "province"), [
    ("001098012345", Sex.MALE, 1998, "001"),
    ("079185000123", Sex.FEMALE, 1985, "079"),
    ("001203000001", Sex.MALE, 2003, "001"),
    ("096300000007", Sex.FEMALE, 2000, "096"),
    ("001410000001", Sex.MALE, 2110, "001"),
])
def test_citizen_id_fields(number: str, sex: Sex, year: int, province: str) -> None:
    cid = parse_citizen_id(number)
    assert (cid.sex, cid.birth_year, cid.province_code) == (sex, year, province)
    assert cid.document_number == number[3:]


@pytest.mark.parametrize("bad", ["", "00109801234", "0010980123456", "00109801234a",
                                 "٠٠١٠٩٨٠١٢٣٤٥", "001 098 012 345"])
def test_citizen_id_rejects(bad: str) -> None:
    with pytest.raises(IdNumberError):
        parse_citizen_id(bad)


def test_cross_check_agrees(tables: Tables) -> None:
    cid = parse_citizen_id("001300012345")  # female, born 2000, Hà Nội
    assert cross_check_id(cid, date_of_birth=BirthDate(2000, 1, 1), sex=Sex.FEMALE,
                          province_names=tables.provinces) == []


def test_cross_check_finds_each_disagreement(tables: Tables) -> None:
    # DOMAIN.md's example: digit 0 says male born 1998, the QR says Nữ born 2000.
    cid = parse_citizen_id("001098012345")
    assert cross_check_id(cid, date_of_birth=BirthDate(2000, 1, 1), sex=Sex.FEMALE,
                          province_names=tables.provinces) == [
        "id_sex_mismatch", "id_birth_year_mismatch"]
    assert cross_check_id(parse_citizen_id("003098012345"), date_of_birth=None, sex=None,
                          province_names=tables.provinces) == ["id_province_unknown"]
    assert cross_check_id(parse_citizen_id("101098012345"), date_of_birth=None, sex=None,
                          province_names=tables.provinces) == ["id_province_unknown"]


def test_card_code_classic() -> None:
    c = parse_card_code(" gd4 01 0111077012 ")
    assert c.code == "GD4010111077012"
    assert c.kind is CardCodeKind.CLASSIC
    assert (c.object_code, c.benefit_digit, c.province, c.bhxh_number) == (
        "GD", 4, "01", "0111077012")
    assert not c.is_legacy


def test_card_code_legacy_tail_has_letters() -> None:
    c = parse_card_code("DN479GA78900007")
    assert c.is_legacy and c.bhxh_number is None and c.province == "79"


def test_card_code_with_his_facility_suffix() -> None:
    c = parse_card_code("GD401011107701201C54")
    assert c.code == "GD4010111077012"
    assert c.facility_suffix == "01C54"


def test_card_code_other_shapes() -> None:
    assert parse_card_code("0111077012").kind is CardCodeKind.BHXH
    assert parse_card_code("001098012345").kind is CardCodeKind.CCCD


@pytest.mark.parametrize("bad", ["", "GD4", "GD6010111077012", "G14010111077012",
                                 "GD4A10111077012", "GD40101110770123", "011107701",
                                 "GD4010111077012#", "ĐD4010111077012"])
def test_card_code_rejects(bad: str) -> None:
    with pytest.raises(CardCodeError):
        parse_card_code(bad)


def test_facility_forms_compare_equal() -> None:
    assert normalize_facility("79 - 012") == normalize_facility("79012") == "79012"
    assert normalize_facility("01 - c54") == "01C54"
