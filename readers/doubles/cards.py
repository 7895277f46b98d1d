"""Rendered card images for the OCR tests and ``bench/ocr.py``: fictional people on the card
models of ``readers/ocr/layouts.py``, drawn with Vietnamese-capable fonts (Pillow, Noto Sans;
the MRZ in OCR-B from Debian's fonts-ocr-b, DejaVu Sans Mono where it is missing), then put on
a desk the way a webcam sees it: tilt and perspective, glare, blur, noise, JPEG, a finger on a
corner. Also frames that must read nothing: an empty desk, a bank card, a printed page.

Values are placed in the layouts' own boxes: these images test the reading chain, not the
layouts' match with real cards.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from readers.emrtd.mrz import check_digit
from readers.ocr.layouts import LAYOUTS, CardModel

W, H = 1000, 631
FONT_DIR = Path("/usr/share/fonts/truetype")
SANS = FONT_DIR / "noto/NotoSans-Regular.ttf"
SANS_BOLD = FONT_DIR / "noto/NotoSans-Bold.ttf"
# The MRZ's own font (ICAO 9303-3: OCR-B, Debian's fonts-ocr-b); DejaVu Sans Mono stands in
# where it is not installed.
OCR_B = Path("/usr/share/fonts/opentype/ocr-b/OCRB.otf")
MONO = OCR_B if OCR_B.is_file() else FONT_DIR / "dejavu/DejaVuSansMono.ttf"
PROVINCES = ("001", "008", "022", "026", "031", "036", "038", "040", "046", "048", "052",
             "056", "066", "068", "074", "075", "079", "083", "087", "092", "096")
SURNAMES = ("NGUYỄN", "TRẦN", "LÊ", "PHẠM", "HOÀNG", "HUỲNH", "PHAN", "VŨ", "VÕ", "ĐẶNG",
            "BÙI", "ĐỖ", "HỒ", "NGÔ", "DƯƠNG", "LÝ")
MIDDLE_M = ("VĂN", "HỮU", "ĐỨC", "MINH", "QUỐC", "THANH", "XUÂN", "CÔNG")
MIDDLE_F = ("THỊ", "NGỌC", "THU", "THANH", "MINH", "KIM", "HỒNG", "BẢO")
GIVEN_M = ("AN", "BÌNH", "CƯỜNG", "DŨNG", "HẢI", "HIẾU", "KHÁNH", "LONG", "NAM", "PHÚC",
           "QUANG", "SƠN", "THẮNG", "TUẤN", "VIỆT", "ĐẠT", "HÙNG", "TRUNG")
GIVEN_F = ("GIANG", "HÀ", "HẠNH", "HOA", "HƯƠNG", "LAN", "LINH", "MAI", "NGA", "PHƯƠNG",
           "THẢO", "TRANG", "YẾN", "HUYỀN", "NHUNG", "QUỲNH")
OBJECT_CODES = ("DN", "HT", "TE", "GD", "HS", "SV", "CN", "HN", "CK", "XN")
FACILITIES = ("Bệnh viện Đa khoa tỉnh", "Trạm Y tế phường", "Trung tâm Y tế huyện",
              "Phòng khám Đa khoa khu vực")
PLACES = ("Hà Nội", "Nam Định", "Thanh Hóa", "Nghệ An", "Đà Nẵng", "Khánh Hòa", "Cần Thơ",
          "TP Hồ Chí Minh", "Đồng Tháp", "Bến Tre", "Quảng Ninh", "Lâm Đồng")


@dataclass(frozen=True, slots=True)
class Person:
    """A fictional card holder with consistent numbers (ID structure, MRZ, card code)."""

    id_number: str
    full_name: str
    date_of_birth: date
    male: bool
    expiry: date
    cmnd: str
    bhxh: str
    card_code15: str
    facility: str
    valid_from: date
    place: str

    @property
    def dob_text(self) -> str:
        return self.date_of_birth.strftime("%d/%m/%Y")

    @property
    def sex_text(self) -> str:
        return "Nam" if self.male else "Nữ"

    def mrz_lines(self) -> tuple[str, str, str]:
        """ICAO 9303-5 TD1 as Vietnamese cards print it (DOMAIN.md §4)."""
        doc = self.id_number[3:]
        l1 = "IDVNM" + doc + check_digit(doc) + self.id_number + "<<" + check_digit(
            self.id_number)
        dob, exp = self.date_of_birth.strftime("%y%m%d"), self.expiry.strftime("%y%m%d")
        l2 = dob + check_digit(dob) + ("M" if self.male else "F") + exp + check_digit(exp) + "VNM"
        l2 = l2.ljust(29, "<")
        l2 += check_digit(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29])
        words = _ascii(self.full_name).split()
        l3 = (words[0] + "<<" + "<".join(words[1:])).ljust(30, "<")[:30]
        return l1, l2, l3


def _ascii(text: str) -> str:
    s = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in s if not unicodedata.combining(c))


def person(rnd: random.Random) -> Person:
    male = rnd.random() < 0.5
    dob = date(1940, 1, 1) + timedelta(days=rnd.randrange(365 * 68))
    century = (dob.year // 100 - 19) * 2 + (0 if male else 1)
    province = rnd.choice(PROVINCES)
    id12 = province + str(century) + f"{dob.year % 100:02d}" + f"{rnd.randrange(10**6):06d}"
    names = (rnd.choice(SURNAMES), rnd.choice(MIDDLE_M if male else MIDDLE_F),
             *([rnd.choice(MIDDLE_M if male else MIDDLE_F)] if rnd.random() < 0.3 else []),
             rnd.choice(GIVEN_M if male else GIVEN_F))
    age = next(a for a in (25, 40, 60, 100) if dob.year + a >= 2024)
    expiry = dob.replace(year=dob.year + age) if (dob.month, dob.day) != (2, 29) else date(
        dob.year + age, 3, 1)
    bhxh = province[1:] + f"{rnd.randrange(10**8):08d}"
    code15 = rnd.choice(OBJECT_CODES) + str(rnd.choice((2, 3, 4))) + province[1:] + bhxh
    facility = (f"{rnd.choice(FACILITIES)} {rnd.choice(PLACES)} - {province[1:]}"
                f"{rnd.randrange(1000):03d}")
    return Person(id12, " ".join(names), dob, male, expiry, f"{rnd.randrange(10**9):09d}",
                  bhxh, code15, facility, date(2021 + rnd.randrange(4), 1, 1), rnd.choice(PLACES))


# -- drawing a card ---------------------------------------------------------------------------
_FONTS: dict[tuple[Path, int], Any] = {}


def _font(path: Path, size: int) -> Any:
    from PIL import ImageFont  # a test dependency (pyproject: the test extra)

    key = (path, size)
    if key not in _FONTS:
        _FONTS[key] = ImageFont.truetype(str(path), size)
    return _FONTS[key]


class _Canvas:
    def __init__(self, colour: tuple[int, int, int]) -> None:
        from PIL import Image, ImageDraw

        self.image = Image.new("RGB", (W, H), colour)
        self.draw = ImageDraw.Draw(self.image)

    def text(self, x: float, y: float, s: str, size: int = 20, *, bold: bool = False,
             font: Path | None = None, fill: tuple[int, int, int] = (20, 20, 30),
             anchor: str = "lm") -> None:
        f = _font(font or (SANS_BOLD if bold else SANS), size)
        self.draw.text((x * W, y * H), s, font=f, fill=fill, anchor=anchor)

    def value(self, model: CardModel, name: str, s: str, *, bold: bool = True,
              fill: tuple[int, int, int] = (15, 15, 25)) -> None:
        """``s`` inside the layout's box for ``name``, sized to its height."""
        layout = next(lay for lay in LAYOUTS if lay.model is model)
        x0, y0, _x1, y1 = layout.field(name).box
        size = int((y1 - y0) * H * 0.62)
        self.text(x0 + 0.008, (y0 + y1) / 2, s, size, bold=bold, fill=fill)

    def rect(self, box: tuple[float, float, float, float], fill: tuple[int, int, int],
             outline: tuple[int, int, int] | None = None) -> None:
        x0, y0, x1, y1 = box
        self.draw.rectangle((x0 * W, y0 * H, x1 * W, y1 * H), fill=fill, outline=outline)

    def fake_qr(self, box: tuple[float, float, float, float], rnd: random.Random) -> None:
        """A worn QR: modules that decode to nothing."""
        x0, y0, x1, _y1 = box
        n = 25
        cell = (x1 - x0) * W / n
        for i in range(n):
            for j in range(n):
                if rnd.random() < 0.45:
                    self.draw.rectangle((x0 * W + i * cell, y0 * H + j * cell,
                                         x0 * W + (i + 1) * cell, y0 * H + (j + 1) * cell),
                                        fill=(30, 30, 30))

    def array(self) -> Any:
        return cv2.cvtColor(np.asarray(self.image), cv2.COLOR_RGB2BGR)


