"""Camera and serial scanners: generated frames and clips, a pseudo-terminal pair, the daemon."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from readers.devices.camera import (
    CameraReader,
    decode_hard,
    decode_shipped,
    finder_corners,
    grey,
    scan_file,
)
from readers.devices.camera.decode import textured_boxes
from readers.devices.serialport import SerialScanner
from readers.doubles.cards import desk
from readers.doubles.decoders import DECODERS
from readers.doubles.render import compose, render_qr, screen_code
from readers.scan.framing import LineFramer
from readers.scan.scanloop import Deduper, SourceHealth, UnreadableHint
from tests.helpers.camera import clip
from tests.helpers.cli import run
from tests.helpers.daemon import collect, daemon_services, terminal_settings
from tests.helpers.samples import BHYT_NEW_EXAMPLE, BHYT_OLD_EXAMPLE, CCCD_EXAMPLE

# A name zbar's charset guessing is known to garble when the code has no UTF-8 marker.
NU = "001300012345||TRẦN THỊ NỮ|01012000|Nữ|Thừa Thiên Huế|01012022"


@pytest.mark.parametrize("payload", [CCCD_EXAMPLE, BHYT_OLD_EXAMPLE, BHYT_NEW_EXAMPLE, NU])
@pytest.mark.parametrize("eci", [False, True])
def test_shipped_chain_is_byte_exact(payload: str, eci: bool) -> None:
    frame = compose(render_qr(payload, module_px=5, eci=eci))
    assert DECODERS["shipped"](frame) == [payload]
    assert DECODERS["zxing-cpp"](frame) == [payload]


def test_inverted_screen_code_reads() -> None:
    frame = compose(screen_code(BHYT_NEW_EXAMPLE), background=90)
    assert DECODERS["shipped"](frame) == [BHYT_NEW_EXAMPLE]


def motion_blurred(frame: Any, length: int, degrees: float) -> Any:
    k: Any = np.zeros((length, length), np.float32)
    k[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D((length / 2 - .5, length / 2 - .5), degrees, 1.0)
    k = cv2.warpAffine(k, rot, (length, length))
    return cv2.filter2D(frame, -1, k / k.sum())


TILT = ((30, -20), (-25, 10), (20, 25), (-30, -15))


def bent_and_tilted(frame: Any, amplitude: float,
                    tilt: tuple[tuple[int, int], ...] = TILT) -> Any:
    """A card bent in the hand (a half sine across it) and held at an angle (``tilt``: how far
    each corner, TL, TR, BR, BL, moves)."""
    g = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    ys, xs = np.where(g < 128)
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    side = x1 - x0
    yy, xx = np.mgrid[0:g.shape[0], 0:g.shape[1]].astype(np.float32)
    inside = (xx >= x0 - 20) & (xx < x1 + 20)
    shift = np.where(inside, amplitude * side * np.sin(np.pi * (xx - x0 + 20) / (side + 40)),
                     0).astype(np.float32)
    bent = cv2.remap(g, xx, yy + shift, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    src = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
    dst = src + np.array(tilt, np.float32)
    return cv2.warpPerspective(bent, cv2.getPerspectiveTransform(src, dst),
                               (g.shape[1], g.shape[0]), borderMode=cv2.BORDER_REPLICATE)


@pytest.mark.parametrize("length", [13, 15])
def test_hard_passes_undo_motion_blur_the_cheap_chain_cannot_read(length: int) -> None:
    frame = motion_blurred(compose(render_qr(CCCD_EXAMPLE, module_px=6)), length, 30)
    assert decode_shipped(frame) == []
    assert decode_hard(frame) == [CCCD_EXAMPLE]


@pytest.mark.parametrize("amplitude", [0.03, 0.045])
def test_hard_passes_flatten_a_bent_tilted_card(amplitude: float) -> None:
    frame = bent_and_tilted(compose(render_qr(CCCD_EXAMPLE, module_px=6)), amplitude)
    assert decode_shipped(frame) == []
    assert decode_hard(frame, finder_corners(frame)) == [CCCD_EXAMPLE]


@pytest.mark.parametrize(("module", "tilt"), [
    (5, ((-10, 12), (-63, 23), (55, 43), (51, 21))),
    (4, ((20, -36), (-50, -46), (49, 15), (47, -16)))])
def test_hard_passes_flatten_a_card_by_its_outline(module: int,
                                                   tilt: tuple[tuple[int, int], ...]) -> None:
    """Tilted hard: zxing-cpp sees the code but its corners are those of a part of it; the
    outline of the code's patch is the whole code."""
    frame = bent_and_tilted(compose(render_qr(CCCD_EXAMPLE, module_px=module)), 0.045, tilt)
    assert decode_shipped(frame) == []
    assert decode_hard(frame, finder_corners(frame)) == [CCCD_EXAMPLE]


