"""Decoders measured by ``bench/qr.py`` beside the shipped chain; never used by the daemon.

pyzbar and OpenCV's detectors were candidates (bench/RESULTS.md); the chain the daemon ships is
``readers.devices.camera.decode_shipped``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import cv2

from readers.devices.camera import (
    Frame,
    decode_hard,
    decode_shipped,
    decode_zxing,
    finder_corners,
    grey,
    utf8,
)


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


def decode_with_hard(frame: Frame) -> list[str]:
    """What the camera loop reads from a frame held up for a second: the shipped chain, then on
    a miss the hard passes with OpenCV's corners (the loop runs them once a second)."""
    return decode_shipped(frame) or decode_hard(frame, finder_corners(frame))


DECODERS: dict[str, Callable[[Frame], list[str]]] = {
    "zxing-cpp": decode_zxing,
    "pyzbar": decode_zbar,
    "opencv": decode_opencv,
    "opencv-aruco": decode_opencv_aruco,
    "shipped": decode_shipped,
    "shipped+hard": decode_with_hard,
}


