"""The camera adapter's capture side: image and video files (``qr scan``), V4L2 devices and
the camera loop — decoding is ``decode.py``'s."""

from __future__ import annotations

import mmap
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

from readers.devices.camera.decode import (
    HINT_EVERY,
    IMAGE_SUFFIXES,
    Frame,
    decode_hard,
    decode_shipped,
    finder_corners,
)


@dataclass(frozen=True, slots=True)
class FileResult:
    path: str
    payloads: list[str]
    error: str | None = None


PIXELS_ENV = "OPENCV_IO_MAX_IMAGE_PIXELS"  # set by the package before cv2 loads


class FrameRefused(ValueError):
    """A file whose image no card or code fits in, or that the decoder refused: its message is
    the ``error`` a command prints for it."""


UNREADABLE = "not an image or video that can be read"
MIN_SIDE = 32  # px: a card or a code needs more
MAX_ASPECT = 8.0  # long side / short side: a strip, not a picture of a card
MAX_SIDE = 4096  # px: larger photos are scaled down first (the reads work at ≤ 1280)
MAX_VIDEO_PIXELS = 4096 * 2160  # a video frame larger than 4K is refused before it is read


def fit_frame(frame: Frame) -> Frame:
    """The frame as the decoders take it: refused when too small or too elongated to hold a
    card or a code (the reads scale by the width, so a 8×20000 strip would become a 640×1.6 M
    image), scaled down when its long side is over ``MAX_SIDE``."""
    h, w = frame.shape[:2]
    if min(h, w) < MIN_SIDE or max(h, w) > MAX_ASPECT * min(h, w):
        raise FrameRefused(f"image too small or too elongated ({w}×{h} px)")
    if max(h, w) > MAX_SIDE:
        scale = MAX_SIDE / max(h, w)
        frame = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA)
    return frame


def jpeg_cut_short(path: Path) -> bool:
    """A JPEG whose last scan has no end-of-image marker after it: the file was cut (a copy
    interrupted, a camera's upload torn). libjpeg decodes what is there and fills the rest
    with grey, saying nothing; a card half grey is not a card to read. Inside the scan data
    every 0xFF is stuffed, so the last SOS (FFDA) and EOI (FFD9) markers are the real ones;
    an EXIF thumbnail's own markers come before the main image's scan."""
    try:
        with path.open("rb") as f:
            if f.read(3) != b"\xff\xd8\xff":
                return False
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                return m.rfind(b"\xff\xd9") < m.rfind(b"\xff\xda")
    except (OSError, ValueError):
        return False  # imread read it; what it cannot map is judged by the decoder alone


def read_image(path: Path) -> Frame | None:
    """One image file, fitted; None when it is no image the decoder knows. FrameRefused for
    one it refuses (over ``OPENCV_IO_MAX_IMAGE_PIXELS``) or that is cut short."""
    try:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error:  # OpenCV 5: over the pixel limit (or a header it cannot take)
        raise FrameRefused(f"image too large (over {os.environ.get(PIXELS_ENV)} pixels) "
                           "or not readable") from None
    if image is None:
        return None
    if jpeg_cut_short(path):
        raise FrameRefused("image file is cut short (a JPEG without its end)")
    return fit_frame(image)