def test_hard_passes_read_nothing_on_a_desk_without_a_code() -> None:
    frame = compose(render_qr("x")[:1, :1])
    assert decode_hard(frame, finder_corners(frame)) == []


@pytest.mark.parametrize("length", [17, 19])
def test_hard_passes_undo_a_long_smear(length: int) -> None:
    """A hand moving fast: a smear longer than the 15 px the first passes tried."""
    frame = motion_blurred(compose(render_qr(CCCD_EXAMPLE, module_px=6)), length, 60)
    assert decode_shipped(frame) == []
    assert decode_hard(frame) == [CCCD_EXAMPLE]


@pytest.mark.parametrize(("payload", "module", "sigma"),
                         [(CCCD_EXAMPLE, 4, 2.6), (BHYT_NEW_EXAMPLE, 4, 2.6),
                          (BHYT_NEW_EXAMPLE, 5, 3.0)])
def test_hard_passes_undo_defocus(payload: str, module: int, sigma: float) -> None:
    """An out-of-focus code: neither the cheap chain nor the motion passes read it."""
    frame = cv2.GaussianBlur(compose(render_qr(payload, module_px=module)), (0, 0), sigma)
    assert decode_shipped(frame) == []
    assert decode_hard(frame) == [payload]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_wood_grain_desk_offers_no_patch_to_deblur(seed: int) -> None:
    """The whole frame is edge-dense on a textured desk: no patch a code could make, so the
    motion-blur pass (a Wiener filter for every length) has nothing to work on."""
    frame = desk(random.Random(seed))
    assert textured_boxes(grey(frame)) == []
    assert decode_hard(frame, finder_corners(frame)) == []


def test_a_blurred_code_on_a_wood_grain_desk_is_still_a_patch() -> None:
    frame = desk(random.Random(4))
    code = cv2.cvtColor(render_qr(CCCD_EXAMPLE, module_px=6), cv2.COLOR_GRAY2BGR)
    frame[100:100 + code.shape[0], 300:300 + code.shape[1]] = code
    frame = motion_blurred(frame, 13, 30)
    assert decode_shipped(frame) == []
    (box,) = textured_boxes(grey(frame))
    x, y, w, h = box
    assert abs(x - 300) < 40 and abs(y - 100) < 40 and abs(w - code.shape[1]) < 60
    assert abs(h - code.shape[0]) < 60
    assert decode_hard(frame) == [CCCD_EXAMPLE]


def test_scan_file_images_and_videos(tmp_path: Path) -> None:
    video = clip(tmp_path / "c.avi", CCCD_EXAMPLE, BHYT_NEW_EXAMPLE)
    assert scan_file(video).payloads == [CCCD_EXAMPLE, BHYT_NEW_EXAMPLE]
    import cv2

    image = tmp_path / "c.png"
    cv2.imwrite(str(image), compose(render_qr(BHYT_OLD_EXAMPLE)))
    assert scan_file(image).payloads == [BHYT_OLD_EXAMPLE]
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    assert scan_file(junk).error and scan_file(tmp_path / "missing.avi").error


def test_qr_scan_command(tmp_path: Path) -> None:
    video = clip(tmp_path / "c.avi", CCCD_EXAMPLE, "not a credential")
    p = run("qr", "scan", str(video))
    assert p.returncode == 0, p.stderr
    line = json.loads(p.stdout)
    assert line["file"] == str(video)
    assert line["payloads"][0]["kind"] == "cccd_qr"
    assert line["payloads"][1]["error"] == "qr_format"
    missing = run("qr", "scan", str(tmp_path / "nope.avi"))
    assert missing.returncode == 2 and json.loads(missing.stdout)["error"] == "file not found"


