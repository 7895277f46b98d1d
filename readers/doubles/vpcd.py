"""The virtual CCCD behind pcscd: a client of the vsmartcard ``vpcd`` driver's socket.

Test machines only. The ``vsmartcard-vpcd`` driver makes pcscd listen on a TCP port
(35963) for a "virtual ICC"; this module is that ICC, so tests and benchmarks go through
pcscd and pyscard exactly as a real reader does. Never install the driver on a desk.

Protocol (vsmartcard ``vpcd``): every message is a 2-byte big-endian length and a payload.
From the driver, a 1-byte payload is a control code — 0 power off, 1 power on, 2 reset,
4 "send the ATR" — and anything longer is a command APDU to answer.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

from readers.doubles.vcard import VirtualCccd
from readers.errors import CardRemoved

log = logging.getLogger(__name__)
VPCD_PORT = 0x8C7B
CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0, 1, 2, 4


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        # The driver writes the length and the APDU separately without TCP_NODELAY; acking at
        # once keeps Nagle from holding the APDU for our delayed ACK (40 ms per command).
        if hasattr(socket, "TCP_QUICKACK"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("vpcd closed the connection")
        buf += chunk
    return buf


class VpcdCard:
    """Insert a virtual card into the vpcd reader (``insert``) and pull it out (``remove``).

    A card whose ``torn_after`` fault fires is pulled out mid-read, like a patient moving
    the card away.
    """

    def __init__(self, card: VirtualCccd, host: str = "127.0.0.1", port: int = VPCD_PORT):
        self.card = card
        self.host = host
        self.port = port
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.served = 0

    def insert(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._sock = socket.create_connection((self.host, self.port), timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._sock.settimeout(None)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="vpcd-card")
        self._thread.start()

    def remove(self) -> None:
        self._stop.set()
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> VpcdCard:
        self.insert()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def _serve(self) -> None:
        sock = self._sock

        def send(payload: bytes) -> None:
            if sock is not None:
                sock.sendall(len(payload).to_bytes(2, "big") + payload)

        try:
            while sock is not None and not self._stop.is_set():
                size = int.from_bytes(_recv_exact(sock, 2), "big")
                payload = _recv_exact(sock, size)
                if size == 1:
                    code = payload[0]
                    if code in (CTRL_OFF, CTRL_ON, CTRL_RESET):
                        self.card.reset()
                    elif code == CTRL_ATR:
                        send(self.card.atr)
                    continue
                try:
                    answer = self.card.process(payload)
                except CardRemoved:
                    log.info("virtual card torn after %d APDUs", self.card.apdus - 1)
                    break
                self.served += 1
                send(answer)
        except (OSError, ConnectionError):
            pass
        finally:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
