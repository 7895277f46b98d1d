"""Camera clips for the tests: QR codes held up in front of a blank desk."""

from __future__ import annotations

from pathlib import Path

from readers.doubles.render import compose, render_qr, write_clip


def clip(path: Path, *payloads: str, hold: int = 20) -> Path:
    blank = compose(render_qr("x")[:1, :1])
    scenes = [(blank, 3)]
    for p in payloads:
        scenes += [(compose(render_qr(p, module_px=6)), hold), (blank, 3)]
    write_clip(path, scenes)
    return path
