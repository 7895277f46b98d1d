"""``tiepdon qr scan FILE`` runs the camera loop's whole chain: a file is not a live feed."""

from __future__ import annotations

import json
from pathlib import Path

import cv2

from readers.devices.camera import decode_shipped
from readers.doubles.render import compose, render_qr
from tests.conftest import CCCD_EXAMPLE
from tests.test_camera import motion_blurred
from tests.test_cli import run


def test_qr_scan_reads_what_only_the_hard_passes_read(tmp_path: Path) -> None:
    frame = motion_blurred(compose(render_qr(CCCD_EXAMPLE, module_px=6)), 15, 30)
    assert decode_shipped(frame) == []  # the cheap chain alone misses it
    image = tmp_path / "blurred.png"
    cv2.imwrite(str(image), frame)
    p = run("qr", "scan", str(image))
    assert p.returncode == 0, p.stderr
    (found,) = json.loads(p.stdout)["payloads"]
    assert (found["kind"], found["id_number"], found["full_name"]) == (
        "cccd_qr", "001098012345", "NGUYỄN VĂN B")