RED = (190, 30, 35)
BLUE = (25, 60, 140)


def _pattern(c: _Canvas, rnd: random.Random, base: tuple[int, int, int]) -> None:
    """The guilloche-like background print security cards have (faint waves)."""
    for k in range(14):
        y = rnd.uniform(0, H)
        amp, period = rnd.uniform(8, 30), rnd.uniform(80, 240)
        pts = [(x, y + amp * np.sin(x / period + k)) for x in range(0, W, 8)]
        shade = tuple(max(0, v - 18) for v in base)
        c.draw.line(pts, fill=shade, width=1)


def _header_sr(c: _Canvas, english: bool) -> None:
    c.text(0.56, 0.06, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 22, bold=True, anchor="mm")
    if english:
        c.text(0.56, 0.115, "SOCIALIST REPUBLIC OF VIET NAM", 18, anchor="mm")
    c.text(0.56, 0.17, "Độc lập - Tự do - Hạnh phúc", 20, bold=True, anchor="mm")


def _photo(c: _Canvas, box: tuple[float, float, float, float]) -> None:
    c.rect(box, (170, 180, 190), outline=(90, 90, 90))
    x0, y0, x1, _y1 = box
    c.draw.ellipse(((x0 + 0.05) * W, (y0 + 0.06) * H, (x1 - 0.05) * W, (y0 + 0.26) * H),
                   fill=(120, 110, 100))