# -- pure loop logic -------------------------------------------------------------------------
def test_deduper_one_event_per_presentation() -> None:
    d = Deduper(gone_frames=3, repeat_seconds=30)
    events = [d.feed(["A"], t) for t in range(10)]            # held in view: one event
    assert sum(len(e) for e in events) == 1
    for t in range(10, 14):
        d.feed([], t)                                          # leaves view
    assert d.feed(["A"], 14) == ["A"]                          # shown again
    assert d.feed(["A", "B"], 15) == ["B"]
    assert d.feed(["A"], 50) == ["A"]                          # held past the repeat time


def test_source_health_backoff() -> None:
    h = SourceHealth()
    delays = [h.failed("x") for _ in range(6)]
    assert delays == [0.5, 1.0, 2.0, 5.0, 5.0, 5.0] and h.status == "down"
    h.opened()
    assert (h.status, h.failures) == ("ok", 0)


def test_unreadable_hint_rate_limited() -> None:
    hint = UnreadableHint(frames=3, every_seconds=10)
    fired = [hint.feed(True, False, t) for t in range(13)]  # fires at t=2 and t=12
    assert fired.count(True) == 2 and fired.index(True) == 2
    assert not hint.feed(True, True, 20)


def test_line_framer() -> None:
    f = LineFramer()
    assert f.feed(b"00109801") == []
    assert f.feed(CCCD_EXAMPLE.encode()[8:] + b"\r") == [CCCD_EXAMPLE]
    assert f.feed(b"\r\nabc\n\xff\xfe\r") == ["abc", None]
    assert f.feed(b"x" * 9000 + b"\r") == [] and f.dropped == 1


# -- the camera reader on clips ----------------------------------------------------------------
class Recorder:
    def __init__(self) -> None:
        self.payloads: list[str] = []
        self.states: list[tuple[str, str]] = []
        self.hints = 0
        self.changed = threading.Condition()

    def payload(self, text: str) -> None:
        with self.changed:
            self.payloads.append(text)
            self.changed.notify_all()

    def state(self, status: str, reason: str) -> None:
        with self.changed:
            self.states.append((status, reason))
            self.changed.notify_all()

    def hint(self) -> None:
        self.hints += 1

    def wait(self, predicate: object, timeout: float = 20) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, timeout), (self.payloads, self.states)  # type: ignore[arg-type]


@pytest.fixture
def camera(tmp_path: Path) -> Iterator[tuple[Path, Recorder]]:
    rec = Recorder()
    path = tmp_path / "camera.avi"
    stop = threading.Event()
    reader = CameraReader(str(path), on_payload=rec.payload, on_state=rec.state,
                          on_hint=rec.hint, fps=60)
    thread = threading.Thread(target=reader.run, args=(stop,), daemon=True)
    thread.start()
    yield path, rec
    stop.set()
    thread.join(10)


def test_camera_clip_gives_one_event_per_code(camera: tuple[Path, Recorder],
                                              tmp_path: Path) -> None:
    path, rec = camera
    rec.wait(lambda: rec.states and rec.states[-1][0] == "down")  # no camera yet
    clip(tmp_path / "tmp.avi", CCCD_EXAMPLE, BHYT_NEW_EXAMPLE, hold=30).rename(path)
    rec.wait(lambda: ("ok", "clip played to its end") in rec.states)
    assert rec.payloads == [CCCD_EXAMPLE, BHYT_NEW_EXAMPLE]
    assert ("ok", "") in rec.states


def test_camera_unplugged_and_replugged(camera: tuple[Path, Recorder], tmp_path: Path) -> None:
    path, rec = camera
    clip(tmp_path / "a.avi", CCCD_EXAMPLE).rename(path)
    rec.wait(lambda: len(rec.payloads) == 1)
    path.unlink()                                   # unplugged
    rec.wait(lambda: any(s == "down" and "missing" in r for s, r in rec.states))
    time.sleep(0.1)
    clip(tmp_path / "b.avi", BHYT_OLD_EXAMPLE).rename(path)  # plugged back in
    rec.wait(lambda: len(rec.payloads) == 2)
    assert rec.payloads[1] == BHYT_OLD_EXAMPLE


