"""Reading printed cards (issue 24): the MRZ from OCR text, the text parsers, what verify/
keeps, each card model read from a rendered image, frames with no card, ``tiepdon image
read``."""

from __future__ import annotations

import json
import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from readers.devices.camera.card import find_card
from readers.devices.ocr import Tesseract
from readers.doubles.cards import NEGATIVES, draw_card, person, place_on_desk
from readers.emrtd.mrz import Td1
from readers.ocr import text as t
from readers.ocr.layouts import LAYOUTS, CardModel, FieldSpec
from readers.ocr.mrz import mrz_name, read_td1
from readers.ocr.read import CardText, match_title, read_field
from terminal.flow.cardimage import CardImageReader
from tests.helpers.cards import TODAY, clean, degraded, tables
from tests.helpers.cli import run
from verify.model import CredentialKind, Sex
from verify.ocr import credential_from_mrz, credential_from_text

# ICAO 9303-5 §4.2.2 / Appendix A, the TD1 specimen (Utopia, Anna Maria Eriksson).
ICAO_TD1 = ("I<UTOD231458907<<<<<<<<<<<<<<<\n"
            "7408122F1204159UTO<<<<<<<<<<<6\n"
            "ERIKSSON<<ANNA<MARIA<<<<<<<<<<")
# DOMAIN.md §4: a Vietnamese TD1 (public mock; all check digits valid).
VN_TD1 = ("IDVNM0930470641001093047064<<2\n"
          "9301054M3301052VNM<<<<<<<<<<<8\n"
          "UNG<<HOANG<HIEP<<<<<<<<<<<<<<<")


# -- MRZ --------------------------------------------------------------------------------------
def test_icao_td1_specimen() -> None:
    td1 = read_td1(ICAO_TD1)
    assert td1 is not None
    assert (td1.document_number, td1.date_of_birth, td1.date_of_expiry, td1.sex) == (
        "D23145890", "740812", "120415", "F")
    assert mrz_name(td1) == "ERIKSSON ANNA MARIA"


def test_vietnamese_td1_and_its_access_key() -> None:
    td1 = read_td1(VN_TD1)
    assert td1 is not None and td1.id_number == "001093047064"
    c = credential_from_mrz(td1, tables(), today=TODAY)
    assert c is not None
    j = c.to_json()
    assert j["kind"] == "cccd_mrz" and j["read_from"] == "mrz"
    assert j["access_key"] == {"document_number": "093047064", "date_of_birth": "930105",
                               "date_of_expiry": "330105"}
    assert (j["id_number"], j["date_of_birth"], j["sex"], j["expiry_date"]) == (
        "001093047064", "1993-01-05", "male", "2033-01-05")


def test_ocr_confusions_are_repaired_where_only_digits_can_be() -> None:
    noisy = ("IDVNMO93O47O641OO1O93O47O64<<2\n"
             "93O1O54M33O1O52VNM«<<<<<<<<<< 8\n"
             "UNG<<HOANG<HIEP<<<<<<<<<<<")
    td1 = read_td1(noisy)
    assert td1 is not None and td1.document_number == "093047064"


@pytest.mark.parametrize("broken", [
    VN_TD1.replace("0930470641", "0930470651"),           # document number ≠ its check digit
    VN_TD1.replace("9301054M", "9301064M"),               # birth date ≠ its check digit
    VN_TD1.replace("3301052VNM", "3301053VNM"),           # expiry check digit
    VN_TD1.replace("<<<<<<<<<<<8", "<<<<<<<<<<<9"),       # composite
    VN_TD1.replace("001093047064<<2", "001093047065<<2"),  # optional data (composite catches)
    VN_TD1.split("\n", 1)[1],                             # line 1 missing
    "",
])
def test_check_digit_failures_are_refused(broken: str) -> None:
    assert read_td1(broken) is None


def test_a_line_one_character_long_needs_its_id_to_agree() -> None:
    extra = VN_TD1.replace("IDVNM093", "IDVNM0Q93")  # OCR added a character
    td1 = read_td1(extra)
    assert td1 is not None and td1.document_number == "093047064"


