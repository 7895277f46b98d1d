"""The camera adapter's card side: find a card-shaped quadrilateral in a frame, rectify it to
a fixed size, and crop each field box of a layout for the OCR engine (issue 24).

What to read and how to parse it is the pure core's (``readers/ocr``); which OCR engine reads
a crop is the caller's (``readers/devices/ocr.py`` in production).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from readers.devices.camera.decode import Frame, grey
from readers.ocr.layouts import CARD_ASPECT, FieldSpec
from readers.ocr.read import CardText, TextEngine, read_card

RECT_W = 1000
RECT_H = round(RECT_W / CARD_ASPECT)  # 631
WORK_W = 640          # frames are searched at this width (cheap; the card is large in view)
MIN_AREA = 0.06       # of the frame: a card held up to a desk camera fills more than this
# …and less than this: an ID-1 card (1.585:1) fills at most 89 % of a 16:9 frame, and a
# "quadrilateral" as large as the frame is the frame itself (a blank or washed-out view).
MAX_AREA = 0.85
ASPECT_SLACK = 0.28   # perspective and a finger on a corner bend the measured aspect
FIELD_H = 48          # a field crop is scaled to this height (tesseract likes ~30 px capitals)


def _order(quad: Any) -> Any:
    """Corners as top-left, top-right, bottom-right, bottom-left, the long side on top."""
    pts = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    centre = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])
    pts = pts[np.argsort(angles)]  # clockwise from the left (image y points down)
    start = int(np.argmin(pts.sum(axis=1)))
    pts = np.roll(pts, -start, axis=0)
    top, left = np.linalg.norm(pts[1] - pts[0]), np.linalg.norm(pts[3] - pts[0])
    if left > top:  # portrait in view: rotate so the long side is the top
        pts = np.roll(pts, -1, axis=0)
    return pts


def _aspect(pts: Any) -> float:
    w = (np.linalg.norm(pts[1] - pts[0]) + np.linalg.norm(pts[2] - pts[3])) / 2
    h = (np.linalg.norm(pts[3] - pts[0]) + np.linalg.norm(pts[2] - pts[1])) / 2
    return float(w / h) if h else 0.0


def _candidates(edges: Any, area_min: float, area_max: float) -> list[Any]:
    contours, _ = cv2.findContours(edges, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in sorted(contours, key=cv2.contourArea, reverse=True)[:5]:
        hull = cv2.convexHull(c)
        area = cv2.contourArea(hull)
        if area < area_min:
            break
        if area > area_max:
            continue
        peri = cv2.arcLength(hull, True)
        approx = cv2.approxPolyDP(hull, 0.02 * peri, True)
        if len(approx) != 4:  # a finger or glare broke a corner: the rotated bounding box
            approx = cv2.boxPoints(cv2.minAreaRect(hull))
        pts = _order(approx)
        if abs(_aspect(pts) - CARD_ASPECT) <= ASPECT_SLACK * CARD_ASPECT:
            out.append(pts)
    return out


def find_card(frame: Frame) -> Any | None:
    """The corners (4×2 float32, frame pixels, TL TR BR BL with the long side on top) of the
    largest card-shaped quadrilateral in view, or None."""
    g = grey(frame)
    scale = WORK_W / g.shape[1]
    small = cv2.resize(g, (WORK_W, round(g.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (5, 5), 0)
    area = small.shape[0] * small.shape[1]
    area_min, area_max = MIN_AREA * area, MAX_AREA * area
    edges = cv2.dilate(cv2.Canny(small, 30, 90), np.ones((3, 3), np.uint8), iterations=2)
    found = _candidates(edges, area_min, area_max)
    if not found:
        _, bright = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        found = _candidates(bright, area_min, area_max)
    return found[0] / scale if found else None


def rectify(frame: Frame, corners: Any) -> Frame:
    """The card seen square-on, ``RECT_W`` × ``RECT_H``, grey."""
    target = np.array([[0, 0], [RECT_W - 1, 0], [RECT_W - 1, RECT_H - 1], [0, RECT_H - 1]],
                      dtype=np.float32)
    m = cv2.getPerspectiveTransform(np.asarray(corners, dtype=np.float32), target)
    return cv2.warpPerspective(grey(frame), m, (RECT_W, RECT_H), flags=cv2.INTER_LINEAR)


def crop(card: Frame, spec: FieldSpec) -> Frame:
    """The field's box, scaled to ``FIELD_H`` per text line, contrast stretched, with a white
    margin (tesseract reads text touching the border badly)."""
    h, w = card.shape[:2]
    x0, y0, x1, y1 = spec.box
    part = card[round(y0 * h):round(y1 * h), round(x0 * w):round(x1 * w)]
    if part.size == 0:
        return part
    lines = 3 if spec.name == "mrz" else 1
    target_h = FIELD_H * lines if spec.name != "title" else part.shape[0]
    f = target_h / part.shape[0]
    if abs(f - 1) > 0.05:
        part = cv2.resize(part, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
    part = cv2.normalize(part, part.copy(), 0, 255, cv2.NORM_MINMAX)
    return cv2.copyMakeBorder(part, 12, 12, 12, 12, cv2.BORDER_REPLICATE)


class _Fields:
    """The core's FieldReader port bound to one rectified card and one engine."""

    def __init__(self, card: Frame, engine: TextEngine) -> None:
        self.card, self.engine = card, engine

    def __call__(self, spec: FieldSpec) -> tuple[str, int]:
        return self.engine.text(crop(self.card, spec), lang=spec.lang,
                                whitelist=spec.whitelist, psm=spec.psm)


def card_views(frame: Frame) -> list[Frame]:
    """The rectified card in view, upright and turned over (180°); the whole frame when no
    card edge is found but the image itself has a card's shape (a scan or a cropped photo)."""
    corners = find_card(frame)
    if corners is not None:
        card = rectify(frame, corners)
    else:
        h, w = frame.shape[:2]
        if abs(w / h - CARD_ASPECT) > ASPECT_SLACK * CARD_ASPECT / 2:
            return []
        card = cv2.resize(grey(frame), (RECT_W, RECT_H), interpolation=cv2.INTER_AREA)
    return [card, cv2.rotate(card, cv2.ROTATE_180)]


def read_card_frame(frame: Frame, engine: TextEngine) -> CardText | None:
    """What the card in ``frame`` says (``readers.ocr.read_card``), or None: no card, not a
    card model we know, or an MRZ whose check digits fail. Blocking: run it off the event
    loop."""
    for view in card_views(frame):
        found = read_card(_Fields(view, engine))
        if found is not None:
            return found
    return None
