"""Rendered phone screens for the OCR tests and ``bench/ocr.py``: VssID's electronic BHYT card
and VNeID's electronic ID (the e-card models of ``readers/ocr/layouts.py``, SCREEN_LAYOUTS), and
phone screens that must read nothing (a home screen, a chat).

A phone is drawn upright (status bar, the app's header bar, the card panel, what the app shows
below it) or turned (the card view filling the screen), put on the desk of ``cards.py`` and
seen through the screen's own degradations — moiré and the screen-door grid, a reflection, the
brightness blown out, a thumb on the edge — before ``webcam()``'s. The apps' looks are assumed
(layouts.py says what and why): these images test the reading chain, not the layouts' match
with real phones. A QR on screen is drawn damaged: this model is for when the QR fails.
"""

from __future__ import annotations

import random
from typing import Any

import cv2
import numpy as np

from readers.doubles.cards import (
    BLUE,
    RED,
    SANS,
    SANS_BOLD,
    H,
    Person,
    Sample,
    W,
    _Canvas,
    _font,
    _photo,
    person,
    place_on_desk,
    webcam,
)
from readers.ocr.layouts import SCREEN_LAYOUTS, CardModel

SCREEN_FAMILIES = ("vssid", "vneid")
SCREEN_NEGATIVES = ("phone_screen",)
MODEL_OF = {"vssid": CardModel.VSSID_BHYT, "vneid": CardModel.VNEID_CCCD}
# The apps' colours (RGB), assumed: VssID blue, VNeID red.
APP_COLOUR = {"vssid": (22, 92, 168), "vneid": (178, 32, 38), "phone_screen": (40, 120, 90)}
APP_TITLE = {"vssid": "Thẻ BHYT", "vneid": "Căn cước điện tử"}
PORTRAIT = (620, 1280)   # the phone drawn upright, px (≈ 19.5:9 with its bezel)
BEZEL = 22
SHOWN = 0.62  # of an upright phone, what the camera sees (the rest is below the frame)


def vssid_number(p: Person) -> str:
    """What VssID shows as "Mã số": the 10-digit BHXH number, on one card in four the
    15-character card code (older cards' data)."""
    return p.card_code15 if int(p.bhxh[-1]) % 4 == 0 else p.bhxh


# -- the card panels ----------------------------------------------------------------------------
def _value(c: _Canvas, model: CardModel, name: str, s: str, *, bold: bool = True,
           fill: tuple[int, int, int] = (15, 15, 25)) -> None:
    """``s`` inside the screen layout's box for ``name``, sized to its height (smaller when
    it would not fit its width)."""
    layout = next(lay for lay in SCREEN_LAYOUTS if lay.model is model)
    x0, y0, x1, y1 = layout.field(name).box
    size = int((y1 - y0) * H * 0.62)
    while size > 14 and _font(SANS_BOLD if bold else SANS, size).getlength(s) > (
            x1 - x0 - 0.016) * W:
        size -= 1
    c.text(x0 + 0.008, (y0 + y1) / 2, s, size, bold=bold, fill=fill)


def draw_vssid_panel(p: Person, rnd: random.Random) -> Any:
    """VssID's card panel, ``W`` × ``H`` BGR (assumed look: the paper card's header, labels on
    the left, values on the right; the QR is drawn below the panel)."""
    model = CardModel.VSSID_BHYT
    c = _Canvas((240, 246, 252))
    c.rect((0.0, 0.0, 1.0, 0.31), (214, 232, 248))
    c.draw.ellipse((0.03 * W, 0.04 * H, 0.14 * W, 0.04 * H + 0.11 * W), fill=BLUE)
    c.text(0.085, 0.04 + 0.055 * W / H, "BHXH", 16, bold=True, fill=(250, 250, 250),
           anchor="mm")
    c.text(0.57, 0.08, "BẢO HIỂM XÃ HỘI VIỆT NAM", 24, bold=True, fill=BLUE, anchor="mm")
    c.text(0.57, 0.205, "THẺ BẢO HIỂM Y TẾ", 40, bold=True, fill=RED, anchor="mm")
    for label, y in (("Mã số:", 0.41), ("Họ và tên:", 0.52), ("Ngày sinh:", 0.625),
                     ("Giới tính:", 0.72), ("Nơi ĐKKCB BĐ:", 0.81), ("Giá trị SD từ:", 0.90)):
        c.text(0.04, y, label, 22, fill=(70, 80, 95))
    _value(c, model, "card_code", vssid_number(p), fill=RED)
    _value(c, model, "full_name", p.full_name)
    _value(c, model, "date_of_birth", p.dob_text)
    _value(c, model, "sex", p.sex_text)
    _value(c, model, "registered_facility", p.facility, bold=False)
    _value(c, model, "valid_from", p.valid_from.strftime("%d/%m/%Y"))
    c.text(0.68, 0.90, f"Đủ 5 năm: 01/01/{2026 + rnd.randrange(3)}", 17, fill=(70, 80, 95))
    return c.array()


