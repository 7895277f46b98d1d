"""The HN212 feed's door (issues 12 and 23): who may open an Engine.IO session on the feed's
port, how many, for how long before a token, and what happens to input the feed never needs.

Engine.IO makes a session at the handshake, before Socket.IO's connect checks the HIS token,
so everything here holds before any token: sessions are counted by what Engine.IO parses (not
by text in the query), per address (the socket's peer: this port is never behind the proxy)
and in all, with at most half of them unauthenticated; a session without a successful connect
within ``AUTH_SECONDS`` is ended; JSONP polling and binary packets are refused; malformed
input is counted and logged as one line per address per ``LOG_INTERVAL``, never a traceback.
``Hn212Feed`` (``hn212.py``) builds these and speaks the protocol.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from terminal.auth import LoginLimiter, check_bearer
from terminal.security import host_name

log = logging.getLogger(__name__)
AUTH_SECONDS = 5.0    # an Engine.IO session must complete a Socket.IO connect within this
LOG_INTERVAL = 60.0   # one line per address per interval about its bad input
SLOT = "tiepdon.hn212_slot"      # the ASGI scope key carrying a new session's reservation
EIO_SID = "tiepdon.hn212_eio"    # the environ key naming a Socket.IO client's Engine.IO session
BINARY_TYPES = ("5", "6")        # Socket.IO BINARY_EVENT, BINARY_ACK: the feed needs neither
CLIENT: ContextVar[str] = ContextVar("hn212_client", default="?")  # for the engine's log lines


@dataclass(eq=False)
class Slot:
    """A reservation for one new session, made before Engine.IO runs."""

    address: str
    vouched: bool  # a valid HIS token came with the handshake itself


@dataclass
class _Session:
    address: str
    authenticated: bool


@dataclass
class SessionGuard:
    """The feed's sessions by address, pure bookkeeping (no I/O): reserved synchronously before
    the handshake, made sessions by Engine.IO's connect, freed by its disconnect."""

    max_total: int
    max_per_client: int
    refused: Counter[str] = field(default_factory=Counter)
    _pending: set[Slot] = field(default_factory=set)
    _sessions: dict[str, _Session] = field(default_factory=dict)
    _per_address: Counter[str] = field(default_factory=Counter)
    _unauthenticated: int = 0

    @property
    def max_unauthenticated(self) -> int:
        return max(1, self.max_total // 2)  # the other half stays for authenticated HIS

    def __len__(self) -> int:
        return len(self._sessions)

    def reserve(self, address: str, *, vouched: bool) -> Slot | None:
        if len(self._pending) + len(self._sessions) >= self.max_total:
            reason = "total"
        elif self._per_address[address] >= self.max_per_client:
            reason = "per_address"
        elif not vouched and self._unauthenticated >= self.max_unauthenticated:
            reason = "unauthenticated"
        else:
            slot = Slot(address, vouched)
            self._pending.add(slot)
            self._per_address[address] += 1
            self._unauthenticated += not vouched
            return slot
        self.refused[reason] += 1
        return None

    def release(self, slot: Slot) -> None:
        """The handshake is over; a reservation that made no session is given back."""
        if slot in self._pending:
            self._pending.discard(slot)
            self._forget(slot.address, authenticated=slot.vouched)

    def open(self, eio_sid: str, slot: Slot | None) -> bool:
        """Engine.IO made a session: only one reserved by the gate is accepted."""
        if slot is None or slot not in self._pending:
            self.refused["unreserved"] += 1
            return False
        self._pending.discard(slot)
        self._sessions[eio_sid] = _Session(slot.address, slot.vouched)
        return True

    def authenticate(self, eio_sid: str) -> None:
        session = self._sessions.get(eio_sid)
        if session is not None and not session.authenticated:
            session.authenticated = True
            self._unauthenticated -= 1

    def is_waiting(self, eio_sid: str) -> bool:
        """Open and not yet authenticated."""
        session = self._sessions.get(eio_sid)
        return session is not None and not session.authenticated

    def address(self, eio_sid: str) -> str:
        session = self._sessions.get(eio_sid)
        return session.address if session is not None else "?"

    def close(self, eio_sid: str) -> None:
        session = self._sessions.pop(eio_sid, None)
        if session is not None:
            self._forget(session.address, authenticated=session.authenticated)

    def _forget(self, address: str, *, authenticated: bool) -> None:
        self._per_address[address] -= 1
        if self._per_address[address] <= 0:
            del self._per_address[address]
        self._unauthenticated -= not authenticated


@dataclass
class BadInput:
    """Malformed or refused input, counted; logged as one line per address per interval with
    how many were not logged. Also the logger python-engineio and python-socketio are given, so
    their per-packet errors and tracebacks become these lines."""

    interval: float = LOG_INTERVAL
    clock: Callable[[], float] = time.monotonic
    count: int = 0
    _last: dict[str, float] = field(default_factory=dict)
    _quiet: Counter[str] = field(default_factory=Counter)

    def note(self, address: str, what: str) -> None:
        self.count += 1
        now = self.clock()
        last = self._last.get(address)
        if last is not None and now - last < self.interval:
            self._quiet[address] += 1
            return
        if len(self._last) > 4096:  # bounded under a spray of addresses
            self._last.clear()
        self._last[address] = now
        log.warning("hn212 feed: bad input from %s (%s); %d more not logged in the last %.0f s",
                    address, what, self._quiet.pop(address, 0), self.interval)

    # -- the logger interface the Engine.IO and Socket.IO servers call ---------------------
    def debug(self, *_: Any, **__: Any) -> None:
        """Per-packet traces (they would carry patient data): never kept."""

    info = debug

    def warning(self, msg: object, *args: Any, **_: Any) -> None:
        self.note(CLIENT.get(), _first_words(msg, args))

    error = exception = critical = warning


def _first_words(msg: object, args: tuple[Any, ...]) -> str:
    try:
        text = str(msg) % args if args else str(msg)
    except (TypeError, ValueError):
        text = str(msg)
    return text[:80]


class FeedTokens:
    """The HIS bearer tokens on the feed (``auth.api_tokens``; None: no login required).
    Guesses are limited per address as logins are (``LoginLimiter``: 5 failures in 5 minutes,
    then refused, the right token included); another address is not affected."""

    def __init__(self, tokens: list[str] | None, limiter: LoginLimiter | None = None) -> None:
        self.tokens = tokens
        self.limiter = limiter or LoginLimiter()
        self.failures = 0

    @property
    def required(self) -> bool:
        return self.tokens is not None

    def check(self, address: str, presented: str | None) -> str | None:
        """The token's name, or None (no token, a wrong one, or this address locked out)."""
        if self.tokens is None or presented is None:
            return None
        key = f"hn212|{address}"
        stamp = self.limiter.begin(key)
        if stamp is None:
            self.failures += 1
            return None
        name = check_bearer(self.tokens, presented)
        if name is None:
            self.failures += 1
        else:
            self.limiter.succeeded(stamp, key)
        return name


class OriginCheck:
    """python-engineio's CORS callable: browser pages only from ``his.hn212_origins`` or the
    feed's own origin; clients that are not browsers send no Origin (host and token rules
    still apply to them)."""

    def __init__(self, origins: list[str]) -> None:
        self.origins = frozenset(o.rstrip("/") for o in origins)

    def __call__(self, origin: str | None, environ: dict[str, Any]) -> bool:
        if not origin:
            return True
        same = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
        return origin.rstrip("/") in self.origins or origin == same


def presented_token(auth: Any, authorization: str, query: dict[str, list[str]]) -> str | None:
    """Socket.IO's ``auth: {token}``, else ``Authorization: Bearer``, else ``?token=``."""
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return str(auth["token"])
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return query["token"][0] if query.get("token") else None


def engine_query(scope: Scope) -> dict[str, list[str]]:
    """The query as python-engineio parses it (UTF-8, else empty; blank values dropped), so a
    "new session" here is one there."""
    try:
        return parse_qs(scope.get("query_string", b"").decode("utf-8"))
    except UnicodeDecodeError:
        return {}


class HostGate:
    """Outermost on the feed's port. A Host the daemon does not answer to is refused before
    Engine.IO sees it (websockets too); forwarded headers are dropped; JSONP polling is refused
    (it makes the handshake readable cross-origin); a new session needs a reservation from the
    ``SessionGuard`` (503, or websocket close 1013, without one)."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str], guard: SessionGuard,
                 tokens: FeedTokens) -> None:
        self.app = app
        self.hosts = hosts
        self.guard = guard
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"]
                   if not k.lower().startswith(b"x-forwarded-")]
        host = next((v.decode("latin-1") for k, v in headers if k.lower() == b"host"), "")
        if host_name(host) not in self.hosts:
            await _refuse(scope, send, 421, 1008, b"host not allowed")
            return
        raw = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        if "j" in raw:
            await _refuse(scope, send, 400, 1008, b"JSONP polling is not served")
            return
        address = str((scope.get("client") or ("?", 0))[0])  # the socket's peer
        CLIENT.set(address)
        query = engine_query(scope)
        if "sid" in query:  # an existing session's request: Engine.IO checks the sid
            await self.app({**scope, "headers": headers}, receive, send)
            return
        vouched = await self._vouch(scope, send, address, headers, query)
        if vouched is None:
            return
        slot = self.guard.reserve(address, vouched=vouched)
        if slot is None:
            await _refuse(scope, send, 503, 1013, b"too many sessions")
            return
        try:
            await self.app({**scope, "headers": headers, SLOT: slot}, receive, send)
        finally:
            self.guard.release(slot)

    async def _vouch(self, scope: Scope, send: Send, address: str,
                     headers: list[tuple[bytes, bytes]],
                     query: dict[str, list[str]]) -> bool | None:
        """True when a valid token came with the handshake (the session then needs no room
        among the unauthenticated); None once a wrong one was refused with 401."""
        if not self.tokens.required:
            return False
        authorization = next((v.decode("latin-1") for k, v in headers
                              if k.lower() == b"authorization"), "")
        token = presented_token(None, authorization, query)
        if token is None:
            return False
        if self.tokens.check(address, token) is None:
            await _refuse(scope, send, 401, 1008, b"token refused")
            return None
        return True


async def _refuse(scope: Scope, send: Send, status: int, ws_code: int, body: bytes) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": ws_code})
        return
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


Handler = Callable[..., Awaitable[Any]]


class EngineHooks:
    """Around python-socketio's own Engine.IO handlers: a session is opened only on its gate
    reservation and ended when it has not authenticated within ``auth_seconds``; binary input
    ends the session (nothing is collected for attachments); whatever a malformed packet raises
    is counted in ``BadInput``, not logged as a traceback."""

    def __init__(self, eio: Any, guard: SessionGuard, bad: BadInput, *,
                 auth_seconds: float = AUTH_SECONDS) -> None:
        self.eio = eio
        self.guard = guard
        self.bad = bad
        self.auth_seconds = auth_seconds
        self.binary_refused = 0
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._inner: dict[str, Handler] = {e: eio.handlers[e]
                                           for e in ("connect", "message", "disconnect")}
        eio.on("connect", self._connect)
        eio.on("message", self._message)
        eio.on("disconnect", self._disconnect)

    def authenticated(self, environ: dict[str, Any]) -> None:
        """A Socket.IO connect succeeded on this session: it stays."""
        eio_sid = environ.get(EIO_SID)
        if isinstance(eio_sid, str):
            self.guard.authenticate(eio_sid)
            timer = self._timers.pop(eio_sid, None)
            if timer is not None:
                timer.cancel()

    async def _connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        slot = (environ.get("asgi.scope") or {}).get(SLOT)
        if not self.guard.open(eio_sid, slot):
            return False
        environ[EIO_SID] = eio_sid
        self._timers[eio_sid] = asyncio.get_running_loop().call_later(
            self.auth_seconds, self._expire, eio_sid)
        return await self._inner["connect"](eio_sid, environ)

    async def _message(self, eio_sid: str, data: Any) -> None:
        address = self.guard.address(eio_sid)
        if isinstance(data, bytes) or str(data)[:1] in BINARY_TYPES:
            self.binary_refused += 1
            self.bad.note(address, "binary input")
            await self._end(eio_sid)
            return
        try:
            await self._inner["message"](eio_sid, data)
        except Exception as e:  # anything a client's packet makes the library raise
            self.bad.note(address, type(e).__name__)

    async def _disconnect(self, eio_sid: str, *args: Any) -> None:
        timer = self._timers.pop(eio_sid, None)
        if timer is not None:
            timer.cancel()
        self.guard.close(eio_sid)
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None and args and args[0] == self.eio.reason.CLIENT_DISCONNECT:
            # The client said goodbye: its long-poll still waiting is answered now (else it
            # hangs until the next ping, and the client's disconnect with it).
            socket.queue.put_nowait(None)
        await self._inner["disconnect"](eio_sid, *args)

    def end_slow(self, limit: int) -> int:
        """End every session with more than ``limit`` packets waiting for its client (a
        websocket that answers pings but never reads would otherwise grow without bound);
        how many were ended."""
        slow = [sid for sid, socket in list(self.eio.sockets.items())
                if socket.queue.qsize() > limit]
        for eio_sid in slow:
            self.guard.refused["slow"] += 1
            task = asyncio.ensure_future(self._end(eio_sid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(slow)

    def _expire(self, eio_sid: str) -> None:
        self._timers.pop(eio_sid, None)
        if self.guard.is_waiting(eio_sid):
            self.guard.refused["unauthenticated_expired"] += 1
            task = asyncio.ensure_future(self._end(eio_sid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _end(self, eio_sid: str) -> None:
        """End the session without waiting for the client: python-engineio's own disconnect
        waits until the client takes the close packet (a polling client that never polls
        again holds it forever) and leaves a websocket open until the client closes it; the
        ``None`` queued after the close packet makes its writer close the websocket."""
        socket = self.eio.sockets.pop(eio_sid, None)
        if socket is not None:
            await socket.close(wait=False, reason=self.eio.reason.SERVER_DISCONNECT)
            socket.queue.put_nowait(None)
