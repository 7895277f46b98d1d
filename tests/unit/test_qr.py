"""QR payload parsers: the DOMAIN.md examples, round trips, real-world variants, bad input."""

from __future__ import annotations

import contextlib
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.samples import BHYT_NEW_EXAMPLE, BHYT_OLD_EXAMPLE, CCCD_EXAMPLE
from verify.errors import QrFormatError
from verify.model import BirthDate, Credential, CredentialKind, Sex
from verify.qr import (
    encode_bhyt_qr,
    encode_cccd_qr,
    parse_bhyt_qr,
    parse_cccd_qr,
    parse_qr,
)


def test_cccd_example() -> None:
    c = parse_qr(CCCD_EXAMPLE)
    assert c.kind is CredentialKind.CCCD_QR
    assert c.id_number == "001098012345"
    assert c.old_id_number is None
    assert c.full_name == "NGUYỄN VĂN B"
    assert c.date_of_birth == BirthDate(2000, 1, 1)
    assert c.sex is Sex.FEMALE
    assert c.address == "Hà Nội"
    assert c.issue_date == date(2022, 1, 1)


def test_bhyt_old_model_example() -> None:
    c = parse_qr(BHYT_OLD_EXAMPLE)
    assert c.kind is CredentialKind.BHYT_QR
    assert c.card_code == "DN479GA78900007"
    assert c.full_name == "Đoàn Phương Nhi"
    assert c.date_of_birth == BirthDate(1993, 9, 15)
    assert c.sex is Sex.FEMALE
    assert c.address == "213/1 Nguyễn Văn Cừ - p3- Q5"
    assert c.registered_facility == "79012"
    assert (c.valid_from, c.valid_to, c.issue_date) == (
        date(2016, 9, 1), date(2016, 12, 31), date(2016, 9, 16))
    assert c.benefit_digit == 4
    assert c.five_years_date is None


def test_bhyt_new_model_example() -> None:
    c = parse_qr(BHYT_NEW_EXAMPLE)
    assert c.card_code == "0111077012"
    assert c.full_name == "Nguyễn Tiến Đạt"
    assert c.sex is Sex.MALE
    assert c.address is None
    assert c.registered_facility == "01C54"
    assert c.valid_to is None
    assert c.five_years_date == date(2027, 10, 1)  # leading space tolerated
    assert c.issuing_place == "Quận Cầu Giấy, Thành phố Hà Nội"


def test_credential_json_uses_contract_names() -> None:
    out = parse_qr(CCCD_EXAMPLE).to_json()
    assert out == {
        "kind": "cccd_qr", "id_number": "001098012345", "full_name": "NGUYỄN VĂN B",
        "date_of_birth": "2000-01-01", "sex": "female", "address": "Hà Nội",
        "issue_date": "2022-01-01",
    }


@pytest.mark.parametrize("text", [
    CCCD_EXAMPLE + "||",                     # trailing empty fields (some cards)
    CCCD_EXAMPLE + "\r",                     # serial scanner terminator
    "\ufeff" + CCCD_EXAMPLE,                 # BOM from a text file
    "]Q1" + CCCD_EXAMPLE,                    # AIM symbology identifier prefix
    "001098012345|123456789|NGUYỄN VĂN B|01012000|NỮ|Hà Nội|01012022",  # old CMND, case
])
def test_cccd_variants(text: str) -> None:
    c = parse_qr(text)
    assert c.id_number == "001098012345"
    assert c.sex is Sex.FEMALE


@pytest.mark.parametrize("text", [
    BHYT_OLD_EXAMPLE.lower().replace("dn479ga78900007", "DN479GA78900007"),  # hex case
    BHYT_OLD_EXAMPLE.removesuffix("|$") + "$",  # $ glued to the last field
    BHYT_OLD_EXAMPLE.removesuffix("$"),         # $ lost by a scanner
    "DN479GA78900007|C4906FC3A06E205068C6B0C6A16E67204E6869|1993|2|$",  # year-only, short
    "DN479GA78900007|C4906FC3A06E205068C6B0C6A16E67204E6869|15091993|2|$",  # ddMMyyyy
])
def test_bhyt_variants(text: str) -> None:
    c = parse_qr(text)
    assert c.card_code == "DN479GA78900007"
    assert c.full_name == "Đoàn Phương Nhi"


def test_name_with_html_is_kept_verbatim() -> None:
    # Escaping is the page's job; the parser keeps the text exactly as read.
    c = parse_qr("001098012345||<img src=x onerror=alert(1)>|01012000|Nữ|Hà Nội|01012022")
    assert c.full_name == "<img src=x onerror=alert(1)>"