def draw_vneid_panel(p: Person, rnd: random.Random) -> Any:
    """VNeID's electronic ID panel, ``W`` × ``H`` BGR (assumed look: a card front with the
    labels above the values, a photo, a QR top right — drawn worn)."""
    model = CardModel.VNEID_CCCD
    c = _Canvas((236, 240, 247))
    c.text(0.53, 0.07, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 21, bold=True, anchor="mm")
    c.text(0.53, 0.20, "CĂN CƯỚC ĐIỆN TỬ", 40, bold=True, fill=RED, anchor="mm")
    _photo(c, (0.03, 0.38, 0.25, 0.86))
    c.text(0.30, 0.365, "Số định danh cá nhân:", 20, fill=(70, 80, 95))
    _value(c, model, "id_number", p.id_number, fill=RED)
    c.text(0.30, 0.53, "Họ, chữ đệm và tên:", 20, fill=(70, 80, 95))
    _value(c, model, "full_name", p.full_name)
    c.text(0.30, 0.69, "Ngày sinh:", 20, fill=(70, 80, 95))
    _value(c, model, "date_of_birth", p.dob_text)
    c.text(0.66, 0.69, "Giới tính:", 20, fill=(70, 80, 95))
    _value(c, model, "sex", p.sex_text)
    c.text(0.30, 0.89, f"Quốc tịch: Việt Nam   Quê quán: {p.place}", 19, fill=(70, 80, 95))
    c.fake_qr((0.82, 0.31, 0.97, 0.53), rnd)
    return c.array()


# -- the phone ----------------------------------------------------------------------------------
def _rgb(colour: tuple[int, int, int], k: float = 1.0) -> tuple[int, int, int]:
    r, g, b = (min(255, int(v * k)) for v in colour)
    return r, g, b


def _phone(rnd: random.Random, app: str, *, landscape: bool) -> tuple[Any, Any, tuple[int, ...]]:
    """A phone with its app background: (PIL image, its draw, the screen box x0 y0 x1 y1)."""
    from PIL import Image, ImageDraw

    pw, ph = PORTRAIT[::-1] if landscape else PORTRAIT
    shade = rnd.randrange(8, 30)
    img = Image.new("RGB", (pw, ph), (shade, shade, shade + 2))
    d = ImageDraw.Draw(img)
    bx, by = (2 * BEZEL, BEZEL) if landscape else (BEZEL, 2 * BEZEL)
    screen = (bx, by, pw - bx, ph - by)
    colour = APP_COLOUR[app]
    top, bottom = _rgb(colour, 1.1), _rgb(colour, 0.55)
    for i in range(screen[1], screen[3]):  # the app's background gradient
        k = (i - screen[1]) / (screen[3] - screen[1])
        d.line((screen[0], i, screen[2], i), fill=tuple(
            int(a + (b - a) * k) for a, b in zip(top, bottom, strict=True)))
    return img, d, screen


def _bars(d: Any, screen: tuple[int, ...], app: str, rnd: random.Random) -> int:
    """The status bar and the app's header bar of an upright phone; the y below them."""
    x0, y0, x1, _ = screen
    d.rectangle((x0, y0, x1, y0 + 40), fill=_rgb(APP_COLOUR[app], 0.7))
    d.text((x0 + 24, y0 + 8), f"{rnd.randrange(7, 17)}:{rnd.randrange(60):02d}",
           font=_font(SANS_BOLD, 20), fill=(250, 250, 250))
    d.rectangle((x1 - 60, y0 + 12, x1 - 24, y0 + 28), outline=(250, 250, 250), width=2)
    d.rectangle((x0, y0 + 40, x1, y0 + 130), fill=_rgb(APP_COLOUR[app], 0.85))
    d.text((x0 + 24, y0 + 85), "‹", font=_font(SANS_BOLD, 44), fill=(250, 250, 250),
           anchor="lm")
    d.text(((x0 + x1) / 2, y0 + 85), APP_TITLE.get(app, ""), font=_font(SANS_BOLD, 30),
           fill=(250, 250, 250), anchor="mm")
    return y0 + 130


