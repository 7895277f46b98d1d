"""The HN212-compatible HIS feed: a daemon in process with the virtual CCCD and the feed on its
own port, and an HIS written for the HN212 service (python-socketio's client)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import socketio

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


def connect(url: str, **kwargs: Any) -> His:
    his = His(socketio.Client(reconnection=False))

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
