"""The card models and where their fields are printed, as data (DOMAIN.md §8).

Boxes are relative to the rectified card (ID-1, 85.6 × 54 mm, landscape, top-left origin):
``(x0, y0, x1, y1)`` in 0…1. Each value box holds the printed value only (its label sits
outside it), so the field can be read with its own language, whitelist and page mode. The
positions were drawn to match the project's rendered cards (``readers/doubles/cards.py``);
where a real card disagrees, correct the table here — nothing else holds a coordinate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

Box = tuple[float, float, float, float]

# ID-1 (ISO/IEC 7810): 85.6 × 54 mm.
CARD_ASPECT = 85.6 / 54.0
DIGITS = "0123456789"
DATE_CHARS = DIGITS + "/"
MRZ_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + DIGITS + "<"
CODE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + DIGITS
# Tesseract page-segmentation modes used here.
PSM_BLOCK = 6  # a uniform block of text
PSM_LINE = 7   # a single text line


class CardModel(StrEnum):
    CCCD_2021 = "cccd_2021"          # chip CCCD, front
    CCCD_BACK = "cccd_back"          # chip CCCD or thẻ căn cước, back: the TD1 MRZ
    CAN_CUOC_2024 = "can_cuoc_2024"  # thẻ căn cước (from 2024-07-01), front
    CCCD_2016 = "cccd_2016"          # CCCD without chip (2016–2021), front
    CMND = "cmnd"                    # chứng minh nhân dân, 9 digits, front
    BHYT = "bhyt"                    # paper BHYT card (2021 model: 10 digits; older: 15 chars)
    VSSID_BHYT = "vssid_bhyt"        # VssID's e-card screen (thẻ BHYT điện tử): SCREEN_LAYOUTS
    VNEID_CCCD = "vneid_cccd"        # VNeID's e-ID screen (căn cước điện tử): SCREEN_LAYOUTS


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One printed value: where it is and how the OCR engine should read it."""

    name: str
    box: Box
    lang: str = "vie"
    whitelist: str = ""
    psm: int = PSM_LINE
    # Below this lowest word confidence (0–100) the field is not used: a number with no check
    # digit (ID, BHXH number, a date) can pass every shape check and still be misread.
    min_confidence: int = 0
    # Text lines the box holds (a block of several is only read when the image shows as many).
    lines: int = 1
    # Always read a second way, however sure the first read: a number nothing else checks (the
    # 10-digit BHXH number has no check digit and no structure) misread with confidence would
    # otherwise stand alone.
    confirm: bool = False


@dataclass(frozen=True, slots=True)
class CardLayout:
    model: CardModel
    # The title words (upper case, diacritics folded) that must all be present / must be absent.
    needs: tuple[str, ...]
    refuses: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
    # Other sets of title words that identify the model as well (glare or a finger often hides
    # one line of a three-line title); ``refuses`` holds for them too.
    or_needs: tuple[tuple[str, ...], ...] = ()

    def titled(self, present: Callable[[str], bool]) -> bool:
        """Whether a title, through ``present`` (is this word in it?), names this model."""
        if any(present(w) for w in self.refuses):
            return False
        return any(all(present(w) for w in words) for words in (self.needs, *self.or_needs))

    def field(self, name: str) -> FieldSpec:
        return next(f for f in self.fields if f.name == name)


# The confidence a key field needs: on a tuning set (seed 20261203, 98 cards) the misread
# numbers and dates that passed every shape check had 26–81, most right ones 89–96.
KEY_CONFIDENCE = 85
# The card code reads lower (letters and digits in one word: right 15-character codes gave
# 64–84 there) and has more to check (object code and province tables); its misread was at 41.
CODE_CONFIDENCE = 80


def _id(box: Box) -> FieldSpec:
    return FieldSpec("id_number", box, "eng", DIGITS, min_confidence=KEY_CONFIDENCE)


def _date(name: str, box: Box) -> FieldSpec:
    return FieldSpec(name, box, "eng", DATE_CHARS, min_confidence=KEY_CONFIDENCE)


# The header of every front: read once to tell the models apart (read.py: identify).
TITLE = FieldSpec("title", (0.18, 0.0, 1.0, 0.34), "vie", "", PSM_BLOCK)
# The back's MRZ, three lines of 30 (ICAO 9303-5 TD1): read as one block.
MRZ = FieldSpec("mrz", (0.02, 0.58, 0.98, 0.98), "eng", MRZ_CHARS, PSM_BLOCK, lines=3)

