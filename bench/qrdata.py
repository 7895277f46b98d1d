"""The QR benchmark set, generated with a fixed seed: realistic CCCD and BHYT payloads
(diacritics, hex-UTF-8) rendered into 1280×720 frames, one family per degradation."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import cv2
import numpy as np

from readers.doubles.render import render_qr
from verify.model import BirthDate, Credential, CredentialKind, Sex
from verify.qr import encode_bhyt_qr, encode_cccd_qr

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi",
          "Đỗ", "Hồ", "Ngô", "Dương", "Lý"]
MIDDLE = ["Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thu", "Quốc", "Thanh", "Xuân"]
GIVEN = ["Nữ", "Đạt", "Hương", "Tuấn", "Hằng", "Dũng", "Ngọc", "Phúc", "Thảo", "Khoa", "Trâm",
         "Quỳnh", "Lộc", "Nguyệt", "Thư", "Hải", "Yến", "Tùng"]
PLACES = ["Hà Nội", "Thành phố Hồ Chí Minh", "Thừa Thiên Huế", "Đà Nẵng", "Cần Thơ", "Nghệ An",
          "Đắk Lắk", "Quảng Ninh"]
FAMILIES = ["clean", "scale", "rotation", "perspective", "blur", "motion_blur", "jpeg", "noise",
            "low_contrast", "glare", "occlusion", "inverted", "moire"]


@dataclass(frozen=True)
class Sample:
    family: str
    payload: str
    frame: Any


def payload(rnd: random.Random) -> str:
    name = f"{rnd.choice(FAMILY)} {rnd.choice(MIDDLE)} {rnd.choice(GIVEN)}"
    dob = date(1940, 1, 1) + timedelta(days=rnd.randrange(30000))
    sex = rnd.choice([Sex.MALE, Sex.FEMALE])
    address = f"Số {rnd.randrange(1, 300)} đường {rnd.choice(GIVEN)}, {rnd.choice(PLACES)}"
    if rnd.random() < 0.5:
        id12 = f"0{rnd.randrange(1, 97):02d}{rnd.randrange(4)}{rnd.randrange(10**8):08d}"
        return encode_cccd_qr(Credential(kind=CredentialKind.CCCD_QR, id_number=id12,
                                         full_name=name.upper() if rnd.random() < .5 else name,
                                         date_of_birth=BirthDate.of(dob), sex=sex,
                                         address=address, issue_date=date(2021, 7, 1)))
    obj = rnd.choice(["DN", "HT", "GD", "TE"])
    card = f"{obj}4{rnd.randrange(1, 97):02d}{rnd.randrange(10**10):010d}"
    return encode_bhyt_qr(Credential(
        kind=CredentialKind.BHYT_QR, card_code=card if rnd.random() < .5 else card[5:],
        full_name=name, date_of_birth=BirthDate.of(dob), sex=sex,
        address=address if rnd.random() < .5 else None,
        registered_facility=f"{rnd.randrange(1, 97):02d}{rnd.randrange(1000):03d}",
        valid_from=date(2026, 1, 1), valid_to=date(2026, 12, 31), issue_date=date(2026, 1, 1),
        benefit_digit=4, issuing_place=rnd.choice(PLACES)),
        internal_number=f"{rnd.randrange(10**13):013d}",
        check_code=f"{rnd.randrange(16**16):016x}-{rnd.randrange(10**4):04d}")


def background(rnd: random.Random) -> Any:
    h, w = 720, 1280
    base = np.linspace(rnd.randrange(90, 170), rnd.randrange(120, 220), w, dtype=np.float32)
    frame = np.tile(base, (h, 1))
    for _ in range(rnd.randrange(3, 8)):  # desk clutter: papers, pens, card edges
        x, y = rnd.randrange(w), rnd.randrange(h)
        cv2.rectangle(frame, (x, y), (x + rnd.randrange(40, 300), y + rnd.randrange(20, 200)),
                      rnd.randrange(40, 250), -1)
    frame += np.random.default_rng(rnd.randrange(10**9)).normal(0, 4, frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


def place(frame: Any, code: Any, rnd: random.Random) -> tuple[Any, tuple[int, int, int, int]]:
    h, w = frame.shape
    ch, cw = code.shape
    x, y = rnd.randrange(0, w - cw), rnd.randrange(0, h - ch)
    out = frame.copy()
    out[y:y + ch, x:x + cw] = code
    return out, (x, y, cw, ch)


def degrade(family: str, text: str, rnd: random.Random) -> Any:
    module = rnd.choice([4, 5, 6]) if family != "scale" else rnd.choice([3, 4, 8, 10])
    code = render_qr(text, module_px=module)
    if family == "inverted":
        code = 255 - code
    if family == "rotation":
        angle = rnd.uniform(0, 360)
        size = int(code.shape[0] * 1.5)
        pad = (size - code.shape[0]) // 2
        big = np.pad(code, pad, constant_values=255)
        m = cv2.getRotationMatrix2D((big.shape[1] / 2, big.shape[0] / 2), angle, 1.0)
        code = cv2.warpAffine(big, m, (big.shape[1], big.shape[0]), borderValue=255)
    frame, (x, y, cw, ch) = place(background(rnd), code, rnd)
    g: Any = frame.astype(np.float32)
    if family == "perspective":
        src = np.array([[x, y], [x + cw, y], [x + cw, y + ch], [x, y + ch]], dtype=np.float32)
        j = [rnd.uniform(-0.18, 0.18) * cw for _ in range(8)]
        dst = np.array([[x + j[0], y + j[1]], [x + cw + j[2], y + j[3]],
                        [x + cw + j[4], y + ch + j[5]], [x + j[6], y + ch + j[7]]],
                       dtype=np.float32)
        g = cv2.warpPerspective(g, cv2.getPerspectiveTransform(src, dst), (1280, 720),
                                borderMode=cv2.BORDER_REPLICATE)
    elif family == "blur":
        g = cv2.GaussianBlur(g, (0, 0), rnd.uniform(1.2, 2.6))
    elif family == "motion_blur":
        n = rnd.randrange(7, 15)
        k: Any = np.zeros((n, n), np.float32)
        k[n // 2, :] = 1.0 / n
        m = cv2.getRotationMatrix2D((n / 2 - .5, n / 2 - .5), rnd.uniform(0, 180), 1.0)
        k = cv2.warpAffine(k, m, (n, n))
        g = cv2.filter2D(g, -1, k / max(k.sum(), 1e-6))
    elif family == "noise":
        g += np.random.default_rng(rnd.randrange(10**9)).normal(0, rnd.uniform(18, 35), g.shape)
    elif family == "low_contrast":
        lo = rnd.uniform(70, 110)
        g = lo + (g / 255.0) * rnd.uniform(35, 60)
    elif family == "glare":
        yy, xx = np.mgrid[0:720, 0:1280]
        cx, cy = x + rnd.uniform(0, cw), y + rnd.uniform(0, ch)
        r = rnd.uniform(.4, .9) * cw
        g += 230 * np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))
    elif family == "occlusion":
        ow, oh = int(cw * rnd.uniform(.15, .3)), int(ch * rnd.uniform(.15, .3))
        ox = x + rnd.randrange(int(cw * .3), int(cw * .7))
        oy = y + rnd.randrange(int(ch * .3), int(ch * .7))
        g[oy:oy + oh, ox:ox + ow] = rnd.randrange(0, 255)  # a thumb, a pen
    elif family == "moire":
        g = 255 - g  # phone screens show light-on-dark codes here
        yy, xx = np.mgrid[0:720, 0:1280]
        g += 14 * np.sin(xx / rnd.uniform(1.6, 2.6)) * np.sin(yy / rnd.uniform(1.6, 2.6))
        g = cv2.GaussianBlur(g, (0, 0), 0.8)
    frame = np.clip(g, 0, 255).astype(np.uint8)
    if family == "jpeg":
        _ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, rnd.randrange(8, 25)])
        frame = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def samples(per_family: int, seed: int = 20261121) -> Iterator[Sample]:
    rnd = random.Random(seed)
    for family in FAMILIES:
        for _ in range(per_family):
            text = payload(rnd)
            yield Sample(family, text, degrade(family, text, rnd))