@pytest.mark.parametrize("line2", ["9301054M3301052VNM<KKKK<KKKK<K8",   # OCR-B fillers as K
                                   "9301054M3301052VNMCK<<KK<KKKKKK8",  # and one too many
                                   "9301054M3301052VNM<<K<<<<<K8"])     # and two lost
def test_fillers_read_as_letters_on_a_vietnamese_line_2(line2: str) -> None:
    l1, _, l3 = VN_TD1.splitlines()
    td1 = read_td1(f"{l1}\n{line2}\n{l3}")
    assert td1 is not None and td1.document_number == "093047064"
    assert (td1.date_of_birth, td1.date_of_expiry) == ("930105", "330105")


def test_a_rebuilt_line_2_still_needs_its_check_digits() -> None:
    l1, _, l3 = VN_TD1.splitlines()
    assert read_td1(f"{l1}\n9301054M3301052VNM<KKKK<KKKK<K9\n{l3}") is None  # composite
    assert read_td1(f"{l1}\n9301054M3301053VNM<KKKK<KKKK<K8\n{l3}") is None  # expiry


def test_mrz_with_wrong_id_structure_keeps_the_key_but_not_the_id() -> None:
    from readers.doubles.cards import Person

    p = Person("999093047064", "UNG HOANG HIEP", __import__("datetime").date(1993, 1, 5), True,
               __import__("datetime").date(2033, 1, 5), "", "", "", "", TODAY, "")
    td1 = read_td1("\n".join(p.mrz_lines()))
    assert td1 is not None
    c = credential_from_mrz(td1, tables(), today=TODAY)
    assert c is not None
    assert c.id_number is None and c.access_key is not None  # province 999 does not exist


def _td1(l1: str, l2: str, l3: str = "UNG<<HOANG<HIEP<<<<<<<<<<<<<<<") -> Td1:
    """A TD1 whose document-number, date and composite check digits are made to hold."""
    from readers.emrtd.mrz import check_digit, parse_td1

    l1 = l1[:14] + check_digit(l1[5:14]) + l1[15:]
    l2 = (l2[:6] + check_digit(l2[:6]) + l2[7:14] + check_digit(l2[8:14]) + l2[15:29])
    composite = l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29]
    return parse_td1(l1 + l2 + check_digit(composite) + l3)


def test_the_ids_own_check_digit_must_hold() -> None:
    """Position 30 of line 1 is the 12-digit ID's check digit (DOMAIN.md §4); only the
    composite covered the ID's first three digits, so a province misread could pass. The key
    is kept (its parts have their own digits), the ID is left empty."""
    good = _td1("IDVNM0930470641001093047064<<2", "9301054M3301052VNM<<<<<<<<<<<0")
    assert good.id_number == "001093047064"
    bad = _td1("IDVNM0930470641001093047064<<7", "9301054M3301052VNM<<<<<<<<<<<0")
    assert bad.id_number is None
    c = credential_from_mrz(bad, tables(), today=TODAY)
    assert c is not None and c.id_number is None and c.access_key is not None
    assert _td1("IDVNM0930470641001093047064<<<",
                "9301054M3301052VNM<<<<<<<<<<<0").id_number is None


def test_an_mrz_date_that_is_no_day_gives_no_key_and_no_crash() -> None:
    """31 February with its check digit holding: the access key raised
    AccessKeyFormatError through the read (a file error in ``image read``; three retries and
    no phone-screen fallback in the camera worker). Now: no key, the rest as checked."""
    no_expiry_day = credential_from_mrz(_td1("IDVNM0930470641001093047064<<2",
                                             "9301054M3302312VNM<<<<<<<<<<<0"),
                                        tables(), today=TODAY)
    assert no_expiry_day is not None and no_expiry_day.access_key is None
    assert no_expiry_day.id_number == "001093047064"
    assert no_expiry_day.date_of_birth is not None
    # no birth day either: nothing is left that a check let through
    assert credential_from_mrz(_td1("IDVNM0930470641001093047064<<2",
                                    "9002314M3301052VNM<<<<<<<<<<<0"),
                               tables(), today=TODAY) is None