def draw_card(model: CardModel, p: Person, rnd: random.Random, *, qr: Any = None) -> Any:
    """The card face, ``W`` × ``H`` BGR. ``qr``: a grey QR image to print where the model has
    one (else a worn, unreadable one)."""
    if model is CardModel.CCCD_BACK:
        return _back(p, rnd)
    base = {CardModel.BHYT: (236, 240, 246), CardModel.CMND: (222, 236, 226)}.get(
        model, (226, 232, 240))
    c = _Canvas(base)
    _pattern(c, rnd, base)
    if model is CardModel.CCCD_2021:
        _header_sr(c, True)
        c.text(0.56, 0.235, "CĂN CƯỚC CÔNG DÂN", 30, bold=True, fill=RED, anchor="mm")
        c.text(0.56, 0.295, "Citizen Identity Card", 20, bold=True, fill=RED, anchor="mm")
        _photo(c, (0.03, 0.36, 0.24, 0.84))
        c.text(0.27, 0.39, "Số / No.:", 22, bold=True)
        c.value(model, "id_number", p.id_number)
        c.text(0.27, 0.475, "Họ và tên / Full name:", 17)
        c.value(model, "full_name", p.full_name)
        c.text(0.27, 0.62, "Ngày sinh / Date of birth:", 17)
        c.value(model, "date_of_birth", p.dob_text)
        c.text(0.27, 0.69, "Giới tính / Sex:", 17)
        c.value(model, "sex", p.sex_text)
        c.text(0.62, 0.69, "Quốc tịch / Nationality: Việt Nam", 17)
        c.text(0.27, 0.76, f"Quê quán / Place of origin: {p.place}", 17)
        c.text(0.27, 0.84, "Nơi thường trú / Place of residence:", 17)
        c.text(0.27, 0.91, f"Phường 1, {p.place}", 18, bold=True)
        c.text(0.01, 0.875, "Có giá trị đến:", 14)
        c.value(model, "expiry_date", p.expiry.strftime("%d/%m/%Y"), bold=False)
        if qr is not None:
            _paste(c, qr, (0.83, 0.04, 0.98, 0.28))
        else:
            c.fake_qr((0.83, 0.04, 0.98, 0.28), rnd)
    elif model is CardModel.CAN_CUOC_2024:
        c.text(0.56, 0.06, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 22, bold=True, anchor="mm")
        c.text(0.56, 0.115, "SOCIALIST REPUBLIC OF VIET NAM", 18, anchor="mm")
        c.text(0.56, 0.21, "CĂN CƯỚC", 38, bold=True, fill=RED, anchor="mm")
        c.text(0.56, 0.285, "IDENTITY CARD", 22, bold=True, fill=RED, anchor="mm")
        _photo(c, (0.03, 0.36, 0.24, 0.84))
        c.text(0.26, 0.36, "Số định danh cá nhân /", 16)
        c.text(0.26, 0.415, "Personal identification number:", 16)
        c.value(model, "id_number", p.id_number)
        c.text(0.26, 0.49, "Họ, chữ đệm và tên khai sinh / Surname, middle name and given name:",
               15)
        c.value(model, "full_name", p.full_name)
        c.text(0.26, 0.65, "Ngày, tháng, năm sinh / Date of birth:", 16)
        c.value(model, "date_of_birth", p.dob_text)
        c.text(0.26, 0.735, "Giới tính / Sex:", 16)
        c.value(model, "sex", p.sex_text)
        c.text(0.62, 0.735, "Quốc tịch / Nationality: Việt Nam", 16)
    elif model is CardModel.CCCD_2016:
        _header_sr(c, False)
        c.text(0.56, 0.25, "CĂN CƯỚC CÔNG DÂN", 32, bold=True, fill=RED, anchor="mm")
        _photo(c, (0.03, 0.36, 0.24, 0.84))
        c.text(0.27, 0.39, "Số:", 24, bold=True)
        c.value(model, "id_number", p.id_number, fill=RED)
        c.text(0.27, 0.475, "Họ và tên:", 18)
        c.value(model, "full_name", p.full_name)
        c.text(0.27, 0.62, "Ngày sinh:", 18)
        c.value(model, "date_of_birth", p.dob_text)
        c.text(0.27, 0.69, "Giới tính:", 18)
        c.value(model, "sex", p.sex_text)
        c.text(0.58, 0.69, "Quốc tịch: Việt Nam", 18)
        c.text(0.27, 0.77, f"Quê quán: {p.place}", 18)
        c.text(0.27, 0.85, f"Nơi thường trú: Xã An Bình, {p.place}", 18)
        c.text(0.01, 0.875, "Có giá trị đến:", 14)
        c.value(model, "expiry_date", p.expiry.strftime("%d/%m/%Y"), bold=False)
    elif model is CardModel.CMND:
        c.text(0.60, 0.07, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 22, bold=True, anchor="mm")
        c.text(0.60, 0.13, "Độc lập - Tự do - Hạnh phúc", 20, bold=True, anchor="mm")
        c.text(0.60, 0.24, "GIẤY CHỨNG MINH NHÂN DÂN", 32, bold=True, fill=BLUE, anchor="mm")
        _photo(c, (0.03, 0.36, 0.24, 0.84))
        c.text(0.42, 0.39, "SỐ", 26, bold=True, fill=RED)
        c.value(model, "id_number", p.cmnd, fill=RED)
        c.text(0.27, 0.495, "Họ tên:", 18)
        c.value(model, "full_name", p.full_name)
        c.text(0.27, 0.65, "Sinh ngày:", 18)
        c.value(model, "date_of_birth", p.dob_text)
        c.text(0.27, 0.74, f"Nguyên quán: {p.place}", 18)
        c.text(0.27, 0.83, "Nơi ĐKHK thường trú:", 18)
        c.text(0.27, 0.90, f"Thôn 2, {p.place}", 18)
    elif model is CardModel.BHYT:
        _bhyt(c, p, rnd, old=False, qr=qr)
    return c.array()


