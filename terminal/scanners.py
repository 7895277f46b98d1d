"""The camera and the serial scanner wired into the verification flow.

Both run in their own threads (blocking device calls never touch the event loop); each decoded
payload goes through the same credential → eligibility path as the page's input, tagged with
the reader it came from. Device states become ``device`` events and health entries.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from terminal.events import EventBus
from terminal.flow.verifier import Verifier
from verify.errors import InputFormatError

log = logging.getLogger(__name__)


class Hint(Exception):
    """A staff hint from the camera (a code in view that does not decode)."""

    code = "camera_unreadable"
    vi = "Thấy mã QR nhưng chưa đọc được: giữ yên thẻ, nghiêng tránh lóa, hoặc dùng chip."
    en = "A QR code is in view but does not read: hold still, tilt against glare, or use the chip."


class Garbage(Exception):
    code = "scanner_garbage"
    vi = "Máy quét gửi dữ liệu lỗi. Quét lại mã."
    en = "The scanner sent unreadable data. Scan the code again."


class DeviceHub:
    """Runs the configured devices and remembers their states for /api/v1/health."""

    def __init__(self, verifier: Verifier, bus: EventBus) -> None:
        self.verifier = verifier
        self.bus = bus
        self.states: dict[str, dict[str, str]] = {}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.readers: dict[str, Any] = {}

    def _call(self, fn: Callable[[], None]) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn)

    def _state(self, device: str) -> Callable[[str, str], None]:
        def on_state(status: str, reason: str) -> None:
            self.states[device] = {"status": status, "reason": reason}
            self._call(lambda: self.bus.publish("device", {"device": device, "status": status,
                                                           "reason": reason}))
        return on_state

    def _payload(self, reader: str) -> Callable[[str], None]:
        def on_payload(text: str) -> None:
            if self._loop is not None:
                asyncio.run_coroutine_threadsafe(self.handle(text, reader), self._loop)
        return on_payload

    def _hint(self, error: Exception) -> Callable[[], None]:
        def on_hint() -> None:
            self._call(lambda: self.verifier.report(error, None))  # type: ignore[arg-type]
        return on_hint

    async def handle(self, text: str, reader: str) -> None:
        try:
            credential = replace(self.verifier.credential_from_qr(text), reader=reader)
            await self.verifier.verify(credential)
        except InputFormatError:
            pass  # reported to staff by the verifier already
        except Exception as e:  # the loop goes on; the class name only (no card data)
            log.error("verification from %s failed: %s", reader, type(e).__name__)

    def start(self, loop: asyncio.AbstractEventLoop, *, camera: str = "", fps: float = 15,
              repeat_seconds: float = 30, scanner: str = "", baud: int = 9600) -> None:
        self._loop = loop
        if camera:
            self.start_camera(camera, fps=fps, repeat_seconds=repeat_seconds)
        if scanner:
            from readers.devices.serialport import SerialScanner

            reader = SerialScanner(scanner, baud=baud, on_payload=self._payload("scanner"),
                                   on_state=self._state("scanner"),
                                   on_garbage=self._hint(Garbage()))
            self._spawn("scanner", reader)

    def start_camera(self, source: str, *, fps: float = 15, repeat_seconds: float = 30) -> None:
        from readers.devices.camera import CameraReader
        from readers.scan.scanloop import Deduper

        reader = CameraReader(source, on_payload=self._payload("camera"),
                              on_state=self._state("camera"), on_hint=self._hint(Hint()),
                              fps=fps, dedup=Deduper(repeat_seconds=repeat_seconds))
        self._spawn("camera", reader)

    def _spawn(self, name: str, reader: Any) -> None:
        self.readers[name] = reader
        self.states.setdefault(name, {"status": "down", "reason": "starting"})
        thread = threading.Thread(target=reader.run, args=(self._stop,), daemon=True,
                                  name=f"device-{name}")
        thread.start()
        self._threads.append(thread)

    def alive(self) -> bool:
        """Every device thread still running (the watchdog asks)."""
        return all(t.is_alive() for t in self._threads)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