# -- the serial scanner on a pseudo-terminal -----------------------------------------------------
@pytest.fixture
def pty_scanner(tmp_path: Path) -> Iterator[tuple[int, str, Path, Recorder, list[int]]]:
    master, slave = os.openpty()
    link = tmp_path / "ttyScanner"
    rec = Recorder()
    garbage: list[int] = []
    stop = threading.Event()
    scanner = SerialScanner(str(link), on_payload=rec.payload, on_state=rec.state,
                            on_garbage=lambda: garbage.append(1))
    thread = threading.Thread(target=scanner.run, args=(stop,), daemon=True)
    thread.start()
    yield master, os.ttyname(slave), link, rec, garbage
    stop.set()
    thread.join(10)
    os.close(master)
    os.close(slave)


def test_serial_scanner_frames_payloads_and_survives_hotplug(
        pty_scanner: tuple[int, str, Path, Recorder, list[int]]) -> None:
    master, slave_path, link, rec, garbage = pty_scanner
    rec.wait(lambda: rec.states and rec.states[-1][0] == "down")  # not plugged in yet
    link.symlink_to(slave_path)                                   # plugged in: the path appears
    rec.wait(lambda: ("ok", "") in rec.states)
    os.write(master, CCCD_EXAMPLE.encode()[:10])           # a payload in two pieces
    time.sleep(0.05)
    os.write(master, CCCD_EXAMPLE.encode()[10:] + b"\r")
    os.write(master, b"\xff\xfe\xfd\r")                     # line noise
    os.write(master, BHYT_NEW_EXAMPLE.encode() + b"\r\n")
    rec.wait(lambda: len(rec.payloads) == 2)
    assert rec.payloads == [CCCD_EXAMPLE, BHYT_NEW_EXAMPLE]
    assert garbage == [1]



def test_daemon_verifies_from_camera_and_scanner(sim: object, tmp_path: Path) -> None:
    import httpx

    from terminal.app import create_app
    from terminal.server import BackgroundServer, start_background
    assert isinstance(sim, BackgroundServer)
    master, slave = os.openpty()
    settings = terminal_settings(sim.url, tmp_path / "data",
                                 camera__source=str(tmp_path / "cam.avi"), camera__fps=60,
                                 scanner__port=os.ttyname(slave))
    server = start_background(create_app(settings, daemon_services(settings)))
    events: list[tuple[str, dict[str, object]]] = []
    ready = threading.Event()

    def done(ev: list[tuple[str, dict[str, object]]]) -> bool:
        readers = {d["credential"]["reader"] for n, d in ev  # type: ignore[index]
                   if n == "eligibility"}
        return {"camera", "scanner"} <= readers

    reader = threading.Thread(target=collect, args=(server.url, done, ready, events))
    try:
        reader.start()
        assert ready.wait(10)
        clip(tmp_path / "tmp.avi", CCCD_EXAMPLE).rename(tmp_path / "cam.avi")
        os.write(master, BHYT_NEW_EXAMPLE.encode() + b"\r")
        reader.join(30)
        assert done(events), events
        health = httpx.get(f"{server.url}/api/v1/health").json()["components"]
        assert health["scanner"]["status"] == "ok"
        assert health["camera"]["status"] in ("ok", "down")  # the clip may have ended
    finally:
        server.stop()
        os.close(master)
        os.close(slave)


def test_a_stable_device_name_is_opened_as_a_device(tmp_path: Path) -> None:
    """/dev/v4l/by-id/… names are symlinks to character devices: opened through V4L2 (here a
    device that is no camera, so 'unplugged or busy'), never 'source missing'."""
    from readers.devices.camera import _Source, is_device

    link = tmp_path / "usb-Desk_Camera-video-index0"
    link.symlink_to("/dev/null")
    assert is_device(link) and not is_device(tmp_path)
    with pytest.raises(OSError, match="unplugged or busy"):
        _Source(str(link), 15).open()
    with pytest.raises(OSError, match="missing"):
        _Source(str(tmp_path / "gone"), 15).open()


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