def _bhyt(c: _Canvas, p: Person, rnd: random.Random, *, old: bool, qr: Any) -> None:
    model = CardModel.BHYT
    c.rect((0.0, 0.0, 1.0, 0.03), BLUE)
    c.text(0.50, 0.08, "BẢO HIỂM XÃ HỘI VIỆT NAM", 22, bold=True, fill=BLUE, anchor="mm")
    c.text(0.50, 0.21, "THẺ BẢO HIỂM Y TẾ", 36, bold=True, fill=RED, anchor="mm")
    c.text(0.05, 0.39, "Mã thẻ:" if old else "Mã số:", 22, bold=True)
    c.value(model, "card_code", p.card_code15 if old else p.bhxh, fill=RED)
    c.text(0.05, 0.495, "Họ và tên:", 18)
    c.value(model, "full_name", p.full_name)
    c.text(0.05, 0.58, "Ngày sinh:", 18)
    c.value(model, "date_of_birth", p.dob_text)
    c.text(0.62, 0.58, "Giới tính:", 18)
    c.value(model, "sex", p.sex_text)
    c.text(0.05, 0.66, "Nơi ĐKKCB ban đầu:", 18)
    c.value(model, "registered_facility", p.facility, bold=False)
    c.text(0.05, 0.82, "Giá trị sử dụng từ:", 18)
    c.value(model, "valid_from", p.valid_from.strftime("%d/%m/%Y"))
    c.text(0.05, 0.91, "Thời điểm đủ 5 năm liên tục: 01/01/2027", 16)
    if qr is not None:
        _paste(c, qr, (0.83, 0.05, 0.98, 0.29))
    elif not old:
        c.fake_qr((0.83, 0.05, 0.98, 0.29), rnd)


