"""Running ASGI apps with uvicorn: in the foreground (``serve``, ``demo``) or in a background
thread (the demo's registry simulator, tests, benchmarks). Sockets are bound here so a port
of 0 gives a free port whose number is known before the server starts.

The connection layer is where floods are refused before they cost a task: at most
``http.max_connections_per_client`` connections from one address (the rest are closed at
once), ``http.max_connections`` in all (503 beyond), and a request whose headers have not
arrived within ``http.header_timeout_seconds`` is dropped (slow-header attacks).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.h11_impl import H11Protocol

from terminal.settings import HttpSettings


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


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with a per-address connection cap and a header deadline; its
    settings and counts are those of the subclass :func:`guarded_protocol` makes."""

    http: ClassVar[HttpSettings]
    per_client: ClassVar[Counter[str]]
    _deadline: asyncio.TimerHandle | None = None
    _counted: str | None = None
    _upgraded = False  # the transport belongs to a websocket protocol now

    @classmethod
    def _release(cls, peer: str) -> None:
        cls.per_client[peer] -= 1
        if cls.per_client[peer] <= 0:
            del cls.per_client[peer]

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        peer = self.client[0] if self.client else "?"
        if self.per_client[peer] >= self.http.max_connections_per_client:
            transport.abort()  # refused before any request is read
            return
        self.per_client[peer] += 1
        self._counted = peer
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._counted is not None:
            self._release(self._counted)
            self._counted = None
        super().connection_lost(exc)

    def handle_websocket_upgrade(self, event: Any) -> None:
        """The websocket protocol takes the transport over (the HIS feed): the connection
        stays counted until that protocol loses it."""
        self._disarm()
        self._upgraded = True
        counted, self._counted = self._counted, None
        super().handle_websocket_upgrade(event)
        if counted is None:
            return
        protocol = self.transport.get_protocol()
        lost = protocol.connection_lost
        release = self._release

        def release_then_lose(exc: Exception | None) -> None:
            release(counted)
            lost(exc)

        protocol.connection_lost = release_then_lose  # type: ignore[method-assign]

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._upgraded:
            return  # no header deadline on a websocket (it would close the HIS feed)
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm()  # the request's headers are in
        elif self._deadline is None:
            self._arm()     # a next request on a kept-alive connection has begun

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # idle keep-alive is uvicorn's own timeout

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.http.header_timeout_seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self._upgraded:
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()


def guarded_protocol(http: HttpSettings) -> type[H11Protocol]:
    """One server's protocol class: its settings, and its own count of connections per
    address."""
    return type("Guarded", (GuardedH11,), {"http": http, "per_client": Counter()})


def _config(app: ASGIApp) -> uvicorn.Config:
    # Access logs are off: the gateway protocol puts credentials in query strings, and the
    # daemon logs its own events with fingerprints instead of URLs.
    settings = getattr(getattr(app, "state", None), "settings", None)
    http: HttpSettings = getattr(settings, "http", None) or HttpSettings()
    return uvicorn.Config(
        _forwarded(app, http), access_log=False, log_level="warning", lifespan="on",
        timeout_graceful_shutdown=3, http=guarded_protocol(http),
        # Websockets only for the HIS feed (python-socketio); wsproto comes with it.
        ws="wsproto", ws_max_size=64 * 1024,
        limit_concurrency=http.max_connections,
        proxy_headers=False)  # _forwarded: the main port only, the named proxies only


def _forwarded(app: ASGIApp, http: HttpSettings) -> ASGIApp:
    """X-Forwarded-For / -Proto believed only from ``http.trusted_proxies`` (uvicorn's own
    default trusts 127.0.0.1, which would let any local process pick its address), and only
    on the main port: the HIS feed's port is never behind the proxy, so its per-address limits
    count the socket's peer (README: Security)."""
    if not http.trusted_proxies:
        return app
    def believe(inner: ASGIApp) -> ASGIApp:  # uvicorn types ASGI apps its own way
        return cast(ASGIApp, ProxyHeadersMiddleware(cast(Any, inner), list(http.trusted_proxies)))

    if isinstance(app, PortRouter):
        router = PortRouter(believe(app.main), app.by_port)
        router.state = app.state
        return router
    return believe(app)


class PortRouter:
    """One server, several ports: requests on a listed port go to that port's app (the HIS
    feed), everything else, lifespan included, to the main app."""

    def __init__(self, main: ASGIApp, by_port: dict[int, ASGIApp]) -> None:
        self.main = main
        self.by_port = by_port
        self.state = getattr(main, "state", None)  # _config reads the settings from it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") if scope["type"] in ("http", "websocket") else None
        app = self.by_port.get(server[1], self.main) if server else self.main
        await app(scope, receive, send)


def serve_foreground(app: ASGIApp, *socks: socket.socket) -> None:
    uvicorn.Server(_config(app)).run(sockets=list(socks))


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
                     startup_timeout: float = 20.0,
                     extra: tuple[socket.socket, ...] = ()) -> BackgroundServer:
    sock = bind(host, port)
    actual = sock.getsockname()[1]
    server = uvicorn.Server(_config(app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock, *extra]},
                              daemon=True,
                              name=f"uvicorn-{actual}")
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    return BackgroundServer(server, thread, host, actual)