def test_an_mrz_birth_date_still_to_come_is_left_empty() -> None:
    """Born 31/12/26 read on 1/12/2026: the century chosen by the year alone gave a birth
    date in the future; the printed-text path drops such dates, now the MRZ path too."""
    c = credential_from_mrz(_td1("IDVNM0930470641001093047064<<2",
                                 "2612314M3301052VNM<<<<<<<<<<<0"), tables(), today=TODAY)
    assert c is not None and c.date_of_birth is None and c.access_key is not None


# -- text parsers -----------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "want"), [
    ("001098O12345", "001098012345"), ("0010 9801 2345\n", "001098012345"),
    ("00109801234", None), ("001098012345 001098012345", None), ("", None)])
def test_digit_run(raw: str, want: str | None) -> None:
    assert t.digit_run(raw, 12) == want


@pytest.mark.parametrize(("raw", "want"), [
    ("01/O1/2000", "01/01/2000"), ("31/02/1990", "31/02/1990"), ("1/1/2000", None),
    ("01/01/2000 02/02/2001", None), ("31708/1985", "31/08/1985"), ("03/0411960", "03/04/1960"),
    ("3170811985", "31/08/1985")])
def test_date_text(raw: str, want: str | None) -> None:
    assert t.date_text(raw) == want  # existence is verify's question


@pytest.mark.parametrize(("raw", "want"), [
    ("NGUYỄN VĂN AN\n", "NGUYỄN VĂN AN"), ("„ĐỖ THỊ HÀ F", "ĐỖ THỊ HÀ"),
    ("Nguyễn Văn An", None), ("NGUYỄN", None), ("12 34", None)])
def test_name_text(raw: str, want: str | None) -> None:
    assert t.name_text(raw) == want


@pytest.mark.parametrize(("raw", "want"), [
    ("Nam", "Nam"), ("Nữ\n", "Nữ"), ("Nu", "Nữ"), ("Nam Nữ", None), ("x", None)])
def test_sex_text(raw: str, want: str | None) -> None:
    assert t.sex_text(raw) == want


@pytest.mark.parametrize(("raw", "want"), [
    ("0111077012", "0111077012"), ("DN4790117012345", "DN4790117012345"),
    ("D14790117012345", None),
    ("DN4O90117012345", "DN4090117012345"),  # the province: digits by the code's structure
    # A tail with letters may be printed so (cards older than the BHXH number): never turned
    # into digits (G→6, B→8 made another card's code), left for staff.
    ("DN479GB78900007", None), ("DN479SG78900007", None), ("DN479GA78900007", None),
    ("DN479O117012345", None)])
def test_card_code_text(raw: str, want: str | None) -> None:
    assert t.card_code_text(raw) == want


def test_an_old_card_whose_code_has_letters_is_not_read_as_another_code(
        reader: CardImageReader) -> None:
    """A BHYT card of the old model whose code's tail has letters (DN479GB78900007): the
    read turned G and B into 6 and 8 and offered DN4796878900007 as read from the card."""
    import random
    from dataclasses import replace

    from readers.doubles.cards import draw_bhyt_old, person, place_on_desk

    rnd = random.Random("unit:legacy-code")
    for code in ("DN479GB78900007", "DN479SG78900007"):
        p = replace(person(rnd), card_code15=code)
        frame, _ = place_on_desk(draw_bhyt_old(p, rnd), rnd, tilt=6)
        c = reader.read_frame(frame, today=TODAY)
        assert c is None or c.card_code is None, (code, c and c.card_code)


