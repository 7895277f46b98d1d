"""The HN212-compatible feed: a Socket.IO server (python-socketio) on its own port speaking the
desk reader vendor's protocol (messages built in ``verify/hn212.py``), so HIS code written for
that reader service works unchanged against ``tiepdon``.

Protocol versions: python-socketio 5 speaks Socket.IO 5 over Engine.IO 4, the protocol of
the JavaScript ``socket.io-client`` 3.x and 4.x, of SocketIOClient (.NET) 3 and later and of
python-socketio 5. Clients of socket.io 1.x/2.x (Engine.IO 3) are refused with HTTP 400 by
python-engineio; one implementation cannot serve both (python-socketio 4 speaks only the old
one), and the vendor clients found in public HIS code use 4.x and SocketIOClient 3.x, so the
current protocol was chosen (README: HIS feeds).

Security is the daemon's (issues 12 and 23): the same host names only (DNS rebinding, checked
for websockets too), browser pages only from ``his.hn212_origins`` or the same origin, the HIS
bearer token when login is required (``auth: {token}``, ``Authorization: Bearer`` or
``?token=``; guesses limited as logins are), and the session limits of ``guard.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs

import socketio
from starlette.types import ASGIApp

from readers.emrtd.chip import ChipRead
from readers.errors import ReaderError
from terminal.feeds import ChipPort
from terminal.feeds.guard import (
    BadInput,
    EngineHooks,
    FeedTokens,
    HostGate,
    OriginCheck,
    SessionGuard,
    presented_token,
)
from terminal.flow.results import Actor, Verification, error_json
from verify import hn212
from verify.errors import InputFormatError
from verify.tables import Notice

log = logging.getLogger(__name__)
T = TypeVar("T")
QUEUE_SIZE = 256  # messages waiting for the sender; the oldest go first when it is full
CLIENT_BACKLOG = 64  # packets waiting for one client that does not read: then it is ended


class Hn212Feed:
    """The feed: the flow's moments sent as HN212 messages, the HIS's requests answered. The
    door before any token (sessions, limits, bad input) is ``guard.py``'s."""

    def __init__(self, *, chip: ChipPort | None, version: str, device: str,
                 hosts: frozenset[str], origins: list[str], tokens: list[str] | None,
                 max_per_client: int = 16, max_total: int = 128, send_photo: bool = True,
                 now: Callable[[], datetime] | None = None,
                 notices: Mapping[str, Notice] | None = None, strict: bool = False) -> None:
        self.chip = chip
        self.strict = strict  # [his] hn212_strict: only flat strings inside data
        self.notices = notices or {}  # staff sentences (messages.toml)
        self.version = version
        self.device = device
        self.send_photo = send_photo
        self._now = now or (lambda: datetime.now(UTC))
        self.clients: dict[str, str] = {}  # Socket.IO sid -> who (the token's name)
        self.sent: Counter[int] = Counter()
        self.dropped = 0
        self.refused: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._queue: asyncio.Queue[dict[str, Any]] | None = None
        self._sender: asyncio.Task[None] | None = None
        self.guard = SessionGuard(max_total, max_per_client)
        self.tokens = FeedTokens(tokens)
        self.bad = BadInput()
        self.sio = socketio.AsyncServer(
            async_mode="asgi", cors_allowed_origins=OriginCheck(origins),
            max_http_buffer_size=64 * 1024, logger=self.bad, engineio_logger=self.bad)
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self.sio.on(hn212.INPUT_DATA, self._input_data)
        self.sio.on(hn212.GET_AA, self._get_aa)
        self.hooks = EngineHooks(self.sio.eio, self.guard, self.bad)
        self.app: ASGIApp = HostGate(socketio.ASGIApp(self.sio, socketio_path="socket.io"),
                                     hosts, self.guard, self.tokens)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """On the daemon's loop (its lifespan): the sender that keeps messages in order."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._queue = asyncio.Queue(QUEUE_SIZE)
        self._sender = asyncio.create_task(self._send_loop())

    async def stop(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        for sid in list(self.clients):
            await self.sio.disconnect(sid)

    async def _send_loop(self) -> None:
        assert self._queue is not None
        while True:
            message = await self._queue.get()
            try:
                await self.sio.emit(hn212.EVENT, message)
                self.sent[message["id"]] += 1
                self.hooks.end_slow(CLIENT_BACKLOG)
            except Exception:  # a broken client must not stop the feed
                log.exception("hn212 emit failed id=%s", message.get("id"))

    def _put(self, message: dict[str, Any]) -> None:
        loop, queue = self._loop, self._queue
        if loop is None or queue is None:
            return  # not serving (a one-shot command)

        def put() -> None:
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(message)

        if threading.get_ident() == self._thread:
            put()
        else:
            loop.call_soon_threadsafe(put)

    # -- the flow's moments (terminal/feeds/__init__.py) -----------------------------------
    def placed(self) -> None:
        self._put(hn212.placed())

    def decided(self, result: Verification) -> None:
        self._put(hn212.text_message(result.credential, result.eligibility.to_json(),
                                     strict=self.strict))

    def chip_done(self, final: Verification, read: ChipRead | None) -> None:
        eligibility = final.eligibility.to_json()
        if read is None:
            self._put(hn212.error_message("chip_incomplete",
                                          self._vi("chip_incomplete_his")))
            files: dict[str, bytes] = {}
        else:
            files = dict(read.files)
            photo = read.photo.image if read.photo is not None else None
            if not self.send_photo:
                files.pop("dg2", None)
                photo = None
            self._put(hn212.raw_message(files, photo))
        evidence = final.credential.chip
        if evidence is None:  # not a chip credential: nothing was proved (fail closed)
            return
        reported = evidence.reported()
        checks = hn212.ChipChecks(
            passive_auth=reported.passive_auth, active_auth=reported.active_auth,
            chip_auth=reported.chip_auth, verdict=reported.verdict,
            aa_signature=read.aa_signature if read is not None else None)
        self._put(hn212.auth_message(checks, files, eligibility, strict=self.strict))

    def failed(self, error: dict[str, Any]) -> None:
        self._put(hn212.error_message(str(error.get("code", "error")), str(error.get("vi", ""))))

    def rechecked(self, result: Verification, previous: dict[str, Any]) -> None:
        """No HN212 message means "a past patient's answer changed"; an id 2 would look like
        a new card to an HIS page. The webhook and the staff page carry it."""

    # -- Socket.IO handlers -----------------------------------------------------------------
    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        address = str((environ.get("asgi.scope", {}).get("client") or ("?", 0))[0])
        who = "hn212"
        if self.tokens.required:
            presented = presented_token(auth, str(environ.get("HTTP_AUTHORIZATION", "")),
                                        parse_qs(str(environ.get("QUERY_STRING", ""))))
            name = self.tokens.check(address, presented)
            if name is None:
                self.refused["token"] += 1
                raise socketio.exceptions.ConnectionRefusedError("token required")
            who = name
        self.hooks.authenticated(environ)
        self.clients[sid] = who
        reader = self.chip.reader_name if self.chip is not None else ""
        await self.sio.emit(hn212.INFO, hn212.info(self.version, reader, self.device,
                                                  self._now()), to=sid)
        log.info("hn212 client connected (%d open)", len(self.clients))

    async def _disconnect(self, sid: str, *_: Any) -> None:
        self.clients.pop(sid, None)

    def _vi(self, name: str) -> str:
        notice = self.notices.get(name)
        return notice.vi if notice is not None else name

    async def _answer_error(self, sid: str, code: str, vi: str) -> None:
        await self.sio.emit(hn212.EVENT, hn212.error_message(code, vi), to=sid)

    async def _request(self, sid: str, parse: Callable[[Any], T], data: Any) -> T | None:
        """An HIS request parsed, or None after telling that client (id 3) what is wrong.
        The reader does one thing at a time: a request while it is busy is refused at once
        (never queued), so no client can line up card work behind the desk's."""
        if self.chip is None:
            await self._answer_error(sid, "chip_none", self._vi("chip_none"))
            return None
        if self.chip.busy:
            self.refused["busy"] += 1
            await self._answer_error(sid, "chip_busy", self._vi("chip_busy"))
            return None
        try:
            return parse(data)
        except InputFormatError as e:
            await self._answer_error(sid, e.code, e.vi)
            return None

    async def _input_data(self, sid: str, data: Any) -> None:
        """Re-read the card on the reader with the HIS's typed ID and dates."""
        keys = await self._request(sid, hn212.input_keys, data)
        if keys is None or self.chip is None:
            return
        who = self.clients.get(sid, "hn212")
        # The messages reach every client through the flow's moments; a reader error was
        # reported to staff and to the feed (id 3) by the read itself.
        with contextlib.suppress(ReaderError):
            await self.chip.read(keys, actor=Actor("his", who))

    async def _get_aa(self, sid: str, data: Any) -> None:
        """Active Authentication with the HIS's challenge on the card read last."""
        challenge = await self._request(sid, hn212.aa_challenge, data)
        if challenge is None or self.chip is None:
            return
        try:
            signature = await self.chip.sign_challenge(challenge)
        except ReaderError as e:
            err = error_json(e)
            await self._answer_error(sid, err["code"], err["vi"])
            return
        await self.sio.emit(hn212.EVENT, hn212.aa_answer(signature, challenge), to=sid)

    def health(self) -> dict[str, str]:
        return {"status": "ok", "reason": f"{len(self.clients)} HIS client(s)"}

