"""What the camera and scanner loops decide, without the devices: de-duplication of payloads
held in view, the health of a capture source with its reconnect back-off, when to tell
staff that a code is in view but does not decode, and when to read a printed card held in
view. Pure: frames and clocks come in as numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0)


@dataclass
class _Seen:
    last_frame: int
    last_emit: float


@dataclass
class Deduper:
    """The same payload held in view is one event; it is emitted again only after it has
    been out of view for ``gone_frames`` frames, or after ``repeat_seconds``."""

    gone_frames: int = 8
    repeat_seconds: float = 30.0
    frame: int = 0
    _seen: dict[str, _Seen] = field(default_factory=dict)

    def feed(self, payloads: list[str], now: float) -> list[str]:
        self.frame += 1
        out = []
        for text in payloads:
            seen = self._seen.get(text)
            if (seen is None or self.frame - seen.last_frame > self.gone_frames
                    or now - seen.last_emit >= self.repeat_seconds):
                out.append(text)
                self._seen[text] = _Seen(self.frame, now)
            else:
                seen.last_frame = self.frame
        if len(self._seen) > 64:  # forget codes long out of view
            self._seen = {k: v for k, v in self._seen.items()
                          if self.frame - v.last_frame <= self.gone_frames}
        return out


@dataclass
class SourceHealth:
    """ok while frames arrive; down after the source fails, with a growing reconnect delay."""

    status: str = "down"
    reason: str = "not started"
    failures: int = 0

    def opened(self) -> None:
        self.status, self.reason, self.failures = "ok", "", 0

    def failed(self, reason: str) -> float:
        """Record a failure; returns how long to wait before reopening."""
        self.status, self.reason = "down", reason
        delay = BACKOFF_SECONDS[min(self.failures, len(BACKOFF_SECONDS) - 1)]
        self.failures += 1
        return delay


@dataclass
class UnreadableHint:
    """A code seen but not decoded for ``frames`` frames in a row → one hint, at most every
    ``every_seconds`` (hold still, tilt against glare, or use the chip)."""

    frames: int = 15
    every_seconds: float = 10.0
    streak: int = 0
    last: float = -1e9

    def feed(self, code_in_view: bool, decoded: bool, now: float) -> bool:
        if decoded or not code_in_view:
            self.streak = 0
            return False
        self.streak += 1
        if self.streak >= self.frames and now - self.last >= self.every_seconds:
            self.last = now
            self.streak = 0
            return True
        return False


Corners = Sequence[tuple[float, float]]


@dataclass
class CardPresence:
    """A printed card held in view while no QR reads: one OCR per presentation (issue 24).

    Fed every few frames with the corners of the card-shaped quadrilateral in view (in
    fractions of the frame's width; None when there is none) and whether a QR was read since
    the last feed. :meth:`feed` says "read it now" once the card has rested for
    ``hold_seconds``, then never again until it has been out of view for ``gone_seconds`` —
    the same card lying still is read once, like the :class:`Deduper`'s one event per
    presentation. A QR read during a presentation takes its turn: a QR is better than any
    print. A card that moves more than ``still`` (of the frame's width, at any corner) starts
    its rest again, so the frame read is a steady one. A read that found nothing (glare, a
    finger over the number) is :meth:`missed`: the card still in view is read again after
    ``again_seconds``, at most ``max_reads`` times a presentation.
    """

    hold_seconds: float = 0.5
    gone_seconds: float = 1.0
    still: float = 0.02
    again_seconds: float = 1.5
    max_reads: int = 3
    resting_since: float | None = None
    last_seen: float | None = None
    corners: tuple[tuple[float, float], ...] | None = None
    done: bool = False  # this presentation was read, or had a QR
    reads: int = 0      # reads of this presentation
    again_at: float | None = None

    def feed(self, corners: Corners | None, qr: bool, now: float) -> bool:
        if corners is None and not qr:
            if self.last_seen is not None and now - self.last_seen >= self.gone_seconds:
                self.resting_since, self.last_seen, self.corners, self.done = (
                    None, None, None, False)
                self.reads, self.again_at = 0, None
            self.resting_since = None  # out of view this time: the rest starts again
            return False
        self.last_seen = now
        if qr:
            self.done = True
        if self.done or corners is None:
            return False
        here = tuple((float(x), float(y)) for x, y in corners)
        if self.resting_since is None or not self._near(here):
            self.resting_since = now
        self.corners = here
        if now - self.resting_since >= self.hold_seconds and (
                self.again_at is None or now >= self.again_at):
            self.done = True
            self.reads += 1
            return True
        return False

    def declined(self) -> None:
        """The reader could not take the frame (one read at a time): ask again next feed."""
        self.done = False
        self.reads = max(0, self.reads - 1)

    def missed(self, now: float) -> None:
        """The read of this presentation found nothing: read the card again in a while, while
        it stays (a read of a presentation already over changes nothing)."""
        if 0 < self.reads < self.max_reads and self.last_seen is not None:
            self.done = False
            self.again_at = now + self.again_seconds

    def _near(self, corners: tuple[tuple[float, float], ...]) -> bool:
        if self.corners is None or len(self.corners) != len(corners):
            return False
        return all(abs(x - a) <= self.still and abs(y - b) <= self.still
                   for (x, y), (a, b) in zip(corners, self.corners, strict=True))