@pytest.mark.parametrize(("title", "model"), [
    ("CĂN CƯỚC CÔNG DÂN\nCitizen Identity Card", CardModel.CCCD_2021),
    ("CĂN CƯỚC CÔNG DÂN\nCitizen 1dentity Card", CardModel.CCCD_2021),
    ("CĂN CƯỚC\nIDENTITY CARD", CardModel.CAN_CUOC_2024),
    # one line of the title lost to glare or a finger: the other lines still name the model
    ("SOCIALIST REPUBLIC OF VIET NAM\nIDENTITY CARD", CardModel.CAN_CUOC_2024),
    ("SOCIALIST REPUBLIC OF VIET NAM\nCĂN CƯỚC\n1DENTTT", CardModel.CAN_CUOC_2024),
    ("SOCIALIST REPUBLIC OF VIET NAM\nCĂN CƯỚC CÔNG DÂN\nCitizen Identity Card",
     CardModel.CCCD_2021),
    ("SOCIALIST REPUBLIC OF VIET NAM\nCitizen Identity Card", None),
    ("Độc lập - Tự do - Hạnh phúc\nCĂN CƯỚC CÔNG DÂN", CardModel.CCCD_2016),
    ("GIẤY CHỨNG MINH NHÂN DÂN", CardModel.CMND),
    ("THẺ BẢO HIỂM Y TẾ", CardModel.BHYT),
    ("VIETCOMBANK DEBIT", None), ("", None)])
def test_title_words_choose_the_model(title: str, model: CardModel | None) -> None:
    layout = match_title(title)
    assert (layout.model if layout else None) == model


class Opinions:
    """A FieldReader whose reads of one box are scripted: (text, confidence) per opinion."""

    def __init__(self, *reads: tuple[str, int]) -> None:
        self.reads, self.asked = reads, 0
        self.opinions = len(reads)

    def __call__(self, spec: FieldSpec, *, opinion: int = 0) -> tuple[str, int]:
        self.asked += 1
        return self.reads[opinion]


ID = "001096717367"


@pytest.mark.parametrize(("reads", "want", "asked"), [
    (((ID, 96), ("", 0), ("", 0)), ID, 1),                  # sure: one read
    (((ID, 40), (ID, 12), ("", 0)), ID, 2),                 # doubtful, a second read agrees
    (((ID, 40), ("001096717361", 90), (ID, 5)), ID, 3),     # the third settles it
    (((ID, 40), ("001096717361", 90), ("", 0)), None, 3),   # two reads, two values: nothing
    ((("", 40), (ID, 90), (ID, 30)), ID, 3),                # the first saw nothing
    ((("00109671736", 90), (ID, 90), (ID, 90)), None, 1),   # sure but malformed: not guessed
])
def test_a_doubtful_key_field_needs_two_reads_that_agree(
        reads: tuple[tuple[str, int], ...], want: str | None, asked: int) -> None:
    layout = next(lay for lay in LAYOUTS if lay.model is CardModel.CCCD_2021)
    reader = Opinions(*reads)
    assert read_field(reader, layout, layout.field("id_number")) == want
    assert reader.asked == asked


def test_a_number_nothing_else_checks_is_always_read_twice() -> None:
    """The 10-digit BHXH number has no check digit and no structure: a confident misread
    (2241675717 read as 2241678717, 88 %) must meet a second read that agrees."""
    layout = next(lay for lay in LAYOUTS if lay.model is CardModel.BHYT)
    spec = layout.field("card_code")
    sure_but_alone = Opinions(("2241678717", 96), ("2241675717", 90), ("", 0))
    assert read_field(sure_but_alone, layout, spec) is None
    confirmed = Opinions(("2241675717", 96), ("2241675717", 60), ("", 0))
    assert read_field(confirmed, layout, spec) == "2241675717" and confirmed.asked == 2


