"""The camera adapter: QR decoding on frames and capture — the production importer of ``cv2``
and ``zxingcpp``. (Rendering test frames and the benchmark's other decoders live in
``readers/doubles``.)

Every decoder returns the payload's exact bytes decoded as UTF-8 (never a charset guess: a
Vietnamese name must survive byte for byte); a payload that is not valid UTF-8 is dropped.
The shipped chain (chosen by ``bench/qr.py``, see bench/RESULTS.md) runs zxing-cpp on every
frame and, on a miss, once more on a sharpened frame; the camera loop decodes only the newest
frame, so a slow pass drops frames instead of lagging.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import zxingcpp

Frame = Any  # numpy.ndarray, BGR or grey

HINT_EVERY = 15  # missed frames between two "code in view" checks
VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".mov", ".webm", ".mjpeg", ".mjpg"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}


def grey(frame: Frame) -> Frame:
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def utf8(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def decode_zxing(frame: Frame) -> list[str]:
    results = zxingcpp.read_barcodes(grey(frame),
                                     formats=zxingcpp.BarcodeFormat.QRCode,  # type: ignore[arg-type]
                                     try_rotate=True, try_downscale=True, try_invert=True)
    return [t for t in (utf8(bytes(r.bytes)) for r in results if r.valid) if t]


_OPENCV = cv2.QRCodeDetector()


def sharpened(frame: Frame) -> Frame:
    """Unsharp mask: the second pass that helped blur and motion blur on the benchmark set
    (CLAHE added nothing there; an adaptive threshold lost glare frames; half size lost
    codes — bench/RESULTS.md)."""
    g = grey(frame)
    return cv2.addWeighted(g, 1.8, cv2.GaussianBlur(g, (0, 0), 2.0), -0.8, 0)


def screen_view(frame: Frame) -> Frame:
    """A phone screen as the camera sees it: each pixel is three coloured subpixel bars with
    dark gaps, and the usual grey conversion (mostly green) turns red and blue bars dark —
    stripes and moiré over the modules. The brightest channel lights every bar; a small blur
    closes the gaps (bench/RESULTS.md: phone screens 33 % → 100 %)."""
    b, g, r = cv2.split(frame)
    return cv2.GaussianBlur(cv2.max(cv2.max(b, g), r), (0, 0), 1.2)


def decode_shipped(frame: Frame, *, turn: int | None = None) -> list[str]:
    """zxing-cpp on the frame; on a miss, on the sharpened frame, then (colour frames) on the
    screen view. The camera loop passes its frame count as ``turn`` and gets the base pass
    plus one of the two others, alternating: a code held up stays for many frames, so both
    are tried within two frames, and an empty desk pays for two passes, not three."""
    g = grey(frame)
    found = decode_zxing(g)
    if found:
        return found
    if turn is None or turn % 2 == 0 or frame.ndim != 3:
        found = decode_zxing(sharpened(g))
    if not found and frame.ndim == 3 and (turn is None or turn % 2 == 1):
        found = decode_zxing(screen_view(frame))
    return found


# -- the hard passes: only where a code is probably in view ----------------------------------
HARD_LENGTHS = (5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19)  # motion blur lengths tried, px at 720p
DEFOCUS_SIGMAS = (1.5, 2.0, 2.5, 3.0)  # defocus blurs tried, px at 720p
BEND_AMPLITUDES = (0.015, -0.015, 0.03, -0.03, 0.045, -0.045, 0.06, -0.06)  # of the code side
_RECT_SIDE = 400  # a rectified code's side, px (modules of 6-10 px for versions 7-15)
_RECT_MARGIN = 60  # quiet zone kept around it, px


def read_with_quads(g: Frame, scale: float = 1.0) -> tuple[list[str], list[Any]]:
    """One zxing-cpp read that returns both the payloads and the corners (TL, TR, BR, BL, in
    the coordinates of a frame ``scale`` times smaller) of the codes it found but could not
    read: the finder patterns were seen, the checksum failed — so a code is there."""
    texts: list[str] = []
    quads = []
    for r in zxingcpp.read_barcodes(g, formats=zxingcpp.BarcodeFormat.QRCode,  # type: ignore[arg-type]
                                    return_errors=True):
        if r.valid:
            text = utf8(bytes(r.bytes))
            if text:
                texts.append(text)
            continue
        p = r.position
        q = np.array([[p.top_left.x, p.top_left.y], [p.top_right.x, p.top_right.y],
                      [p.bottom_right.x, p.bottom_right.y], [p.bottom_left.x, p.bottom_left.y]],
                     np.float32) / np.float32(scale)
        if cv2.contourArea(q) > 1600 and cv2.isContourConvex(q.reshape(-1, 1, 2)):
            quads.append(q)
    return texts, quads


def error_quads(g: Frame) -> list[Any]:
    """The corners of the codes zxing-cpp found but could not read (see ``read_with_quads``)."""
    return read_with_quads(g)[1]


def distinct_quads(quads: Sequence[Any], limit: int = 3) -> list[Any]:
    """The largest quads first (zxing-cpp also pairs a finder pattern with alignment patterns
    into a small false code inside the real one), near-duplicates dropped, at most ``limit``."""
    kept: list[Any] = []
    for q in sorted(quads, key=lambda q: -cv2.contourArea(q)):
        tol = 0.08 * np.sqrt(cv2.contourArea(q))
        if all(np.abs(q - k).max() > tol for k in kept):
            kept.append(q)
    return kept[:limit]


def decode_bent(g: Frame, quads: Sequence[Any]) -> list[str]:
    """A card bent in the hand and tilted: the corners rectified to a square, then the bend
    undone for a few half-sine amplitudes along either axis (a bend leaves the corners where a
    flat card's would be, so the perspective part is exact). bench: tilt_curve 50 → 90 %."""
    side, margin = _RECT_SIDE, _RECT_MARGIN
    size = side + 2 * margin
    target = np.array([[margin, margin], [margin + side, margin], [margin + side, margin + side],
                       [margin, margin + side]], np.float32)
    # the bend spans the card, a little more than the code: a quiet zone of ~4 modules
    u = np.arange(size, dtype=np.float32)
    span = side * 1.24
    s = np.sin(np.pi * np.clip((u - (size - span) / 2) / span, 0, 1)).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    # a card at the frame's edge: what lies outside is unknown; the paper's white (not the
    # edge row smeared outwards) keeps the quiet zone and the cut finder pattern's outline
    white = float(np.percentile(g[::4, ::4], 99))
    for q in quads:
        h = cv2.getPerspectiveTransform(q, target)
        rect = cv2.warpPerspective(g, h, (size, size), flags=cv2.INTER_CUBIC,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=white)
        found = decode_zxing(rect)
        for axis in (0, 1):
            for a in BEND_AMPLITUDES:
                if found:
                    return found
                shift = np.float32(a * side) * (s[None, :] if axis == 0 else s[:, None])
                mx, my = (xx, yy + shift) if axis == 0 else (xx + shift, yy)
                found = decode_zxing(cv2.remap(rect, mx, my, cv2.INTER_LINEAR,
                                               borderMode=cv2.BORDER_REPLICATE))
        if found:
            return found
    return []


PATCH_MAX_SIDE = 600  # px at 720p: a larger edge-dense patch is a textured surface, not a code
PATCH_MAX_ASPECT = 1.6  # a code smeared by up to ~20 px stays about square
PATCH_MIN_CONTRAST = 48  # grey levels between a patch's dark and light (2nd/98th percentiles)


def edge_mask(g: Frame) -> Frame:
    """Where edges are dense, on a quarter-size frame (1 there, else 0; ~1 ms)."""
    small = cv2.resize(g, (g.shape[1] // 4, g.shape[0] // 4), interpolation=cv2.INTER_AREA)
    small = small.astype(np.float32)
    edges = cv2.boxFilter(np.abs(cv2.Sobel(small, cv2.CV_32F, 1, 0))
                          + np.abs(cv2.Sobel(small, cv2.CV_32F, 0, 1)), -1, (7, 7))
    return (edges > max(0.35 * float(edges.max()), 12.0)).astype(np.uint8)


def textured_boxes(g: Frame, limit: int = 2) -> list[tuple[int, int, int, int]]:
    """Where a code may be although no finder pattern was seen (motion blur smears them):
    squarish, dense patches of edges on a quarter-size frame, largest first.

    Only patches a code could make: at most ``PATCH_MAX_SIDE`` a side and about square, with
    a code's contrast — a wood-grain desk makes one patch the size of the frame, or faint
    ones, and the Wiener filter over it cost ~0.6 s a frame (bench/RESULTS.md, issue 24)."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(edge_mask(g))
    boxes = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if (w >= 8 and h >= 8 and area >= 0.4 * w * h
                and max(w, h) <= PATCH_MAX_ASPECT * min(w, h)
                and 4 * max(w, h) <= PATCH_MAX_SIDE):
            patch = g[4 * y:4 * (y + h):2, 4 * x:4 * (x + w):2]
            lo, hi = np.percentile(patch, (2, 98))
            if hi - lo >= PATCH_MIN_CONTRAST:
                boxes.append((area, (4 * x, 4 * y, 4 * w, 4 * h)))
    boxes.sort(reverse=True)
    return [b for _, b in boxes[:limit]]


def patch_outlines(g: Frame, near: Sequence[Any]) -> list[Any]:
    """The corners (TL, TR, BR, BL) of the code-like patches (``textured_boxes``) that hold
    the centre of one of the ``near`` quads: the patch's outline, its convex hull reduced to
    four corners (else its smallest rotated rectangle). zxing-cpp's corners of a code it
    could not read are often those of a finder paired with alignment patterns — a part of a
    bent, tilted code; the outline is all of it (issue 24: tilt_curve, tuning seeds)."""
    mask = edge_mask(g)
    centres = [q.mean(axis=0) for q in near]
    out = []
    for x, y, w, h in textured_boxes(g):
        if not any(x <= cx < x + w and y <= cy < y + h for cx, cy in centres):
            continue
        sub = np.ascontiguousarray(mask[y // 4:(y + h) // 4, x // 4:(x + w) // 4])
        contours, _ = cv2.findContours(sub, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            continue
        hull = cv2.convexHull(max(contours, key=cv2.contourArea))
        approx = cv2.approxPolyDP(hull, 0.04 * cv2.arcLength(hull, True), True)
        pts = approx.reshape(-1, 2) if len(approx) == 4 else cv2.boxPoints(
            cv2.minAreaRect(hull))
        q = (pts.astype(np.float32) + np.array([x // 4, y // 4], np.float32)) * 4 + 1.5
        centre = q.mean(axis=0)
        q = q[np.argsort(np.arctan2(q[:, 1] - centre[1], q[:, 0] - centre[0]))]  # clockwise
        out.append(np.roll(q, -int(np.argmin(q.sum(axis=1))), axis=0))
    return out


def motion_psf(length: int, angle: float) -> Any:
    """A straight motion path of ``length`` px at ``angle`` (radians), bilinearly splatted."""
    size = length + 3 if (length + 3) % 2 else length + 4
    k = np.zeros((size + 1, size + 1), np.float32)
    c = (size - 1) / 2
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, 4 * length):
        x, y = c + t * np.cos(angle), c + t * np.sin(angle)
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        k[y0, x0] += (1 - fx) * (1 - fy)
        k[y0, x0 + 1] += fx * (1 - fy)
        k[y0 + 1, x0] += (1 - fx) * fy
        k[y0 + 1, x0 + 1] += fx * fy
    return k[:size, :size] / k.sum()


def blur_angle(crop: Frame) -> float:
    """The motion direction: the one along which the gradients are weakest (the smallest
    eigenvector of the structure tensor; a QR's own gradients are isotropic)."""
    gx = cv2.Sobel(crop, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(crop, cv2.CV_32F, 0, 1)
    j = np.array([[np.sum(gx * gx), np.sum(gx * gy)], [np.sum(gx * gy), np.sum(gy * gy)]])
    _, vectors = np.linalg.eigh(j)
    return float(np.arctan2(vectors[1, 0], vectors[0, 0]))


def gaussian_psf(sigma: float) -> Any:
    """A defocused lens's blur: a Gaussian of ``sigma`` px."""
    r = int(np.ceil(3 * sigma))
    k = cv2.getGaussianKernel(2 * r + 1, sigma)
    return (k @ k.T).astype(np.float32)


def wiener_reads(crop: Frame, kernels: Sequence[Any]) -> list[str]:
    """The crop deconvolved by each kernel in turn (a Wiener filter, NSR 0.01), stretched to
    full contrast and read at twice the size; the first read."""
    pad = 24
    padded = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    spectrum = np.fft.rfft2(padded)
    ch, cw = padded.shape
    for k in kernels:
        kernel = np.zeros((ch, cw), np.float32)
        kernel[:k.shape[0], :k.shape[1]] = k
        fk = np.fft.rfft2(np.roll(kernel, (-(k.shape[0] // 2), -(k.shape[1] // 2)), (0, 1)))
        wiener = np.conj(fk) / (np.abs(fk) ** 2 + 0.01)
        sharp = np.fft.irfft2(spectrum * wiener, s=(ch, cw))[pad:-pad, pad:-pad]
        lo, hi = np.percentile(sharp, (2, 98))
        sharp = np.clip((sharp - lo) * (255 / max(hi - lo, 1.0)), 0, 255)
        found = decode_zxing(cv2.resize(sharp.astype(np.uint8), None, fx=2, fy=2,
                                        interpolation=cv2.INTER_CUBIC))
        if found:
            return found
    return []


def decode_deblurred(g: Frame) -> list[str]:
    """Blur undone on each textured patch. Motion: the blur direction from the structure
    tensor, then a Wiener filter for a few path lengths on a lightly smoothed copy (low light
    adds noise the filter would amplify), stretched to full contrast and read at twice the
    size (zxing-cpp's binarizer lost the small, noisy modules at 1×: held-out seeds
    motion_lowlight_jpeg 87–95 → 97–100 %; bench/RESULTS.md). Then defocus: Gaussian blurs
    of a few widths, on the patch itself (issue 24: the blur family, 87–93 % on held-out
    seeds, was the one the hard passes did nothing for)."""
    for x, y, w, h in textured_boxes(g):
        m = int(0.15 * max(w, h))
        x0, y0 = max(0, x - m), max(0, y - m)
        crop = g[y0:min(g.shape[0], y + h + m), x0:min(g.shape[1], x + w + m)].astype(np.float32)
        smooth = cv2.GaussianBlur(crop, (0, 0), 1.0)
        angle = blur_angle(smooth)
        found = (wiener_reads(smooth, [motion_psf(n, angle) for n in HARD_LENGTHS])
                 or wiener_reads(crop, [gaussian_psf(s) for s in DEFOCUS_SIGMAS]))
        if found:
            return found
    return []


def decode_hard(frame: Frame, corners: Sequence[Any] = ()) -> list[str]:
    """The expensive passes, for a frame the shipped chain could not read, run by the camera
    loop once a second while nothing is read: the frame at twice the size (small dark-mode
    phone codes), the bent card's rectification (on the codes zxing-cpp saw but could not read
    at 1× and at 2×, and ``corners`` — OpenCV's detection, which the loop's "code in view"
    check computes anyway — largest first, at most three), then motion-blur and defocus
    deconvolution on the textured patches a code could make, then — where a code was seen —
    the bent card's rectification on the outline of the patch it lies in. On a frame without
    a code it costs the 2× read and little more (bench/RESULTS.md, issue 24: tens of ms, a
    wood-grain desk included); no false positive on the negative frames."""
    g = grey(frame)
    # a white border: a code at the frame's edge gets back a quiet zone (see decode_bent)
    pad = 24
    padded = cv2.copyMakeBorder(g, pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                                value=float(np.percentile(g[::4, ::4], 99)))
    found, quads2 = read_with_quads(cv2.resize(padded, None, fx=2, fy=2,
                                               interpolation=cv2.INTER_CUBIC), 2.0)
    quads: list[Any] = []
    if not found:
        quads = [*error_quads(g), *(q - np.float32(pad) for q in quads2), *corners]
        found = decode_bent(g, distinct_quads(quads))
    if not found:
        found = decode_deblurred(g)
    if not found and quads:  # a code is there: its whole outline, bent back
        found = decode_bent(g, patch_outlines(g, quads))
    return found


# -- is a code in view? -----------------------------------------------------------------------
def finder_corners(frame: Frame) -> list[Any]:
    """The corners OpenCV's detector finds (a QR is there), [] if none — used only when
    decoding failed: the "code in view" hint, and the bent-card pass of ``decode_hard``."""
    with contextlib.suppress(cv2.error):
        ok, points = _OPENCV.detect(grey(frame))
        if ok and points is not None:
            return [np.asarray(points, np.float32).reshape(4, 2)]
    return []


def code_in_view(frame: Frame) -> bool:
    """Finder patterns found (a QR is there) — used only when decoding failed."""
    return bool(finder_corners(frame))
