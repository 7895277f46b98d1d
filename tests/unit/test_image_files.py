"""Hostile and odd files given to ``tiepdon image read`` and ``tiepdon qr scan`` (a clinic's
IT person points them at a folder of whatever the scanner PC saved): one JSON line a file, in
order, each bad file an ``error`` of its own, the good ones still read, memory bounded."""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from readers.devices.camera import FrameRefused, frames_of, scan_file
from tests.helpers.cards import clean
from tests.helpers.cli import TIEPDON, run

GiB = 2**30


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(path: Path, side: int = 20_000) -> Path:
    """A valid grey PNG of side×side white-on-nothing pixels: ~400 kB on disk, 1.2 GB once
    decoded in colour."""
    z = zlib.compressobj(9)
    block = (b"\0" * (side + 1)) * 200  # 200 rows: filter byte 0, then zeros
    idat = b"".join(z.compress(block) for _ in range(side // 200)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def odd_files(tmp_path: Path) -> dict[str, Path]:
    files = {"back": tmp_path / "back.png", "thin": tmp_path / "thin.png",
             "strip": tmp_path / "strip.png", "truncated": tmp_path / "truncated.png",
             "empty": tmp_path / "empty.jpg", "text": tmp_path / "notes.png"}
    cv2.imwrite(str(files["back"]), clean("cccd_back").frame)
    cv2.imwrite(str(files["thin"]), np.full((20_000, 8), 255, np.uint8))  # 8 px wide
    cv2.imwrite(str(files["strip"]), np.full((1, 30_000), 255, np.uint8))
    files["truncated"].write_bytes(files["back"].read_bytes()[:300])
    files["empty"].write_bytes(b"")
    files["text"].write_text("not a picture\n")
    files["bomb"] = png_bomb(tmp_path / "bomb.png")
    return files


def lines(p: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(x) for x in p.stdout.splitlines()]


def test_a_batch_of_odd_files_gives_one_line_each_and_reads_the_good_ones(
        tmp_path: Path) -> None:
    f = odd_files(tmp_path)
    order = ["back", "thin", "strip", "bomb", "truncated", "empty", "text", "back"]
    p = run("image", "read", *(str(f[k]) for k in order))
    assert p.returncode == 2, p.stderr  # some files had errors
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr
    out = lines(p)
    assert [x["file"] for x in out] == [str(f[k]) for k in order]
    good, *bad, again = out
    assert good == again and "error" not in good
    assert [c["read_from"] for c in good["credentials"]] == ["mrz"]
    assert all(x["error"] and x["credentials"] == [] for x in bad), bad
    assert "too small or too elongated" in str(bad[0]["error"])
    assert "too small or too elongated" in str(bad[1]["error"])
    assert "too large" in str(bad[2]["error"])
    # qr scan: the same files, the same one line each (the same file reader underneath)
    q = run("qr", "scan", *(str(f[k]) for k in order))
    assert q.returncode == 2 and "internal error" not in q.stderr
    assert [x["file"] for x in lines(q)] == [str(f[k]) for k in order]
    assert [bool(x.get("error")) for x in lines(q)] == [False] + [True] * 6 + [False]


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    """Under a 1.5 GiB address-space limit (the command needs ~0.5), decoding the bomb in
    full would fail; the command refuses it by its header instead, without the test's
    environment telling OpenCV any limit."""
    bomb, card = png_bomb(tmp_path / "bomb.png"), tmp_path / "back.png"
    cv2.imwrite(str(card), clean("cccd_back").frame)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIEPDON_", "OPENCV_"))}

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (int(1.5 * GiB), int(1.5 * GiB)))

    p = subprocess.run([TIEPDON, "image", "read", str(bomb), str(card)], capture_output=True,
                       text=True, timeout=120, env=env, preexec_fn=cap, check=False)
    refused, read = lines(p)
    assert "too large" in str(refused["error"]), p.stderr
    assert read["credentials"] and "error" not in read


def test_frames_are_fitted_before_any_decoder_sees_them(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.full((3000, 6000, 3), 128, np.uint8))
    (frame,) = list(frames_of(big))
    assert frame.shape[:2] == (2048, 4096)  # the long side brought to 4096
    thin = tmp_path / "thin.png"
    cv2.imwrite(str(thin), np.full((40, 400), 255, np.uint8))  # 10:1
    try:
        list(frames_of(thin))
        raise AssertionError("a 10:1 strip was taken")
    except FrameRefused as e:
        assert "400×40" in str(e)
    assert scan_file(thin).error == "image too small or too elongated (400×40 px)"


def test_a_long_video_is_read_one_frame_at_a_time(tmp_path: Path) -> None:
    """frames_of yields: the first frame is there before the rest are decoded."""
    clip = tmp_path / "clip.avi"
    out = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"MJPG"), 15, (320, 240))
    for i in range(30):
        out.write(np.full((240, 320, 3), i * 8, np.uint8))
    out.release()
    frames = frames_of(clip, step=10)
    first = next(iter(frames))
    assert first.shape == (240, 320, 3) and int(first.mean()) == 0
    assert len(list(frames)) == 2  # frames 10 and 20