def _damaged_qr(d: Any, box: tuple[int, int, int, int], rnd: random.Random) -> None:
    """A QR that cannot read: finder patterns, random modules, a band wiped out."""
    x0, y0, x1, _ = box
    n, cell = 29, (x1 - x0) / 29
    d.rectangle(box, fill=(255, 255, 255))
    for i in range(n):
        for j in range(n):
            finder = ((i < 7 or i >= n - 7) and j < 7) or (i < 7 and j >= n - 7)
            on = (max(abs(i % (n - 7) - 3), abs(j % (n - 7) - 3)) in (0, 1, 3)) if finder \
                else rnd.random() < 0.5
            if on:
                d.rectangle((x0 + i * cell, y0 + j * cell, x0 + (i + 1) * cell - 1,
                             y0 + (j + 1) * cell - 1), fill=(20, 20, 20))
    cut = y0 + rnd.uniform(0.3, 0.6) * (x1 - x0)
    d.rectangle((x0, cut, x1, cut + (x1 - x0) * 0.18), fill=(250, 250, 250))


def draw_phone(panel: Any, app: str, rnd: random.Random, *, landscape: bool) -> Any:
    """The phone showing ``panel`` (BGR, ID-1 shaped) in ``app``: upright under the header
    bar with the app's QR below, or turned with the card view filling the screen. BGR."""
    from PIL import Image

    img, d, (x0, y0, x1, y1) = _phone(rnd, app, landscape=landscape)
    if landscape:
        ph = y1 - y0 - 36
        pw = round(ph * W / H)
        px, py = (x0 + x1 - pw) // 2, y0 + 18
    else:
        below = _bars(d, (x0, y0, x1, y1), app, rnd)
        pw = x1 - x0 - 40
        ph = round(pw * H / W)
        px, py = x0 + 20, below + 36
        if app == "vssid":
            side = int(pw * 0.62)
            qx = (x0 + x1 - side) // 2
            _damaged_qr(d, (qx, py + ph + 60, qx + side, py + ph + 60 + side), rnd)
        d.text(((x0 + x1) / 2, y1 - 50), "Sử dụng thẻ", font=_font(SANS_BOLD, 24),
               fill=(250, 250, 250), anchor="mm")
    rgb = cv2.cvtColor(cv2.resize(panel, (pw, ph), interpolation=cv2.INTER_AREA),
                       cv2.COLOR_BGR2RGB)
    img.paste(Image.fromarray(rgb), (px, py))
    return cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)


def draw_phone_other(rnd: random.Random) -> Any:
    """A phone showing no card: a home screen of app icons or a chat with numbers in it."""
    img, d, (x0, y0, x1, y1) = _phone(rnd, "phone_screen", landscape=False)
    if rnd.random() < 0.5:
        names = ("Zalo", "VssID", "VNeID", "Camera", "Ảnh", "Danh bạ", "Tin nhắn", "Cài đặt",
                 "Lịch", "Đồng hồ", "YouTube", "Facebook", "MoMo", "Ngân hàng", "Bản đồ", "Nhạc")
        cell = (x1 - x0) // 4
        for k, name in enumerate(rnd.sample(names, 16)):
            cx, cy = x0 + cell * (k % 4) + cell // 2, y0 + 140 + (k // 4) * 170
            colour = tuple(rnd.randrange(40, 230) for _ in range(3))
            d.rounded_rectangle((cx - 48, cy - 48, cx + 48, cy + 48), 22, fill=colour)
            d.text((cx, cy + 72), name, font=_font(SANS, 20), fill=(250, 250, 250), anchor="mm")
    else:
        below = _bars(d, (x0, y0, x1, y1), "phone_screen", rnd)
        d.rectangle((x0, below, x1, y1), fill=(236, 229, 221))
        lines = (f"Anh gửi mã số BHXH {rnd.randrange(10**9, 10**10)} nhé",
                 f"Ngày sinh {rnd.randrange(1, 28):02d}/0{rnd.randrange(1, 9)}/"
                 f"19{rnd.randrange(50, 99)}",
                 "Mai mấy giờ khám em?", f"Số phòng {rnd.randrange(100, 400)}, tầng 2",
                 "Nhớ mang căn cước nha", f"{rnd.randrange(10**11, 10**12)}", "Ok anh")
        y = below + 30
        for i, line in enumerate(lines):
            mine = i % 2 == 1
            width = _font(SANS, 24).getlength(line) + 40
            bx = x1 - 24 - width if mine else x0 + 24
            d.rounded_rectangle((bx, y, bx + width, y + 60), 18,
                                fill=(220, 248, 198) if mine else (255, 255, 255))
            d.text((bx + 20, y + 30), line, font=_font(SANS, 24), fill=(20, 20, 20), anchor="lm")
            y += 90
    return cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)