def draw_bhyt_old(p: Person, rnd: random.Random) -> Any:
    """The older BHYT card, printing the 15-character code."""
    base = (244, 238, 232)
    c = _Canvas(base)
    _pattern(c, rnd, base)
    _bhyt(c, p, rnd, old=True, qr=None)
    return c.array()


def _back(p: Person, rnd: random.Random) -> Any:
    return draw_mrz_back("".join(p.mrz_lines()), rnd)


def draw_mrz_back(mrz: str, rnd: random.Random) -> Any:
    """A CCCD back printing ``mrz`` (90 characters, the three TD1 lines run together — what
    ``readers.doubles.vcard.compose_mrz`` gives the virtual card's holder)."""
    base = (228, 232, 236)
    c = _Canvas(base)
    _pattern(c, rnd, base)
    c.text(0.05, 0.08, "Đặc điểm nhân dạng / Personal identification:", 16)
    c.text(0.05, 0.15, "Nốt ruồi C:2cm trên sau đuôi mắt trái", 16)
    c.text(0.05, 0.24, "Ngày, tháng, năm / Date, month, year: 15/06/2022", 16)
    c.text(0.05, 0.31, "CỤC TRƯỞNG CỤC CẢNH SÁT", 16, bold=True)
    c.text(0.05, 0.37, "QUẢN LÝ HÀNH CHÍNH VỀ TRẬT TỰ XÃ HỘI", 16, bold=True)
    for i in range(2):  # the two fingerprint boxes
        c.rect((0.62 + i * 0.18, 0.06, 0.78 + i * 0.18, 0.50), (215, 218, 222),
               outline=(120, 120, 120))
    c.rect((0.0, 0.56, 1.0, 1.0), (245, 245, 245))
    size = 47  # the largest that fits 30 characters in the MRZ's 93 % of the card's width
    while _font(MONO, size).getlength("<" * 30) > 0.93 * W:
        size -= 1
    for i, line in enumerate((mrz[0:30], mrz[30:60], mrz[60:90])):
        c.text(0.035, 0.655 + i * 0.12, line, size, font=MONO, fill=(10, 10, 10))
    return c.array()


def _paste(c: _Canvas, qr: Any, box: tuple[float, float, float, float]) -> None:
    from PIL import Image

    x0, y0, x1, y1 = box
    side = int(min((x1 - x0) * W, (y1 - y0) * H))
    img = Image.fromarray(cv2.resize(qr, (side, side), interpolation=cv2.INTER_NEAREST))
    c.image.paste(img.convert("RGB"), (int(x0 * W), int(y0 * H)))


