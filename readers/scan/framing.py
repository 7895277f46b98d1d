"""Splitting scanner output into payloads: 2D scanners end each code with CR, LF or CR LF
(DOMAIN.md §3: serial scanners send the payload at 9600 8N1 terminated by CR).

Pure: the serial adapter and tests feed bytes in; whole payloads come out as text.
"""

from __future__ import annotations

MAX_LINE_BYTES = 8192  # a QR holds at most 2953 bytes; longer lines are noise


class LineFramer:
    """Feed bytes as they arrive; get back complete, UTF-8-decoded payloads.

    An over-long line is dropped whole (counted in ``dropped``) instead of growing without
    bound; bytes that are not UTF-8 make that payload a ``None`` entry so the caller can
    tell staff to scan again.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._overflow = False
        self.dropped = 0

    def feed(self, data: bytes) -> list[str | None]:
        out: list[str | None] = []
        for byte in data:
            if byte in (0x0D, 0x0A):
                if self._overflow:
                    self.dropped += 1
                elif self._buf:
                    try:
                        out.append(self._buf.decode("utf-8"))
                    except UnicodeDecodeError:
                        out.append(None)
                self._buf.clear()
                self._overflow = False
            elif not self._overflow:
                self._buf.append(byte)
                if len(self._buf) > MAX_LINE_BYTES:
                    self._buf.clear()
                    self._overflow = True
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)