def frames_of(path: Path, *, step: int = 1, limit: int = 10_000) -> Iterator[Frame]:
    """The frames of an image or video file (every ``step``-th frame of a video, at most
    ``limit``), one at a time, each through :func:`fit_frame`. FrameRefused for a file the
    decoder refuses (an image over ``OPENCV_IO_MAX_IMAGE_PIXELS``, a video frame over 4K)."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = read_image(path)
        if image is not None:
            yield image
        return
    cap = cv2.VideoCapture(str(path))
    try:
        size = cap.get(cv2.CAP_PROP_FRAME_WIDTH) * cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
        if size > MAX_VIDEO_PIXELS:
            raise FrameRefused(f"video frames too large (over {MAX_VIDEO_PIXELS} px)")
        index = given = 0
        while given < limit:
            ok, frame = cap.read()
            if not ok:
                break
            if index % step == 0:
                given += 1
                yield fit_frame(frame)
            index += 1
    finally:
        cap.release()


HARD_EVERY = 15  # in a video, decode_hard on at most one unread frame in this many


def scan_file(path: Path, decoder: Callable[[Frame], list[str]] | None = None
              ) -> FileResult:
    """Every distinct payload in an image or video, in order of first sight. A file is not a
    live feed: by default each frame gets the cheap chain and, where that reads nothing, the
    hard passes too (in a video at most one unread frame in ``HARD_EVERY``, so a long clip
    stays bounded in time). Frames are read one at a time: a long video is never held whole."""
    if not path.is_file():
        return FileResult(str(path), [], "file not found")
    seen: list[str] = []
    unread = frames = 0
    try:
        for frame in frames_of(path):
            frames += 1
            if decoder is not None:
                found = decoder(frame)
            else:
                found = decode_shipped(frame)
                if not found:
                    if unread % HARD_EVERY == 0:
                        found = decode_hard(frame, finder_corners(frame))
                    unread += 1
            for text in found:
                if text not in seen:
                    seen.append(text)
    except FrameRefused as e:
        return FileResult(str(path), seen, str(e))
    except cv2.error:  # a frame the decoder chokes on: said for this file, the next is read
        return FileResult(str(path), seen, UNREADABLE)
    if not frames:
        return FileResult(str(path), [], UNREADABLE)
    return FileResult(str(path), seen)


# -- capture ------------------------------------------------------------------------------------
def is_device(path: Path) -> bool:
    """A character device (or a symlink to one, as /dev/v4l/by-id/… names are)."""
    try:
        return stat.S_ISCHR(path.stat().st_mode)
    except OSError:
        return False


class _Source:
    """A device index, a video file, a stream URL or an image folder, read the same way."""

    def __init__(self, spec: str, fps: float, *, width: int = 1280, height: int = 720,
                 fourcc: str = "MJPG") -> None:
        self.spec = spec
        self.interval = 1.0 / fps
        self.cap: Any = None
        self.images: list[Path] | None = None
        self.paced = False
        self.width, self.height, self.fourcc = width, height, fourcc

    def open(self) -> None:
        path = Path(self.spec)
        if path.is_dir():
            self.images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            self.paced = True
            return
        device = self.spec.isdigit() or is_device(path)
        if not device and "://" not in self.spec and not path.is_file():
            raise OSError(f"camera source missing: {path.name}")
        if device:
            # An index, /dev/videoN or a stable name (/dev/v4l/by-id/…, which survives
            # re-plugging into another USB port), through V4L2 where the build has it.
            target: int | str = int(self.spec) if self.spec.isdigit() else str(path.resolve())
            cap = cv2.VideoCapture(target, cv2.CAP_V4L2)
        else:
            cap = cv2.VideoCapture(self.spec)
        if not cap.isOpened():
            cap.release()
            raise OSError("camera could not be opened (unplugged or busy)")
        if device:
            self._configure(cap)
        self.cap = cap
        self.paced = not device and "://" not in self.spec  # a file plays at fps

    def _configure(self, cap: Any) -> None:
        """What helped on desk cameras: MJPEG (USB 2 carries 720p at 15–30 fps only
        compressed), 1280×720, continuous autofocus. A camera that refuses a property keeps
        its own; frames of any size are decoded, so a resolution change is survived."""
        if len(self.fourcc) == 4:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*self.fourcc))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        cap.set(cv2.CAP_PROP_AUTOFOCUS, 1)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of old ones

    def read(self) -> Frame | None:
        if self.images is not None:
            if not self.images:
                return None
            try:
                return read_image(self.images.pop(0))
            except FrameRefused:
                return None
        ok, frame = self.cap.read()
        return frame if ok else None

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None
        self.images = None


CARD_EVERY = 3  # the printed-card check (find_card, ~2–3 ms at 720p) on one frame in this many


class CameraReader:
    """Capture, decode, de-duplicate; callbacks for payloads, state changes and hints.

    One thread captures (pacing files at ``fps``) and keeps only the newest frame; one decodes
    the newest frame whenever it is free, so a slow decode drops frames instead of lagging.

    ``on_card`` (issue 24): when no QR reads and a card-shaped quadrilateral rests in view
    (``readers.scan.scanloop.CardPresence``), the frame is handed over once per presentation.
    The callback must not block — it queues the frame for a reader in another thread and
    answers whether it took it (False: busy, ask again on a later frame). What the card says
    is the caller's business: this adapter only finds it. ``is_card_qr``: which decoded QRs
    take a presentation's turn (the caller's parser; default every one) — a payment sticker
    on the desk must not keep the printed card beside it from being read.
    """

    def __init__(self, spec: str, *, on_payload: Callable[[str], None],
                 on_state: Callable[[str, str], None], on_hint: Callable[[], None],
                 fps: float = 15.0, decode: Callable[[Frame], list[str]] | None = None,
                 dedup: Any = None, repeat_file: bool = False,
                 on_card: Callable[[Frame], bool] | None = None, cards: Any = None,
                 is_card_qr: Callable[[str], bool] | None = None) -> None:
        from readers.scan.scanloop import CardPresence, Deduper, SourceHealth, UnreadableHint

        self.spec = spec
        self.fps = fps
        self.decode = decode
        self.on_payload, self.on_state, self.on_hint = on_payload, on_state, on_hint
        self.on_card = on_card
        self.is_card_qr = is_card_qr or (lambda text: True)
        self.cards = cards or CardPresence()
        self.card_checks = 0  # frames looked at for a card (metrics, the CPU test)
        self.cards_handed = 0
        self._qr_since_check = False
        self._card_missed = False  # set by the card reader's thread, taken by this one
        self.dedup = dedup or Deduper()
        self.health = SourceHealth()
        # The "code in view" check costs ~75 ms on a 720p frame without a code (OpenCV's
        # detector): once a second (every HINT_EVERY missed frames at 15 fps), five in a row
        # (about 5 s) before the hint — it was every 5th frame, a quarter of a core on an
        # empty desk.
        self.hint = UnreadableHint(frames=5)
        self.repeat_file = repeat_file
        self.frames_read = 0
        self.frames_decoded = 0
        self._latest: Frame | None = None
        self._latest_id = 0
        self._cond = __import__("threading").Condition()

    def run(self, stop: Any) -> None:
        """Blocking until ``stop`` (a threading.Event) is set; never raises.

        A device or stream that stops giving frames is reopened with a growing delay. A file
        or folder plays once at ``fps`` (tests, the demo clip) and plays again when it is
        replaced — which is also how tests unplug and replug a "camera".
        """
        import time

        decoder = threading.Thread(target=self._decode_loop, args=(stop,), daemon=True,
                                   name="camera-decode")
        decoder.start()
        played: float | None = None
        while not stop.is_set():
            path = Path(self.spec)
            file_like = not self.spec.isdigit() and "://" not in self.spec
            stamp = path.stat().st_mtime if file_like and path.exists() else None
            if file_like and stamp is not None and stamp == played:
                stop.wait(0.3)  # already played: wait for a new file
                continue
            source = _Source(self.spec, self.fps)
            try:
                source.open()
            except OSError as e:
                self._state_down(str(e))
                stop.wait(self.health.failed(str(e)))
                continue
            self.health.opened()
            self.on_state("ok", "")
            next_at = time.monotonic()
            while not stop.is_set():
                frame = source.read()
                if frame is None:
                    break
                self.frames_read += 1
                with self._cond:
                    self._latest, self._latest_id = frame, self._latest_id + 1
                    self._cond.notify()
                if source.paced:
                    next_at += 1.0 / self.fps
                    stop.wait(max(0.0, next_at - time.monotonic()))
            source.close()
            if stop.is_set():
                break
            if file_like:  # a clip that played to its end is not a fault
                played = None if self.repeat_file else stamp
                self.on_state("ok", "clip played to its end")
            else:
                self._state_down("no frames (camera unplugged?)")
                stop.wait(self.health.failed("no frames"))
        with self._cond:
            self._cond.notify_all()
        decoder.join(5)

    def _state_down(self, reason: str) -> None:
        if self.health.status != "down" or self.health.reason != reason:
            self.on_state("down", reason)

    def _decode_loop(self, stop: Any) -> None:

        seen = 0
        while not stop.is_set():
            with self._cond:
                while self._latest_id == seen and not stop.is_set():
                    self._cond.wait(0.5)
                frame, seen = self._latest, self._latest_id
            if frame is None or stop.is_set():
                continue
            try:
                found = (self.decode(frame) if self.decode is not None else
                         decode_shipped(frame, turn=self.frames_decoded))
            except Exception:
                found = []
            self.frames_decoded += 1
            now = time.monotonic()
            corners: list[Any] | None = None
            if not found and self.frames_decoded % HINT_EVERY == 0:
                # Once a second while nothing is read: OpenCV's detection (the hint's "code in
                # view"), then the expensive passes with its corners (bench/RESULTS.md).
                corners = finder_corners(frame)
                if self.decode is None:
                    try:
                        found = decode_hard(frame, corners)
                    except Exception:
                        found = []
            for text in self.dedup.feed(found, now):
                self.on_payload(text)
            if found:
                self.hint.feed(True, True, now)
            elif corners is not None and self.hint.feed(bool(corners), False, now):
                self.on_hint()
            if self.on_card is not None:
                self._qr_since_check = self._qr_since_check or any(
                    self.is_card_qr(text) for text in found)
                if self.frames_decoded % CARD_EVERY == 1:  # not on the hard passes' frame
                    self._card_check(frame, now)

    def card_missed(self) -> None:
        """The card reader found nothing on the frame handed over (any thread): the card, if
        still in view, is offered again a little later (``CardPresence.missed``)."""
        self._card_missed = True

    def _card_check(self, frame: Frame, now: float) -> None:
        """Every ``CARD_EVERY`` frames: is a card resting in view with no QR read? Then hand
        the frame over, once per presentation."""
        from readers.devices.camera.card import find_card

        qr, self._qr_since_check = self._qr_since_check, False
        if self._card_missed:
            self._card_missed = False
            self.cards.missed(now)
        corners: list[tuple[float, float]] | None = None
        if not qr:
            self.card_checks += 1
            try:
                found = find_card(frame, precise=False)
            except Exception:
                found = None
            if found is not None:
                width = float(frame.shape[1])
                corners = [(float(x) / width, float(y) / width) for x, y in found]
        if self.cards.feed(corners, qr, now) and self.on_card is not None:
            if self.on_card(frame):
                self.cards_handed += 1
            else:
                self.cards.declined()
