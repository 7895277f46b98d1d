"""The camera adapter's phone side: find the e-card panel that VssID or VNeID draws inside a
phone screen, rectify it to the layouts' frame, and read it (``readers.ocr.screen``).

The printed-card finder (``card.py``) looks at outer outlines only, so a card panel inside a
phone (the bezel and the app around it) escapes it; here every closed outline counts, inner
ones included, and a candidate must be a filled quadrilateral of the card's shape. Which app
drew it is the title's to say (``readers/ocr/layouts.py``, SCREEN_LAYOUTS).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from readers.devices.camera.card import (
    WORK_W,
    Fields,
    aspect,
    order_corners,
    rectify,
    work_image,
)
from readers.devices.camera.decode import Frame
from readers.ocr.layouts import CARD_ASPECT
from readers.ocr.read import CardText, TextEngine
from readers.ocr.screen import read_screen

# A card panel on a phone held up to the desk camera: from a portrait phone's (≈ 4 % of the
# frame) to a turned phone's card view (≈ 40 %).
MIN_AREA = 0.03
MAX_AREA = 0.85
FILL = 0.85        # the outline fills this much of its quadrilateral (a panel, not a blob)
MAX_PANELS = 2     # candidates read, largest first (each costs a title read)
# A panel drawn flat on a screen held up to the camera keeps its shape better than a card on a
# desk; an upright phone's whole screen (≈ 1.3 when its lower part is out of view) must fail.
ASPECT_SLACK = 0.15


def _quads(binary: Any, area_min: float, area_max: float) -> list[tuple[float, Any]]:
    contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours:
        area = cv2.contourArea(c)
        if not area_min <= area <= area_max:
            continue
        hull = cv2.convexHull(c)
        approx = cv2.approxPolyDP(hull, 0.02 * cv2.arcLength(hull, True), True)
        if len(approx) != 4:
            approx = cv2.boxPoints(cv2.minAreaRect(hull))
        pts = order_corners(approx)
        quad = cv2.contourArea(pts.reshape(-1, 1, 2))
        if quad and area / quad >= FILL and (
                abs(aspect(pts) - CARD_ASPECT) <= ASPECT_SLACK * CARD_ASPECT):
            out.append((quad, pts))
    return out


def _same(a: Any, b: Any, tol: float) -> bool:
    return float(np.abs(a - b).max()) <= tol


def find_panels(frame: Frame) -> list[Any]:
    """The corners (4×2 float32, frame pixels, TL TR BR BL with the long side on top) of the
    card-shaped panels in view, inner outlines included, largest first, at most
    ``MAX_PANELS``."""
    small, scale = work_image(frame)
    area = small.shape[0] * small.shape[1]
    lo, hi = MIN_AREA * area, MAX_AREA * area
    _, bright = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    edges = cv2.dilate(cv2.Canny(small, 30, 90), np.ones((3, 3), np.uint8), iterations=1)
    found = sorted(_quads(bright, lo, hi) + _quads(edges, lo, hi), key=lambda q: -q[0])
    panels: list[Any] = []
    for _, pts in found:
        if not any(_same(pts, p, 0.04 * WORK_W) for p in panels):
            panels.append(pts)
        if len(panels) == MAX_PANELS:
            break
    return [p / scale for p in panels]


def screen_views(frame: Frame) -> list[Frame]:
    """Each panel in view rectified, upright and turned over (180°)."""
    views = []
    for corners in find_panels(frame):
        panel = rectify(frame, corners)
        views += [panel, cv2.rotate(panel, cv2.ROTATE_180)]
    return views


def read_screen_frame(frame: Frame, engine: TextEngine) -> CardText | None:
    """What the e-card on a phone in ``frame`` says (``readers.ocr.read_screen``), or None.
    Blocking: run it off the event loop."""
    for view in screen_views(frame):
        found = read_screen(Fields(view, engine))
        if found is not None:
            return found
    return None
