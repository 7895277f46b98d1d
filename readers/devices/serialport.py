"""2D barcode scanners on a (USB-)serial port: the only importer of ``serial`` (pyserial).

9600 8N1 by default (DOMAIN.md §3); payloads framed by CR/LF (``readers.scan.framing``). A port that
disappears (USB unplugged) is reopened by device path with a growing delay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import serial

from readers.scan.framing import LineFramer
from readers.scan.scanloop import SourceHealth

log = logging.getLogger(__name__)


class SerialScanner:
    def __init__(self, port: str, *, baud: int = 9600, on_payload: Callable[[str], None],
                 on_state: Callable[[str, str], None], on_garbage: Callable[[], None]) -> None:
        self.port = port
        self.baud = baud
        self.on_payload, self.on_state, self.on_garbage = on_payload, on_state, on_garbage
        self.health = SourceHealth()
        self.payloads = 0

    def run(self, stop: Any) -> None:
        """Blocking until ``stop`` (a threading.Event) is set; never raises."""
        while not stop.is_set():
            try:
                port = serial.Serial(self.port, self.baud, bytesize=serial.EIGHTBITS,
                                     parity=serial.PARITY_NONE,
                                     stopbits=serial.STOPBITS_ONE, timeout=0.2)
            except (serial.SerialException, OSError, ValueError) as e:
                reason = f"scanner port unavailable: {type(e).__name__}"
                if self.health.status != "down" or self.health.reason != reason:
                    self.on_state("down", reason)
                stop.wait(self.health.failed(reason))
                continue
            self.health.opened()
            self.on_state("ok", "")
            framer = LineFramer()
            try:
                while not stop.is_set():
                    data = port.read(4096)
                    if not data:
                        continue
                    for payload in framer.feed(data):
                        if payload is None:
                            self.on_garbage()
                        else:
                            self.payloads += 1
                            self.on_payload(payload)
            except (serial.SerialException, OSError) as e:
                reason = f"scanner disconnected: {type(e).__name__}"
                self.on_state("down", reason)
                stop.wait(self.health.failed(reason))
            finally:
                port.close()
