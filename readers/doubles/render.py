"""QR frames and clips for the tests, the benchmark set and the demo's camera clip (segno)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from readers.devices.camera import Frame


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
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
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
