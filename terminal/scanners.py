"""The camera and the serial scanner wired into the verification flow.

Both run in their own threads (blocking device calls never touch the event loop); each decoded
payload goes through the same credential → eligibility path as the page's input, tagged with
the reader it came from. A printed card resting in front of the camera is read by OCR in a
third thread (``CardImageWorker``) and goes to ``Verifier.card_image`` as a draft. Device
states become ``device`` events and health entries.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from terminal.events import EventBus
from terminal.flow.cardimage import CardImageReader, CardImageWorker, is_card_qr
from terminal.flow.verifier import Verifier
from verify.errors import InputFormatError
from verify.model import Credential

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
        self.card_images: CardImageWorker | None = None  # the camera's printed-card reads

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
              repeat_seconds: float = 30, read_cards: bool = True, scanner: str = "",
              baud: int = 9600) -> None:
        self._loop = loop
        if camera:
            self.start_camera(camera, fps=fps, repeat_seconds=repeat_seconds,
                              read_cards=read_cards)
        if scanner:
            from readers.devices.serialport import SerialScanner

            reader = SerialScanner(scanner, baud=baud, on_payload=self._payload("scanner"),
                                   on_state=self._state("scanner"),
                                   on_garbage=self._hint(Garbage()))
            self._spawn("scanner", reader)

    def start_camera(self, source: str, *, fps: float = 15, repeat_seconds: float = 30,
                     read_cards: bool = True) -> None:
        from readers.devices.camera import CameraReader
        from readers.scan.scanloop import Deduper

        on_card = None
        if read_cards:  # printed cards: one OCR at a time, in a thread of its own
            worker = CardImageWorker(lambda: CardImageReader(self.verifier.tables),
                                     today=self.verifier.today, on_read=self._card_read)
            self.card_images = worker
            self._run("camera-cards", worker.run)
            on_card = worker.submit
        reader = CameraReader(source, on_payload=self._payload("camera"),
                              on_state=self._state("camera"), on_hint=self._hint(Hint()),
                              fps=fps, dedup=Deduper(repeat_seconds=repeat_seconds),
                              on_card=on_card, is_card_qr=is_card_qr)
        self._spawn("camera", reader)

    def _card_read(self, credential: Credential | None) -> None:
        """The card image worker's draft (its thread): to the flow, on the event loop; nothing
        found: the camera offers the card again while it stays in view."""
        if credential is not None:
            self._call(lambda: self._card_image(credential))
        elif (camera := self.readers.get("camera")) is not None:
            camera.card_missed()

    def _card_image(self, credential: Credential) -> None:
        try:
            self.verifier.card_image(credential, reader="camera")
        except Exception as e:  # the loop goes on; the class name only (no card data)
            log.error("card image from camera failed: %s", type(e).__name__)

    def _spawn(self, name: str, reader: Any) -> None:
        self.readers[name] = reader
        self.states.setdefault(name, {"status": "down", "reason": "starting"})
        self._run(f"device-{name}", reader.run)

    def _run(self, name: str, run: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(target=run, args=(self._stop,), daemon=True, name=name)
        thread.start()
        self._threads.append(thread)

    def alive(self) -> bool:
        """Every device thread still running (the watchdog asks)."""
        return all(t.is_alive() for t in self._threads)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
