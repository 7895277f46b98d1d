"""The HN212-compatible HIS feed: a daemon in process with the virtual CCCD and the feed on its
own port, and an HIS written for the HN212 service (python-socketio's client)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import requests
import socketio
import websocket
from requests.adapters import HTTPAdapter

from readers.doubles.vcard import DemoSource, Faults, demo_card
from readers.emrtd.pa import load_trust
from terminal.app import build_services, create_app, with_feeds
from terminal.server import BackgroundServer, bind, start_background
from tests.helpers.chip import pki
from tests.helpers.daemon import terminal_settings
from tests.helpers.samples import NOW


@dataclass
class Feed:
    daemon: BackgroundServer
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def serve_feed(sim: BackgroundServer, tmp_path: Path, faults: Faults | None = None,
               **overrides: object) -> Feed:
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    card = demo_card(now=NOW, faults=faults or Faults(), pki=pki())[0]
    settings = terminal_settings(sim.url, tmp_path / "data", his__hn212_port=port, **overrides)
    services = build_services(settings, now=lambda: NOW, chip_source=DemoSource(card),
                              trust=load_trust([pki().csca_pem()]))
    app = with_feeds(create_app(settings, services), services, port)
    return Feed(start_background(app, extra=(sock,)), port)


@dataclass
class His:
    """An HIS written for the HN212 service: it listens to /info and /event, nothing else."""

    client: socketio.Client
    info: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    got: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, ids: list[int], timeout: float = 20,
                 skip: frozenset[int] = frozenset()) -> list[dict[str, Any]]:
        """The first messages (ids in ``skip`` left out) once they are ``ids``."""
        deadline = time.monotonic() + timeout
        with self.got:
            while True:
                kept = [e for e in self.events if e["id"] not in skip][:len(ids)]
                if [e["id"] for e in kept] == ids:
                    return kept
                left = deadline - time.monotonic()
                assert left > 0, [e["id"] for e in self.events]
                self.got.wait(left)


def connect(url: str, client: socketio.Client | None = None, **kwargs: Any) -> His:
    his = His(client or socketio.Client(reconnection=False))

    def on_info(data: dict[str, Any]) -> None:
        his.info.append(data)

    def on_event(data: dict[str, Any]) -> None:
        with his.got:
            his.events.append(data)
            his.got.notify_all()

    his.client.on("/info", on_info)
    his.client.on("/event", on_event)

    his.client.connect(url, wait_timeout=10, **kwargs)
    return his


def connect_from(source: str, url: str, **kwargs: Any) -> His:
    """An HIS on another loopback address (``127.0.0.2``): long-polling over a requests session
    whose connections leave from ``source``, as a second machine on the LAN would."""
    session = requests.Session()
    adapter = _SourceAdapter(source)
    session.mount("http://", adapter)
    return connect(url, transports=["polling"], client=socketio.Client(
        reconnection=False, http_session=session), **kwargs)


class _SourceAdapter(HTTPAdapter):
    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def raw_socket(feed: Feed, *, connect_namespace: bool = False,
               timeout: float = 10) -> websocket.WebSocket:
    """A bare Engine.IO websocket on the feed (its open packet read), optionally with the
    Socket.IO connect done: for sending what no real client sends."""
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{feed.port}/socket.io/?EIO=4&transport=websocket", timeout=timeout)
    assert str(ws.recv()).startswith("0{")
    if connect_namespace:
        namespace_connect(ws)
    return ws


def namespace_connect(ws: websocket.WebSocket) -> None:
    """Socket.IO's connect on a bare websocket, returning once the server has accepted it
    (its /info may come first)."""
    ws.send("40")
    frames = [ws.recv() for _ in range(2)]
    assert any(str(f).startswith("40{") for f in frames), frames


def closed_by_server(ws: websocket.WebSocket, frames: int = 50) -> bool:
    """Whether the server closes this websocket: frames read until a close (True), or until
    the socket's timeout or ``frames`` other frames (False)."""
    for _ in range(frames):
        try:
            opcode, _ = ws.recv_data(control_frame=True)
        except websocket.WebSocketTimeoutException:
            return False
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            return True
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return True
    return False


def metric(daemon: BackgroundServer, name: str) -> float | None:
    """One unlabelled value of the daemon's /metrics, None when it is not there."""
    for line in httpx.get(f"{daemon.url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None