def test_a_finger_over_a_corner_does_not_tilt_the_card() -> None:
    """The convex hull wraps a finger hanging over a corner; each side is fitted to the
    card's own straight edge instead, so the field boxes land on the fields."""
    rnd = random.Random("unit:finger")
    face = draw_card(CardModel.CCCD_2021, person(rnd), rnd)
    for corner in range(4):
        frame, truth = place_on_desk(face, rnd, tilt=8)
        cx, cy = truth[corner]
        cv2.ellipse(frame, (int(cx), int(cy)), (50, 95), 35.0 + 40 * corner, 0, 360,
                    (130, 155, 205), -1)
        found = find_card(frame)
        assert found is not None
        width = float(np.linalg.norm(truth[1] - truth[0]))
        # corners are matched in order (TL TR BR BL, the card upright)
        assert float(np.abs(found - truth).max()) < 0.02 * width


def test_the_mrz_box_is_read_only_where_three_lines_run_across() -> None:
    """The cheap look before the MRZ's OCR: the back shows three lines there, upright; turned
    over, a front or a printed page does not — and is not read as an MRZ."""
    from readers.devices.camera.card import box_of, card_views, text_lines
    from readers.ocr.layouts import MRZ

    def lines(kind: str) -> list[int]:
        return [text_lines(box_of(v, MRZ)) for v in card_views(clean(kind).frame)]

    back = lines("cccd_back")
    assert back[0] == 3 and 3 not in back[1:]
    assert 3 not in lines("cccd_2021")


# -- what verify keeps ------------------------------------------------------------------------
def _front(**fields: str) -> CardText:
    return CardText(CardModel.CCCD_2021, fields)


def test_id_agreeing_with_birth_and_sex_is_kept() -> None:
    c = credential_from_text(_front(id_number="001300012345", date_of_birth="01/01/2000",
                                    sex="Nữ", full_name="NGUYỄN THỊ B"), tables(), today=TODAY)
    assert c is not None and c.kind is CredentialKind.CCCD_TEXT
    assert (c.id_number, c.sex, c.full_name) == ("001300012345", Sex.FEMALE, "NGUYỄN THỊ B")


@pytest.mark.parametrize("fields", [
    {"id_number": "001098012345", "date_of_birth": "01/01/2000"},  # ID says born 1998
    {"id_number": "001300012345", "sex": "Nam"},                   # ID says female
    {"id_number": "099300012345"},                                 # no province 99
    {"id_number": "001900012345"},                                 # born 2290: not yet
])
def test_an_id_that_fails_a_check_is_left_empty(fields: dict[str, str]) -> None:
    c = credential_from_text(_front(full_name="NGUYỄN THỊ B", **fields), tables(), today=TODAY)
    assert c is not None and c.id_number is None
    if "date_of_birth" in fields:
        assert c.date_of_birth is None  # either side may be the misread one


def test_impossible_or_future_dates_are_left_empty() -> None:
    c = credential_from_text(_front(full_name="LÊ VĂN C", date_of_birth="31/02/1990",
                                    expiry_date="31/02/2030"), tables(), today=TODAY)
    assert c is not None and c.date_of_birth is None and c.expiry_date is None
    c = credential_from_text(_front(full_name="LÊ VĂN C", date_of_birth="01/01/1990",
                                    expiry_date="01/01/1980"), tables(), today=TODAY)
    assert c is not None and c.date_of_birth is not None and c.expiry_date is None
    c = credential_from_text(_front(full_name="LÊ VĂN C", date_of_birth="01/01/2030"),
                             tables(), today=TODAY)
    assert c is not None and c.date_of_birth is None


@pytest.mark.parametrize(("code", "kept"), [
    ("0111077012", True), ("DN4790117012345", True), ("ZZ4790117012345", False),
    ("DN4990117012345", False), ("9911077012", False)])
def test_bhyt_card_codes_checked_against_the_tables(code: str, kept: bool) -> None:
    c = credential_from_text(CardText(CardModel.BHYT, {"card_code": code,
                                                       "full_name": "TRẦN VĂN D"}),
                             tables(), today=TODAY)
    assert c is not None and (c.card_code == code) is kept


def test_nothing_worth_showing_is_none() -> None:
    assert credential_from_text(_front(sex="Nam"), tables(), today=TODAY) is None


# -- rendered images --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reader() -> CardImageReader:
    return CardImageReader(tables(), engine=Tesseract())


