"""systemd integration without a library: ``sd_notify`` over ``$NOTIFY_SOCKET`` (READY=1,
STATUS=, WATCHDOG=1) and the liveness check that decides whether the watchdog is fed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)


def notify(message: str) -> bool:
    """Send one notification; False when not running under systemd (no socket)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
        return True
    return False


def watchdog_interval() -> float | None:
    """Half the configured watchdog period, or None when systemd set none for us."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None


async def watchdog(alive: Callable[[], bool], interval: float) -> None:
    """Feed the watchdog only while ``alive()`` — a stuck reader loop gets the daemon
    restarted by systemd instead of silently showing stale data."""
    while True:
        if alive():
            notify("WATCHDOG=1")
        else:
            log.error("a reader loop is not alive: not feeding the watchdog")
        await asyncio.sleep(interval)
