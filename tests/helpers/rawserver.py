"""A TCP server that answers every connection with a function of the raw socket: registries
and mirrors that misbehave below HTTP (resets, dripped bytes, garbage status lines)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable


def raw_server(answer: Callable[[socket.socket], None]) -> tuple[str, Callable[[], None]]:
    """``http://127.0.0.1:PORT`` and a function that stops the server. Each connection is
    given to ``answer``, then closed."""
    server = socket.create_server(("127.0.0.1", 0), backlog=16)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:  # the accept timeout, or the server closed
                continue
            with conn, contextlib.suppress(OSError):
                answer(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def close() -> None:
        stop.set()
        thread.join(5)
        server.close()

    return f"http://127.0.0.1:{server.getsockname()[1]}", close