def draw_bank_card(rnd: random.Random) -> Any:
    base = (120, 40, 30)
    c = _Canvas(base)
    _pattern(c, rnd, base)
    c.text(0.06, 0.12, rnd.choice(("VIETCOMBANK", "TECHCOMBANK", "AGRIBANK")), 36, bold=True,
           fill=(240, 240, 240))
    c.text(0.80, 0.12, "DEBIT", 26, bold=True, fill=(240, 240, 240))
    c.rect((0.08, 0.32, 0.22, 0.50), (200, 170, 90))
    number = " ".join(f"{rnd.randrange(10**4):04d}" for _ in range(4))
    c.text(0.08, 0.64, number, 44, font=MONO, fill=(245, 245, 245))
    c.text(0.40, 0.78, f"VALID THRU {rnd.randrange(1, 13):02d}/{rnd.randrange(26, 32)}", 20,
           fill=(245, 245, 245))
    c.text(0.08, 0.90, _ascii(person(rnd).full_name), 26, fill=(245, 245, 245))
    return c.array()


def draw_page(rnd: random.Random) -> Any:
    """A printed A4 page (landscape, as it lies on the desk) of Vietnamese text and numbers."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (1200, 850), (250, 250, 246))
    d = ImageDraw.Draw(img)
    f, fb = _font(SANS, 22), _font(SANS_BOLD, 30)
    d.text((80, 50), "GIẤY HẸN KHÁM BỆNH", font=fb, fill=(10, 10, 10))
    words = ("bệnh nhân", "khám", "ngày", "phòng", "số", "điều trị", "thuốc", "theo dõi",
             "tái khám", "bác sĩ", "kết quả", "xét nghiệm", "huyết áp", "mạch")
    for i in range(16):
        line = " ".join(rnd.choice(words) for _ in range(9))
        if i % 4 == 1:
            line += f" {rnd.randrange(10**11, 10**12)} {rnd.randrange(1, 28):02d}/03/19" \
                    f"{rnd.randrange(40, 99)}"
        d.text((80, 120 + i * 42), line.capitalize(), font=f, fill=(20, 20, 20))
    return cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)


# -- the desk and the webcam ------------------------------------------------------------------
FRAME = (1280, 720)


def desk(rnd: random.Random) -> Any:
    w, h = FRAME
    base = np.array(rnd.choice(((60, 90, 130), (90, 90, 95), (40, 50, 60), (110, 130, 150))),
                    dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    grain = 10 * np.sin(xx / rnd.uniform(6, 14) + 3 * np.sin(yy / 60.0))
    light = 1.0 + 0.25 * (xx / w - 0.5) * rnd.choice((-1, 1))
    frame = (base[None, None, :] + grain[..., None]) * light[..., None]
    rng = np.random.default_rng(rnd.randrange(10**9))
    frame += rng.normal(0, 4, frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


def place_on_desk(face: Any, rnd: random.Random, *, width: tuple[int, int] = (600, 820),
                  tilt: float = 12.0, flip: bool = False) -> Any:
    """The card (or page) on the desk: scaled, turned, in perspective."""
    frame = desk(rnd)
    fh, fw = face.shape[:2]
    w, h = FRAME
    cw = rnd.uniform(*width)
    ch = cw * fh / fw
    angle = np.deg2rad(rnd.uniform(-tilt, tilt) + (180 if flip else 0))
    cx = rnd.uniform(w / 2 - 80, w / 2 + 80)
    cy = rnd.uniform(h / 2 - 40, h / 2 + 40)
    corners = np.array([[-cw / 2, -ch / 2], [cw / 2, -ch / 2], [cw / 2, ch / 2],
                        [-cw / 2, ch / 2]])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = corners @ rot.T + [cx, cy]
    pts += np.array([[rnd.uniform(-1, 1) * cw * 0.035, rnd.uniform(-1, 1) * ch * 0.035]
                     for _ in range(4)])
    src = np.array([[0, 0], [fw, 0], [fw, fh], [0, fh]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(src, pts.astype(np.float32))
    warped = cv2.warpPerspective(face, m, (w, h), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((fh, fw), 255, np.uint8), m, (w, h))
    shadow = cv2.GaussianBlur(cv2.dilate(mask, np.ones((9, 9), np.uint8)), (0, 0), 8)
    frame = (frame * (1 - 0.35 * shadow[..., None] / 255)).astype(np.uint8)
    frame[mask > 0] = warped[mask > 0]
    return frame, pts


def webcam(frame: Any, corners: Any, rnd: random.Random, *, hard: bool = False) -> Any:
    """Glare, a finger on a corner, blur, noise and JPEG, as a desk webcam gives them."""
    w, h = FRAME
    out = frame.astype(np.float32)
    rng = np.random.default_rng(rnd.randrange(10**9))
    if rnd.random() < (0.6 if hard else 0.35):  # glare: a soft bright spot on the card
        shift = np.array([rnd.uniform(-200, 200), rnd.uniform(-100, 100)])
        gx, gy = corners.mean(axis=0) + shift
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r = rnd.uniform(50, 120)
        spot = np.exp(-(((xx - gx) / (1.8 * r)) ** 2 + ((yy - gy) / r) ** 2))
        out += rnd.uniform(50, 110 if hard else 80) * spot[..., None]
    if rnd.random() < (0.5 if hard else 0.3):  # a finger over one corner
        cx, cy = corners[rnd.randrange(4)]
        axes = (int(rnd.uniform(35, 55)), int(rnd.uniform(70, 100)))
        skin = (rnd.uniform(110, 150), rnd.uniform(140, 170), rnd.uniform(190, 225))
        cv2.ellipse(out, (int(cx), int(cy)), axes, rnd.uniform(0, 180), 0, 360, skin, -1)
    out = np.clip(out, 0, 255).astype(np.uint8)
    sigma = rnd.uniform(0.3, 1.6 if hard else 1.1)
    out = cv2.GaussianBlur(out, (0, 0), sigma)
    out = np.clip(out + rng.normal(0, rnd.uniform(2, 7 if hard else 5), out.shape), 0, 255)
    ok, buf = cv2.imencode(".jpg", out.astype(np.uint8),
                           [cv2.IMWRITE_JPEG_QUALITY, rnd.randrange(45 if hard else 60, 90)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else out.astype(np.uint8)


# -- the set ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sample:
    kind: str           # a CardModel value, "bhyt_old", or a negative: desk / bank_card / page
    frame: Any
    person: Person | None


FAMILIES = ("cccd_back", "cccd_2021", "bhyt", "bhyt_old", "can_cuoc_2024", "cccd_2016", "cmnd",
            "vssid", "vneid")  # the last two: phone screens (screens.py)
NEGATIVES = ("desk", "bank_card", "page", "phone_screen")


def sample(kind: str, rnd: random.Random, *, hard: bool = False, clean: bool = False
           ) -> Sample:
    """One webcam frame of ``kind`` (a family or a negative); ``clean``: a steady, sharp,
    evenly lit view (the unit tests' case), else the webcam's degradations."""
    if kind in ("vssid", "vneid", "phone_screen"):
        from readers.doubles.screens import screen_sample

        return screen_sample(kind, rnd, hard=hard, clean=clean)
    flip = rnd.random() < 0.1
    if clean and kind not in NEGATIVES:
        p = person(rnd)
        face = draw_bhyt_old(p, rnd) if kind == "bhyt_old" else draw_card(CardModel(kind), p,
                                                                          rnd)
        frame, _ = place_on_desk(face, rnd, tilt=6)
        return Sample(kind, frame, p)
    if kind == "desk":
        return Sample(kind, webcam(desk(rnd), np.array([[640, 360]] * 4), rnd, hard=hard), None)
    if kind == "bank_card":
        frame, pts = place_on_desk(draw_bank_card(rnd), rnd, flip=flip)
        return Sample(kind, webcam(frame, pts, rnd, hard=hard), None)
    if kind == "page":
        frame, pts = place_on_desk(draw_page(rnd), rnd, width=(900, 1150), tilt=6)
        return Sample(kind, webcam(frame, pts, rnd, hard=hard), None)
    p = person(rnd)
    face = draw_bhyt_old(p, rnd) if kind == "bhyt_old" else draw_card(CardModel(kind), p, rnd)
    frame, pts = place_on_desk(face, rnd, flip=flip)
    return Sample(kind, webcam(frame, pts, rnd, hard=hard), p)


def samples(per_kind: int, seed: int, *, kinds: tuple[str, ...] = (*FAMILIES, *NEGATIVES),
            hard: bool = False) -> list[Sample]:
    """A fixed set: ``per_kind`` frames of every kind, from ``seed``."""
    out = []
    for kind in kinds:
        rnd = random.Random(f"{seed}:{kind}")  # noqa: S311 -- a reproducible test set
        out += [sample(kind, rnd, hard=hard) for _ in range(per_kind)]
    return out