LAYOUTS: tuple[CardLayout, ...] = (
    CardLayout(CardModel.CCCD_2021, ("CAN CUOC CONG DAN", "IDENTITY"), (), (
        _id((0.40, 0.34, 0.80, 0.44)),
        FieldSpec("full_name", (0.26, 0.50, 0.99, 0.58)),
        _date("date_of_birth", (0.57, 0.585, 0.86, 0.655)),
        FieldSpec("sex", (0.44, 0.655, 0.60, 0.725)),
        _date("expiry_date", (0.01, 0.90, 0.24, 0.97)),
    )),
    CardLayout(CardModel.CAN_CUOC_2024, ("CAN CUOC", "IDENTITY CARD"), ("CONG DAN", "CITIZEN"), (
        _id((0.55, 0.34, 0.95, 0.44)),
        FieldSpec("full_name", (0.26, 0.52, 0.99, 0.60)),
        _date("date_of_birth", (0.64, 0.615, 0.93, 0.685)),
        FieldSpec("sex", (0.44, 0.70, 0.60, 0.77)),
    ), or_needs=(("CAN CUOC", "SOCIALIST"), ("IDENTITY CARD", "SOCIALIST"))),
    CardLayout(CardModel.CCCD_2016, ("CAN CUOC CONG DAN",), ("IDENTITY",), (
        _id((0.36, 0.34, 0.76, 0.44)),
        FieldSpec("full_name", (0.26, 0.50, 0.99, 0.58)),
        _date("date_of_birth", (0.46, 0.585, 0.75, 0.655)),
        FieldSpec("sex", (0.40, 0.655, 0.56, 0.725)),
        _date("expiry_date", (0.01, 0.90, 0.24, 0.97)),
    )),
    CardLayout(CardModel.CMND, ("CHUNG MINH",), (), (
        FieldSpec("id_number", (0.50, 0.34, 0.85, 0.44), "eng", DIGITS,
                  min_confidence=KEY_CONFIDENCE),
        FieldSpec("full_name", (0.42, 0.455, 0.99, 0.535)),
        _date("date_of_birth", (0.50, 0.615, 0.79, 0.685)),
    )),
    CardLayout(CardModel.BHYT, ("BAO HIEM Y TE",), (), (
        FieldSpec("card_code", (0.30, 0.34, 0.80, 0.44), "eng", CODE_CHARS,
                  min_confidence=CODE_CONFIDENCE, confirm=True),
        FieldSpec("full_name", (0.30, 0.455, 0.99, 0.535)),
        _date("date_of_birth", (0.30, 0.545, 0.58, 0.615)),
        FieldSpec("sex", (0.78, 0.545, 0.95, 0.615)),
        FieldSpec("registered_facility", (0.04, 0.70, 0.99, 0.775)),
        _date("valid_from", (0.42, 0.785, 0.70, 0.855)),
    )),
)


# -- phone screens: the e-card a patient shows when its QR does not read ----------------------
# ASSUMED, NOT CHECKED AGAINST A REAL PHONE. What is known (DOMAIN.md §1; public articles: the
# BHXH answers of 2023 in plo.vn and soha.vn, CV 168/BHXH-QLT of 2025-03-26 as kenh14.vn and
# cafef.vn report it): VssID shows the BHYT card under "Quản lý cá nhân" → "Thẻ BHYT" →
# "Sử dụng thẻ" / "Hình ảnh thẻ"; VNeID (level-2 account) under "Ví giấy tờ" shows the
# electronic ID (căn cước điện tử, Luật Căn cước 2024) and a verified BHYT card; since
# 2025-06-01 paper BHYT cards are no longer issued to most people, so these screens are what
# reaches the desk. No screenshot or layout specification was found, so everything below is
# an assumption the renderer (``readers/doubles/screens.py``) shares:
# - each app draws the card as a card-shaped panel (ID-1 aspect) on a darker app background,
#   under the app's header bar (phone upright) or filling the screen (phone turned, the card
#   view); the finder (``readers/devices/camera/screen.py``) rectifies that panel;
# - the panel's title carries the printed card's words ("THẺ BẢO HIỂM Y TẾ", "CĂN CƯỚC …"), so
#   the model is chosen by where it was found (a panel inside a screen, tried only after the
#   printed cards gave no key number) and by those words, never by app names;
# - VssID lists "Mã số" (the 10-digit BHXH number, on some cards the 15-character code; since
#   2025-08-01 the 12-digit ID may stand in for it — not read here), name, birth date, sex,
#   registered facility, "Giá trị sử dụng", "Thời điểm đủ 5 năm liên tục"; VNeID lists "Số
#   định danh cá nhân" (12 digits), name, birth date, sex. Labels on the left, values right.
# When a real screen disagrees, move the boxes here; the finder and the checks stay.
SCREEN_TITLE = TITLE

SCREEN_LAYOUTS: tuple[CardLayout, ...] = (
    CardLayout(CardModel.VSSID_BHYT, ("BAO HIEM Y TE",), (), (
        # No whitelist: with one, tesseract forces its "$" of an "SV" code to "S" and says 0.
        FieldSpec("card_code", (0.36, 0.36, 0.78, 0.46), "eng", "",
                  min_confidence=CODE_CONFIDENCE, confirm=True),
        FieldSpec("full_name", (0.36, 0.47, 0.99, 0.57)),
        _date("date_of_birth", (0.36, 0.58, 0.66, 0.67)),
        FieldSpec("sex", (0.36, 0.68, 0.60, 0.76)),
        FieldSpec("registered_facility", (0.36, 0.77, 0.99, 0.85)),
        _date("valid_from", (0.36, 0.86, 0.66, 0.94)),
    )),
    CardLayout(CardModel.VNEID_CCCD, ("CAN CUOC",), (), (
        _id((0.30, 0.40, 0.72, 0.50)),
        FieldSpec("full_name", (0.30, 0.56, 0.99, 0.65)),
        _date("date_of_birth", (0.30, 0.72, 0.60, 0.81)),
        FieldSpec("sex", (0.66, 0.72, 0.86, 0.81)),
    )),
)
