"""The camera adapter: QR decoding on frames, capture, and the rendering of test clips — the
only importer of ``cv2``, ``zxingcpp``, ``pyzbar`` and ``segno``.

Every decoder returns the payload's exact bytes decoded as UTF-8 (never a charset guess: a
Vietnamese name must survive byte for byte); a payload that is not valid UTF-8 is dropped.
The shipped chain (chosen by ``bench/qr.py``, see bench/RESULTS.md) runs zxing-cpp on every
frame and, on a miss, a second pass on a contrast-equalised frame (glare, low contrast) —
cheap fallbacks, rate-limited by the camera loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import zxingcpp

Frame = Any  # numpy.ndarray, BGR or grey

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
    results = zxingcpp.read_barcodes(grey(frame), formats=zxingcpp.BarcodeFormat.QRCode,
                                     try_rotate=True, try_downscale=True, try_invert=True)
    return [t for t in (utf8(bytes(r.bytes)) for r in results if r.valid) if t]


def decode_zbar(frame: Frame) -> list[str]:
    from pyzbar import pyzbar  # measured by the benchmark, not shipped in the chain

    found = pyzbar.decode(grey(frame), symbols=[pyzbar.ZBarSymbol.QRCODE])
    return [t for t in (utf8(r.data) for r in found) if t]


_OPENCV = cv2.QRCodeDetector()
_ARUCO = cv2.QRCodeDetectorAruco() if hasattr(cv2, "QRCodeDetectorAruco") else None


def decode_opencv(frame: Frame) -> list[str]:
    with contextlib.suppress(cv2.error):
        ok, texts, _, _ = _OPENCV.detectAndDecodeMulti(grey(frame))
        if ok:
            return [t for t in texts if t]
    return []


def decode_opencv_aruco(frame: Frame) -> list[str]:
    if _ARUCO is None:
        return []
    with contextlib.suppress(cv2.error):
        ok, texts, _, _ = _ARUCO.detectAndDecodeMulti(grey(frame))
        if ok:
            return [t for t in texts if t]
    return []


_CLAHE = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8))


def equalised(frame: Frame) -> Frame:
    """Second pass for glare and low contrast (adaptive threshold hurts low contrast)."""
    return _CLAHE.apply(grey(frame))


def decode_shipped(frame: Frame) -> list[str]:
    """zxing-cpp on the frame; on a miss, zxing-cpp on the equalised frame."""
    g = grey(frame)
    found = decode_zxing(g)
    if not found:
        found = decode_zxing(equalised(g))
    return found


DECODERS: dict[str, Callable[[Frame], list[str]]] = {
    "zxing-cpp": decode_zxing,
    "pyzbar": decode_zbar,
    "opencv": decode_opencv,
    "opencv-aruco": decode_opencv_aruco,
    "shipped": decode_shipped,
}


@dataclass(frozen=True, slots=True)
class FileResult:
    path: str
    payloads: list[str]
    error: str | None = None


def frames_of(path: Path, *, step: int = 1, limit: int = 10_000) -> Sequence[Frame]:
    """The frames of an image or video file (every ``step``-th frame of a video)."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        return [] if image is None else [image]
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        index = 0
        while len(frames) < limit:
            ok, frame = cap.read()
            if not ok:
                break
            if index % step == 0:
                frames.append(frame)
            index += 1
    finally:
        cap.release()
    return frames


def scan_file(path: Path, decoder: Callable[[Frame], list[str]] = decode_shipped
              ) -> FileResult:
    """Every distinct payload in an image or video, in order of first sight."""
    if not path.is_file():
        return FileResult(str(path), [], "file not found")
    frames = frames_of(path)
    if not frames:
        return FileResult(str(path), [], "not an image or video that can be read")
    seen: list[str] = []
    for frame in frames:
        for text in decoder(frame):
            if text not in seen:
                seen.append(text)
    return FileResult(str(path), seen)


def to_frame(matrix: Any) -> Frame:
    """A numpy array (tests, benchmark) as a contiguous uint8 frame."""
    return np.ascontiguousarray(matrix, dtype=np.uint8)


# -- rendering: test data, the benchmark set and the demo's camera clip -----------------------
def render_qr(payload: str, *, module_px: int = 6, border: int = 4, eci: bool = False) -> Frame:
    """Black-on-white QR (grey image) of the UTF-8 payload, error correction M."""
    import segno

    code = segno.make_qr(payload, error="m", encoding="utf-8", eci=eci, boost_error=False)
    matrix = np.array([list(row) for row in code.matrix], dtype=np.uint8)
    img = np.where(matrix == 1, 0, 255).astype(np.uint8)
    img = np.pad(img, border, constant_values=255)
    return cv2.resize(img, None, fx=module_px, fy=module_px, interpolation=cv2.INTER_NEAREST)


def compose(code: Frame, *, size: tuple[int, int] = (1280, 720), at: tuple[int, int] | None = None,
            background: int = 180) -> Frame:
    """A 720p colour frame with the code pasted on a plain desk-like background."""
    w, h = size
    frame = np.full((h, w, 3), background, dtype=np.uint8)
    ch, cw = code.shape[:2]
    x, y = at if at is not None else ((w - cw) // 2, (h - ch) // 2)
    patch = code if code.ndim == 3 else cv2.cvtColor(code, cv2.COLOR_GRAY2BGR)
    frame[y:y + ch, x:x + cw] = patch
    return frame


def write_clip(path: Path, scenes: Sequence[tuple[Frame, int]], *, fps: int = 15) -> None:
    """An MJPG video: each scene is a frame held for a number of frames."""
    h, w = scenes[0][0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    try:
        for frame, count in scenes:
            for _ in range(count):
                writer.write(frame)
    finally:
        writer.release()


def screen_code(payload: str) -> Frame:
    """A VssID-style phone screen: the code light-on-dark with a soft screen texture."""
    code = 255 - render_qr(payload, module_px=5)
    phone = np.full((code.shape[0] + 120, code.shape[1] + 60), 35, dtype=np.uint8)
    phone[60:60 + code.shape[0], 30:30 + code.shape[1]] = code
    yy, xx = np.mgrid[0:phone.shape[0], 0:phone.shape[1]]
    moire = (6 * np.sin(xx / 2.1) * np.sin(yy / 2.3)).astype(np.int16)
    return np.clip(phone.astype(np.int16) + moire, 0, 255).astype(np.uint8)
