"""Running ASGI apps with uvicorn: in the foreground (``serve``, ``demo``) or in a background
thread (the demo's registry simulator, tests, benchmarks). Sockets are bound here so a port
of 0 gives a free port whose number is known before the server starts."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; ``OSError`` when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only when it does, and
    # without it Nagle + delayed ACK add 40 ms to every answer on a kept-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _config(app: ASGIApp) -> uvicorn.Config:
    # Access logs are off: the gateway protocol puts credentials in query strings, and the
    # daemon logs its own events with fingerprints instead of URLs.
    return uvicorn.Config(app, access_log=False, log_level="warning", lifespan="on",
                          timeout_graceful_shutdown=3)


def serve_foreground(app: ASGIApp, sock: socket.socket) -> None:
    uvicorn.Server(_config(app)).run(sockets=[sock])


@dataclass
class BackgroundServer:
    server: uvicorn.Server
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def start_background(app: ASGIApp, host: str = "127.0.0.1", port: int = 0,
                     startup_timeout: float = 20.0) -> BackgroundServer:
    sock = bind(host, port)
    actual = sock.getsockname()[1]
    server = uvicorn.Server(_config(app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"uvicorn-{actual}")
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    return BackgroundServer(server, thread, host, actual)
