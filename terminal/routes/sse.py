"""Server-sent events from the event bus, shared by ``/api/v1/events`` (verify) and
``/api/v1/kiosk/events`` (kiosk): each route decides what an event becomes, which pool its
streams come from, and who must still be signed in for a stream to go on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from terminal.events import Event, EventBus, StreamsFull, Subscription

HEARTBEAT_SECONDS = 15.0
STREAMS_FULL = {"code": "too_many_streams", "vi": "Quá nhiều kết nối theo dõi. Đóng bớt tab.",
                "en": "Too many open event streams. Close some tabs."}


def event_stream(bus: EventBus, request: Request, encode: Callable[[Event], bytes | None], *,
                 kiosk: bool = False, live: Callable[[], bool] | None = None) -> Response:
    """Server-sent events from the bus, ``encode`` deciding what each event becomes (None:
    not sent); a comment every HEARTBEAT_SECONDS keeps proxies from closing the stream. A
    client past its pool's share of streams is told so (429), the streams already open go
    on. ``live`` (whoever opened the stream is still signed in) is asked before each event
    and each heartbeat: once it says no, the stream ends without sending anything more."""
    try:
        sub = bus.open(request.client.host if request.client else "?", kiosk=kiosk,
                       live=live)
    except StreamsFull:
        return JSONResponse({"error": STREAMS_FULL}, status_code=429,
                            headers={"Retry-After": "5"})

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n: connected\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(sub.queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    if not sub.live():
                        sub.end("session")
                        return
                    yield b": keep-alive\n\n"
                    continue
                if event is None:
                    return  # the bus closed, or ended this stream
                if not sub.live():  # signed out since: nothing more is sent
                    sub.end("session")
                    return
                data = encode(event)
                if data is not None:
                    yield data
        finally:
            sub.release()

    return _Stream(stream(), sub, media_type="text/event-stream",
                   headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


class _Stream(StreamingResponse):
    """Gives the stream's place back when the response ends, however it ends: a client that
    leaves before the body starts cancels it before the generator's ``finally`` can run."""

    def __init__(self, content: AsyncIterator[bytes], sub: Subscription,
                 **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._sub = sub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._sub.release()