MALFORMED = {
    "empty": "",
    "spaces": "   ",
    "junk_10kb": "A" * 10_000,
    "junk_with_bars_10kb": "|".join(["x"] * 5000),
    "cccd_too_few_fields": "001098012345||NGUYỄN VĂN B|01012000|Nữ",
    "cccd_id_11_digits": "00109801234||NGUYỄN VĂN B|01012000|Nữ|Hà Nội|01012022",
    "cccd_impossible_dob": "001098012345||NGUYỄN VĂN B|31022000|Nữ|Hà Nội|01012022",
    "cccd_month_13": "001098012345||NGUYỄN VĂN B|01132000|Nữ|Hà Nội|01012022",
    "cccd_bad_sex": "001098012345||NGUYỄN VĂN B|01012000|X|Hà Nội|01012022",
    "cccd_empty_name": "001098012345|||01012000|Nữ|Hà Nội|01012022",
    "cccd_bad_old_id": "001098012345|12AB|NGUYỄN VĂN B|01012000|Nữ|Hà Nội|01012022",
    "cccd_bad_issue_date": "001098012345||NGUYỄN VĂN B|01012000|Nữ|Hà Nội|99999999",
    "control_chars": "001098012345||NGUYỄN\x00VĂN B|01012000|Nữ|Hà Nội|01012022",
    "embedded_newline": "001098012345||NGUYỄN\nVĂN B|01012000|Nữ|Hà Nội|01012022",
    "bhyt_odd_hex": "DN479GA78900007|C4906|15/09/1993|2|$",
    "bhyt_bad_hex": "DN479GA78900007|ZZ4906FC|15/09/1993|2|$",
    "bhyt_hex_not_utf8": "DN479GA78900007|C3C3|15/09/1993|2|$",
    "bhyt_hex_control_char": "DN479GA78900007|4E0007|15/09/1993|2|$",
    "bhyt_card_14_chars": "DN479GA7890000|C4906FC3A06E|15/09/1993|2|$",
    "bhyt_card_benefit_9": "DN979GA78900007|C4906FC3A06E|15/09/1993|2|$",
    "bhyt_card_lowercase_object_junk": "D1479GA78900007|C4906FC3A06E|15/09/1993|2|$",
    "bhyt_card_cccd": "001098012345|C4906FC3A06E|15/09/1993|2|$",
    "bhyt_impossible_dob": "DN479GA78900007|C4906FC3A06E|30/02/1993|2|$",
    "bhyt_bad_sex": "DN479GA78900007|C4906FC3A06E|15/09/1993|3|$",
    "bhyt_too_few_fields": "DN479GA78900007|C4906FC3A06E|$",
    "bhyt_bad_valid_to": BHYT_OLD_EXAMPLE.replace("31/12/2016", "32/12/2016"),
    "bhyt_bad_facility": BHYT_OLD_EXAMPLE.replace("79 - 012", "79 - 0123456"),
    "bhyt_year_1700": "DN479GA78900007|C4906FC3A06E|15/09/1700|2|$",
    "url": "https://example.invalid/?q=1",
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_payloads_raise_our_error(text: str) -> None:
    with pytest.raises(QrFormatError) as info:
        parse_qr(text)
    # The message names the problem but never echoes the payload (personal data).
    assert info.value.vi and info.value.en
    if len(text) > 12:
        assert text[:12] not in str(info.value)


def test_kind_specific_parsers_refuse_the_other_kind() -> None:
    with pytest.raises(QrFormatError):
        parse_cccd_qr(BHYT_OLD_EXAMPLE)
    with pytest.raises(QrFormatError):
        parse_bhyt_qr(CCCD_EXAMPLE)


# -- round trips -------------------------------------------------------------------------
VIET_LETTERS = (
    "AĂÂBCDĐEÊGHIKLMNOÔƠPQRSTUƯVXY"
    "àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ"
)
names = st.lists(st.text(alphabet=VIET_LETTERS, min_size=1, max_size=8), min_size=1,
                 max_size=5).map(" ".join)
days = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))
addresses = st.text(alphabet=VIET_LETTERS + " ,/0123456789-", min_size=1, max_size=60).map(
    lambda s: " ".join(s.split())).filter(bool)


@settings(max_examples=200, deadline=None)
@given(id12=st.from_regex(r"[0-9]{12}", fullmatch=True), name=names, dob=days,
       sex=st.sampled_from(Sex), address=addresses, issued=days,
       old=st.one_of(st.none(), st.from_regex(r"[0-9]{9}", fullmatch=True)))
def test_cccd_round_trip(id12: str, name: str, dob: date, sex: Sex, address: str,
                         issued: date, old: str | None) -> None:
    c = Credential(kind=CredentialKind.CCCD_QR, id_number=id12, old_id_number=old,
                   full_name=name, date_of_birth=BirthDate.of(dob), sex=sex, address=address,
                   issue_date=issued)
    assert parse_qr(encode_cccd_qr(c)) == c


card_codes = st.one_of(
    st.from_regex(r"[A-Z]{2}[1-5][0-9]{12}", fullmatch=True),
    st.from_regex(r"[0-9]{10}", fullmatch=True),
)


@settings(max_examples=200, deadline=None)
@given(card=card_codes, name=names, dob=st.one_of(days.map(BirthDate.of),
       st.integers(1900, 2099).map(BirthDate)), sex=st.sampled_from(Sex),
       address=st.one_of(st.none(), addresses), facility=st.from_regex(r"[0-9]{2}[0-9A-Z]{3}",
       fullmatch=True), valid_from=days, valid_to=st.one_of(st.none(), days),
       five=st.one_of(st.none(), days), digit=st.one_of(st.none(), st.integers(1, 5)),
       place=st.one_of(st.none(), addresses))
def test_bhyt_round_trip(card: str, name: str, dob: BirthDate, sex: Sex, address: str | None,
                         facility: str, valid_from: date, valid_to: date | None,
                         five: date | None, digit: int | None, place: str | None) -> None:
    c = Credential(kind=CredentialKind.BHYT_QR, card_code=card, full_name=name,
                   date_of_birth=dob, sex=sex, address=address, registered_facility=facility,
                   valid_from=valid_from, valid_to=valid_to, issue_date=valid_from,
                   five_years_date=five, benefit_digit=digit, issuing_place=place)
    assert parse_qr(encode_bhyt_qr(c)) == c


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(text: str) -> None:
    with contextlib.suppress(QrFormatError):
        parse_qr(text)
