"""The HN212-compatible HIS feed read by the JavaScript ``socket.io-client`` bundles from the npm
registry, running in headless Chromium on a page of another origin as an HIS web page would.
The daemon runs over real HTTP on loopback with the in-process virtual CCCD and the registry
simulator."""

from __future__ import annotations

import http.server
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from readers.doubles.vcard import DEMO_PERSON
from terminal.server import BackgroundServer
from tests.helpers.hn212 import serve_feed
from tests.helpers.paths import DATA as TEST_DATA

DATA = TEST_DATA / "socketio"
PAGE = """<!doctype html><meta charset="utf-8"><script src="/sio.js"></script><script>
window.got = []; window.info = null; window.errors = [];
const s = io(%(url)s, {transports: %(transports)s, reconnection: false});
s.on('connect_error', e => window.errors.push(String(e && e.message || e)));
s.on('/info', d => { window.info = d; });
s.on('/event', d => { window.got.push(d); });
</script>"""


@dataclass
class HisSite:
    """An HIS web page on its own origin loading a socket.io-client bundle; ``feed_url`` is
    set once the daemon it talks to has started."""

    server: http.server.ThreadingHTTPServer
    feed_url: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def his_site(version: str, transports: str) -> HisSite:
    bundle = (DATA / f"socket.io-client-{version}.min.js").read_bytes()
    site: HisSite

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/sio.js":
                body, kind = bundle, "text/javascript"
            else:
                body = (PAGE % {"url": json.dumps(site.feed_url),
                                "transports": transports}).encode()
                kind = "text/html; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    site = HisSite(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    threading.Thread(target=site.server.serve_forever, daemon=True).start()
    return site


@pytest.mark.browser
@pytest.mark.parametrize(("version", "transports"), [("4.8.4", "['websocket']"),
                                                     ("3.1.3", "['polling', 'websocket']")])
def test_an_his_web_page_receives_the_messages_unchanged(
        sim: BackgroundServer, tmp_path: Path, browser: Any, version: str,
        transports: str) -> None:
    site, stranger = his_site(version, transports), his_site(version, transports)
    f = serve_feed(sim, tmp_path, his__hn212_origins=[site.url])
    site.feed_url = stranger.feed_url = f.url
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(site.url + "/")
        page.wait_for_function("window.info !== null || window.errors.length > 0")
        assert page.evaluate("window.errors") == []
        assert page.evaluate("window.info")["version"].startswith("tiepdon")
        httpx.post(f"{f.daemon.url}/api/v1/chip/demo", timeout=30).raise_for_status()
        page.wait_for_function("window.got.length >= 4", timeout=20_000)
        got = page.evaluate("window.got")
        assert [m["id"] for m in got] == [1, 2, 4, 5]
        assert got[1]["data"]["idCode"] == DEMO_PERSON.id_number
        # id 2 comes before Active Authentication: provisional; id 5 carries the settled word
        assert got[1]["data"]["eligibility"]["status"] == "needs_review"
        assert got[1]["data"]["eligibility"]["provisional"] is True
        assert got[3]["data"]["CA"] == "1"
        assert got[3]["data"]["eligibilityStatus"] == "eligible"
        other = context.new_page()  # a page of an origin the settings do not name
        other.goto(stranger.url + "/")
        other.wait_for_function("window.info !== null || window.errors.length > 0")
        assert other.evaluate("window.info") is None
    finally:
        context.close()
        site.server.shutdown()
        stranger.server.shutdown()
        f.daemon.stop()


@pytest.mark.browser
def test_a_socket_io_2_page_is_refused_not_fed(sim: BackgroundServer, tmp_path: Path,
                                               browser: Any) -> None:
    site = his_site("2.5.0", "['polling', 'websocket']")
    f = serve_feed(sim, tmp_path, his__hn212_origins=[site.url])
    site.feed_url = f.url
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(site.url + "/")
        page.wait_for_timeout(1500)
        assert page.evaluate("window.info") is None and page.evaluate("window.got") == []
    finally:
        context.close()
        site.server.shutdown()
        f.daemon.stop()