# -- what a camera makes of a screen -------------------------------------------------------------
def _mask(frame: Any, corners: Any) -> Any:
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, np.asarray(corners, np.int32), 1)
    return mask.astype(bool)


def screen_effects(frame: Any, corners: Any, rnd: random.Random, *, hard: bool = False) -> Any:
    """On the phone (``corners``, frame pixels): moiré, the screen-door grid, the brightness
    blown out, a reflection across the glass, a thumb on the edge."""
    h, w = frame.shape[:2]
    inside = _mask(frame, corners)
    out = frame.astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rnd.uniform(0.03, 0.12 if hard else 0.08)  # moiré: two close gratings beating
    f1, f2, th = rnd.uniform(0.18, 0.33), rnd.uniform(0.005, 0.02), rnd.uniform(0, np.pi)
    u = xx * np.cos(th) + yy * np.sin(th)
    moire = 1 + a * np.sin(2 * np.pi * f1 * u) * np.sin(2 * np.pi * f2 * (xx - yy))
    k = rnd.choice((3, 4, 5))  # the pixel grid's dark lines
    door = np.where((xx.astype(int) % k == 0) | (yy.astype(int) % k == 0),
                    1 - rnd.uniform(0.03, 0.10), 1.0)
    gain = rnd.uniform(1.0, 1.35 if hard else 1.2)  # the screen brighter than the room
    screen = out * (moire * door * gain)[..., None] + rnd.uniform(0, 20)
    if rnd.random() < (0.7 if hard else 0.5):  # a window or lamp reflected: a soft band
        shift = np.array([rnd.uniform(-150, 150), rnd.uniform(-80, 80)])
        cx, cy = np.asarray(corners).mean(axis=0) + shift
        phi = rnd.uniform(0, np.pi)
        dist = (xx - cx) * np.cos(phi) + (yy - cy) * np.sin(phi)
        band = np.exp(-((dist / rnd.uniform(40, 110)) ** 2))
        screen += rnd.uniform(25, 90 if hard else 60) * band[..., None]
    out[inside] = screen[inside]
    if rnd.random() < 0.5:  # a thumb over the phone's lower or side edge
        pts = np.asarray(corners, dtype=np.float64)
        wide = np.linalg.norm(pts[1] - pts[0]) > np.linalg.norm(pts[3] - pts[0])
        i = rnd.choice((1, 3)) if wide else 2  # a turned phone's side, an upright one's foot
        edge = (pts[i] + pts[(i + 1) % 4]) / 2
        ex, ey = edge + (pts.mean(axis=0) - edge) * 0.08
        skin = (rnd.uniform(110, 150), rnd.uniform(140, 170), rnd.uniform(190, 225))
        axes = (int(rnd.uniform(40, 60)), int(rnd.uniform(80, 120)))
        cv2.ellipse(out, (int(ex), int(ey)), axes, rnd.uniform(0, 180), 0, 360, skin, -1)
    return np.clip(out, 0, 255).astype(np.uint8)


def screen_frame(kind: str, p: Person | None, rnd: random.Random, *, landscape: bool,
                 tilt: float = 4) -> tuple[Any, Any]:
    """A steady desk-camera frame of a phone showing ``kind``'s screen for ``p`` (the unit
    tests' case; ``p`` None for ``phone_screen``), and the phone's corners."""
    if p is None:
        phone = draw_phone_other(rnd)
    else:
        panel = (draw_vssid_panel if kind == "vssid" else draw_vneid_panel)(p, rnd)
        phone = draw_phone(panel, kind, rnd, landscape=landscape)
    if not landscape:  # held close to the camera: the phone's lower part out of view
        phone = phone[:round(phone.shape[0] * SHOWN)]
    width = (820, 1000) if landscape else (480, 540)
    frame, pts = place_on_desk(phone, rnd, width=width, tilt=tilt)
    return frame, pts


def screen_sample(kind: str, rnd: random.Random, *, hard: bool = False, clean: bool = False
                  ) -> Sample:
    """One webcam frame of a phone: ``vssid``, ``vneid`` or ``phone_screen`` (no card)."""
    landscape = kind != "phone_screen" and rnd.random() < 0.5
    p = None if kind == "phone_screen" else person(rnd)
    frame, pts = screen_frame(kind, p, rnd, landscape=landscape, tilt=4 if clean else 10)
    if not clean:
        frame = webcam(screen_effects(frame, pts, rnd, hard=hard), pts, rnd, hard=hard)
    return Sample(kind, frame, p)