def test_qr_scan_qr_parse_and_image_read_give_the_same_credential(tmp_path: Path) -> None:
    """One way to print a QR's credential: ``qr scan`` lacked the keyed fingerprint that
    ``qr parse`` gives (the same key, the daemon's, when readable)."""
    from readers.doubles.render import render_qr
    from tests.helpers.samples import CCCD_EXAMPLE

    data = tmp_path / "data"
    data.mkdir()
    (data / "terminal.key").write_bytes(bytes(range(32)))
    image = tmp_path / "qr.png"
    code = render_qr(CCCD_EXAMPLE, module_px=6)
    cv2.imwrite(str(image), cv2.copyMakeBorder(code, 60, 60, 60, 60, cv2.BORDER_CONSTANT,
                                               value=255))
    env = {"TIEPDON_DATA_DIR": str(data)}
    scanned = run("qr", "scan", str(image), env=env)
    assert scanned.returncode == 0, scanned.stderr
    (payload,) = json.loads(scanned.stdout)["payloads"]
    parsed = run("qr", "parse", CCCD_EXAMPLE, env=env)
    assert payload == json.loads(parsed.stdout)
    assert payload["raw_fingerprint"] and payload["read_from"] == "qr"
    # image read prints a QR's credential the same way (it lacked the fingerprint, qr scan
    # lacked read_from)
    read = run("image", "read", str(image), env=env)
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout)["credentials"] == [payload]


def with_thumbnail(jpeg: bytes) -> bytes:
    """The JPEG with an EXIF-like APP1 segment holding a small JPEG of its own (as camera
    photos carry a thumbnail): its SOS and EOI markers sit before the main image's scan."""
    ok, thumb = cv2.imencode(".jpg", np.full((40, 60, 3), 200, np.uint8))
    assert ok
    body = b"Exif\x00\x00" + thumb.tobytes()
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


def test_a_jpeg_cut_short_is_said_not_read_half_grey(tmp_path: Path) -> None:
    """libjpeg decodes a cut JPEG as far as it goes and greys the rest, saying nothing on the
    return path: the command read half a card. Now the file is refused by name, a thumbnail's
    end marker does not pass for the image's, and whole JPEGs (baseline, progressive, with a
    thumbnail, with padding after the end) are still read."""
    ok, jpeg = cv2.imencode(".jpg", clean("cccd_back").frame)
    ok2, progressive = cv2.imencode(".jpg", clean("cccd_back").frame,
                                    [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok and ok2
    whole = {"baseline.jpg": jpeg.tobytes(), "progressive.jpg": progressive.tobytes(),
             "thumb.jpg": with_thumbnail(jpeg.tobytes()),
             "padded.jpg": jpeg.tobytes() + b"\0" * 64}
    cut = {"cut.jpg": jpeg.tobytes()[: len(jpeg) * 2 // 3],
           "cut_progressive.jpg": progressive.tobytes()[:-40],
           "cut_thumb.jpg": with_thumbnail(jpeg.tobytes())[:-2000]}
    for name, data in {**whole, **cut}.items():
        (tmp_path / name).write_bytes(data)
    names = [*whole, *cut]
    p = run("image", "read", *(str(tmp_path / n) for n in names))
    out = dict(zip(names, lines(p), strict=True))
    for n in whole:
        assert "error" not in out[n] and [c["read_from"] for c in out[n]["credentials"]] == [
            "mrz"], (n, out[n])
    for n in cut:
        assert out[n]["credentials"] == [] and "cut short" in out[n]["error"], (n, out[n])
    q = run("qr", "scan", *(str(tmp_path / n) for n in cut))
    assert all("cut short" in x["error"] for x in lines(q))


def test_a_qr_that_is_no_card_is_said_by_image_read_as_by_qr_scan(tmp_path: Path) -> None:
    """A picture of a shop's URL QR: ``qr scan`` said qr_format, ``image read`` printed an
    empty list and no error — the nurse could not tell it from a blurred photo."""
    from readers.doubles.render import render_qr

    image = tmp_path / "url.png"
    code = render_qr("https://example.vn/khuyen-mai?id=42", module_px=6)
    cv2.imwrite(str(image), cv2.copyMakeBorder(code, 60, 60, 60, 60, cv2.BORDER_CONSTANT,
                                               value=255))
    (read,) = lines(run("image", "read", str(image)))
    assert read["credentials"] == [] and read["error"].startswith("qr_format"), read
    (scanned,) = lines(run("qr", "scan", str(image)))
    assert [x.get("error") for x in scanned["payloads"]] == ["qr_format"]
