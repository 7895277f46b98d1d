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
# The title block is read smaller than drawn: its big letters need no more, and tesseract's
# time grows with the pixels (bench/ocr.py: 0.6 identifies as many cards as 1.0, in 35 % less).
TITLE_SCALE = 0.6
# How a field is prepared for each opinion: its line height, whether it is binarised (Otsu),
# and how strongly it is sharpened (unsharp mask: a webcam's blur leaves tesseract nothing).
# The second is the least like the first (no sharpening, binarised, larger): two sharpened
# reads shared a misread (1962 as 1902) on the hard webcam set.
OPINIONS = ((FIELD_H, False, 2.0), (64, True, 0.0), (FIELD_H, False, 0.0), (64, True, 2.0))


def order_corners(quad: Any) -> Any:
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


def aspect(pts: Any) -> float:
    w = (np.linalg.norm(pts[1] - pts[0]) + np.linalg.norm(pts[2] - pts[3])) / 2
    h = (np.linalg.norm(pts[3] - pts[0]) + np.linalg.norm(pts[2] - pts[1])) / 2
    return float(w / h) if h else 0.0


def _candidates(edges: Any, area_min: float, area_max: float, *, precise: bool = True
                ) -> list[Any]:
    contours, _ = cv2.findContours(edges, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
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
        pts = order_corners(approx)
        if precise:
            pts = _refine(pts, c.reshape(-1, 2).astype(np.float32))
        if abs(aspect(pts) - CARD_ASPECT) <= ASPECT_SLACK * CARD_ASPECT:
            out.append(pts)
    return out


# Corner refinement: each side is re-fitted to the outline's own straight run, so that a
# finger or glare over a corner (which the convex hull wraps) does not tilt the card.
SIDE_BAND = 0.3      # outline points this far from a hull side (of the short side) may be its
INLIER_PX = 1.5      # a point this close to a candidate line supports it (work pixels)
MAX_SHIFT = 0.45     # a refined corner moves at most this much of the short side


def _fit_side(points: Any, a: Any, b: Any, band: float) -> tuple[Any, Any] | None:
    """The line (a point, a unit direction) best supported by the outline points near the
    side a→b: the pair of points with most inliers, then a least-squares fit to those."""
    d = b - a
    length = float(np.linalg.norm(d))
    if length < 1:
        return None
    normal = np.array([-d[1], d[0]]) / length
    rel = points - a
    along = rel @ d / length**2
    near = points[(np.abs(rel @ normal) < band) & (along > -0.05) & (along < 1.05)]
    if len(near) < 12:
        return None
    picks = near[np.linspace(0, len(near) - 1, 14).astype(int)]
    best, best_count = None, 0
    for i, p in enumerate(picks):
        for q in picks[i + 1:]:
            v = q - p
            span = float(np.linalg.norm(v))
            if span < 0.3 * length:
                continue
            n = np.array([-v[1], v[0]]) / span
            inliers = np.abs((near - p) @ n) < INLIER_PX
            count = int(inliers.sum())
            if count > best_count:
                best, best_count = inliers, count
    if best is None or best_count < 12:
        return None
    vx, vy, x0, y0 = cv2.fitLine(near[best], cv2.DIST_L2, 0, 0.01, 0.01).ravel()
    return np.array([x0, y0]), np.array([vx, vy])


def _meet(l1: tuple[Any, Any], l2: tuple[Any, Any]) -> Any | None:
    (p, u), (q, v) = l1, l2
    m = np.array([u, -v]).T
    if abs(np.linalg.det(m)) < 1e-6:
        return None
    s = np.linalg.solve(m, q - p)
    return p + s[0] * u


def _refine(pts: Any, outline: Any) -> Any:
    """``pts`` (ordered corners) with each side re-fitted to the outline; unchanged when a side
    has no straight run or a corner would move implausibly far."""
    short = float(min(np.linalg.norm(pts[1] - pts[0]), np.linalg.norm(pts[3] - pts[0])))
    lines = [_fit_side(outline, pts[i], pts[(i + 1) % 4], SIDE_BAND * short) for i in range(4)]
    out = []
    for i in range(4):
        before, after = lines[i - 1], lines[i]
        corner = _meet(before, after) if before is not None and after is not None else None
        if corner is None or np.linalg.norm(corner - pts[i]) > MAX_SHIFT * short:
            return pts
        out.append(corner)
    return np.array(out, dtype=np.float32)


def work_image(frame: Frame) -> tuple[Frame, float]:
    """The frame grey, ``WORK_W`` wide and softened, where outlines are searched; and the
    scale from the frame to it."""
    g = grey(frame)
    scale = WORK_W / g.shape[1]
    small = cv2.resize(g, (WORK_W, round(g.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small, (5, 5), 0), scale


def find_card(frame: Frame, *, precise: bool = True) -> Any | None:
    """The corners (4×2 float32, frame pixels, TL TR BR BL with the long side on top) of the
    largest card-shaped quadrilateral in view, or None. ``precise=False``: the corners as the
    hull gives them, without fitting each side to the card's edge — enough to see whether a
    card rests in view (the camera loop asks five times a second), not to read it."""
    small, scale = work_image(frame)
    area = small.shape[0] * small.shape[1]
    area_min, area_max = MIN_AREA * area, MAX_AREA * area
    edges = cv2.dilate(cv2.Canny(small, 30, 90), np.ones((3, 3), np.uint8), iterations=2)
    found = _candidates(edges, area_min, area_max, precise=precise)
    if not found:
        _, bright = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        found = _candidates(bright, area_min, area_max, precise=precise)
    return found[0] / scale if found else None


def rectify(frame: Frame, corners: Any) -> Frame:
    """The card seen square-on, ``RECT_W`` × ``RECT_H``, grey."""
    target = np.array([[0, 0], [RECT_W - 1, 0], [RECT_W - 1, RECT_H - 1], [0, RECT_H - 1]],
                      dtype=np.float32)
    m = cv2.getPerspectiveTransform(np.asarray(corners, dtype=np.float32), target)
    return cv2.warpPerspective(grey(frame), m, (RECT_W, RECT_H), flags=cv2.INTER_LINEAR)


def crop(card: Frame, spec: FieldSpec, *, opinion: int = 0) -> Frame:
    """The field's box, scaled to ``FIELD_H`` per text line, contrast stretched, with a white
    margin (tesseract reads text touching the border badly). ``opinion`` > 0: prepared as
    ``OPINIONS`` says, for another opinion on a doubtful key field."""
    height, binarise, sharpen = OPINIONS[opinion]
    part = box_of(card, spec)
    if part.size == 0:
        return part
    target_h = height * spec.lines if spec.name != "title" else part.shape[0] * TITLE_SCALE
    f = target_h / part.shape[0]
    if abs(f - 1) > 0.05:
        part = cv2.resize(part, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
    part = cv2.normalize(part, part.copy(), 0, 255, cv2.NORM_MINMAX)
    if sharpen:
        soft = cv2.GaussianBlur(part, (0, 0), 3.0)
        part = cv2.addWeighted(part, 1 + sharpen, soft, -sharpen, 0)
    if binarise:
        _, part = cv2.threshold(part, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return cv2.copyMakeBorder(part, 12, 12, 12, 12, cv2.BORDER_REPLICATE)


# A text line, to ``text_lines``: a band of rows where this share of the pixels is ink (after
# joining letters along the line), at least this share of the box high.
LINE_INK = 0.25
LINE_MIN_H = 0.05


def box_of(card: Frame, spec: FieldSpec) -> Frame:
    h, w = card.shape[:2]
    x0, y0, x1, y1 = spec.box
    return card[round(y0 * h):round(y1 * h), round(x0 * w):round(x1 * w)]


def text_lines(part: Frame) -> int:
    """How many lines of text run across a grey box (a cheap look before OCR: the MRZ is three
    lines across the card, a page or a front shows another count there)."""
    if part.size == 0:
        return 0
    ink = cv2.adaptiveThreshold(part, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV,
                                31, 12)
    ink = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, np.ones((1, 15), np.uint8))
    rows = np.append((ink > 0).mean(axis=1) > LINE_INK, False)
    edges = np.flatnonzero(np.diff(np.concatenate(([False], rows)).astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]
    return int(np.sum(ends - starts >= LINE_MIN_H * part.shape[0]))


class Fields:
    """The core's FieldReader port bound to one rectified card and one engine. A box meant to
    hold several lines of text that does not show as many is not read (nothing is there)."""

    def __init__(self, card: Frame, engine: TextEngine) -> None:
        self.card, self.engine = card, engine

    opinions = len(OPINIONS)

    def __call__(self, spec: FieldSpec, *, opinion: int = 0) -> tuple[str, int]:
        if spec.lines > 1 and text_lines(box_of(self.card, spec)) != spec.lines:
            return "", 0
        return self.engine.text(crop(self.card, spec, opinion=opinion), lang=spec.lang,
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
        found = read_card(Fields(view, engine))
        if found is not None:
            return found
    return None