@pytest.mark.parametrize("kind", ["cccd_2021", "can_cuoc_2024", "cccd_2016", "cmnd", "bhyt",
                                  "bhyt_old"])
def test_each_front_is_read_from_a_rendered_image(reader: CardImageReader, kind: str) -> None:
    s = clean(kind)
    assert s.person is not None
    c = reader.read_frame(s.frame, today=TODAY)
    assert c is not None
    p = s.person
    number = {"cmnd": c.old_id_number, "bhyt": c.card_code, "bhyt_old": c.card_code}.get(
        kind, c.id_number)
    want = {"cmnd": p.cmnd, "bhyt": p.bhxh, "bhyt_old": p.card_code15}.get(kind, p.id_number)
    assert number == want
    assert c.date_of_birth is not None and c.date_of_birth.exact == p.date_of_birth
    assert c.full_name == p.full_name
    assert c.kind is (CredentialKind.BHYT_TEXT if kind.startswith("bhyt")
                      else CredentialKind.CCCD_TEXT)


def test_the_back_gives_the_chip_access_key(reader: CardImageReader) -> None:
    s = clean("cccd_back")
    assert s.person is not None
    c = reader.read_frame(s.frame, today=TODAY)
    assert c is not None and c.kind is CredentialKind.CCCD_MRZ and c.access_key is not None
    p = s.person
    assert (c.access_key.document_number, c.access_key.date_of_birth,
            c.access_key.date_of_expiry) == (p.id_number[3:], p.date_of_birth.strftime("%y%m%d"),
                                             p.expiry.strftime("%y%m%d"))
    assert c.id_number == p.id_number


@pytest.mark.parametrize("kind", NEGATIVES)
@pytest.mark.parametrize("seed", [1, 2])
def test_frames_with_no_card_read_nothing(reader: CardImageReader, kind: str, seed: int) -> None:
    assert reader.read_frame(degraded(kind, seed).frame, today=TODAY) is None


def test_image_read_command(tmp_path: Path) -> None:
    back, desk = tmp_path / "back.jpg", tmp_path / "desk.png"
    cv2.imwrite(str(back), clean("cccd_back").frame)
    cv2.imwrite(str(desk), degraded("desk").frame)
    p = run("image", "read", str(back), str(desk))
    assert p.returncode == 0, p.stderr
    first, second = (json.loads(line) for line in p.stdout.splitlines())
    assert first["file"] == str(back) and "error" not in first
    (mrz,) = first["credentials"]
    assert mrz["kind"] == "cccd_mrz" and mrz["read_from"] == "mrz"
    assert set(mrz["access_key"]) == {"document_number", "date_of_birth", "date_of_expiry"}
    assert len(mrz["id_number"]) == 12 and mrz["document_number"] == mrz["id_number"][3:]
    assert second == {"file": str(desk), "credentials": []}
    missing = run("image", "read", str(tmp_path / "nope.jpg"))
    assert missing.returncode == 2
    assert json.loads(missing.stdout) == {"file": str(tmp_path / "nope.jpg"), "credentials": [],
                                          "error": "file not found"}


def test_image_read_takes_the_qr_first(tmp_path: Path) -> None:
    import random

    from readers.doubles.cards import draw_card, person, place_on_desk
    from readers.doubles.render import render_qr

    rnd = random.Random(5)
    p = person(rnd)
    payload = f"{p.id_number}||{p.full_name}|{p.date_of_birth:%d%m%Y}|{p.sex_text}|Hà Nội|01012022"
    face = draw_card(CardModel.CCCD_2021, p, rnd, qr=render_qr(payload, module_px=4))
    frame, _ = place_on_desk(face, rnd, tilt=3)
    image = tmp_path / "front.png"
    cv2.imwrite(str(image), frame)
    out = run("image", "read", str(image))
    assert out.returncode == 0, out.stderr
    (c,) = json.loads(out.stdout)["credentials"]
    assert (c["kind"], c["read_from"], c["id_number"]) == ("cccd_qr", "qr", p.id_number)
