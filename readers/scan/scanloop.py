"""What the camera and scanner loops decide, without the devices: de-duplication of payloads
held in view, the health of a capture source with its reconnect back-off, and when to tell
staff that a code is in view but does not decode. Pure: frames and clocks come in as numbers.
"""

from __future__ import annotations

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
