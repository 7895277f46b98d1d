"""Running under systemd: READY=1 and the watchdog over a real notify socket, journald log
format; the snapshot timer's download over real HTTP."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import threading
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from terminal.demo import demo_environment
from terminal.server import BackgroundServer
from tests.helpers.cache import Publisher
from tests.helpers.cli import TIEPDON, run
from verify.snapshot import public_key_text


def test_ready_and_watchdog_notifications(sim: BackgroundServer, tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(20)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TIEPDON_")},
           **demo_environment(sim.url, tmp_path / "data"), "TIEPDON_HTTP_PORT": "0",
           "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000", "JOURNAL_STREAM": "8:1"}
    proc = subprocess.Popen([TIEPDON, "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        messages: list[str] = []
        while not any("WATCHDOG=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
            proc.poll()
            assert proc.returncode is None, proc.stderr.read() if proc.stderr else ""
        assert "READY=1" in messages[0]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        sock.close()
    assert "<6>tiepdon: serving on http://127.0.0.1:" in err  # journald priority prefix


def test_cache_fetch_downloads_and_installs(tmp_path: Path) -> None:
    pub = Publisher("pub-a")
    # made now: a snapshot older than cache.max_age_days is refused at fetch (the daemon
    # would not use it)
    src = pub.build(tmp_path / "www", created=datetime.now(UTC))
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(src))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        env = {"TIEPDON_DATA_DIR": str(tmp_path / "data"),
               "TIEPDON_CACHE_TRUSTED_KEYS": f"pub-a:{public_key_text(pub.trusted['pub-a'])}",
               "TIEPDON_CACHE_URL": f"http://127.0.0.1:{httpd.server_address[1]}/"}
        p = run("cache", "fetch", env=env)
        assert p.returncode == 0, p.stderr
        assert (tmp_path / "data" / "cache" / "current" / "records.db").is_file()
        stranger = Publisher("stranger").build(tmp_path / "www2")
        (src / "manifest.json").write_bytes((stranger / "manifest.json").read_bytes())
        refused = run("cache", "fetch", env=env)
        assert refused.returncode == 1 and "unknown key" in refused.stderr
        assert not [x for x in (tmp_path / "data" / "cache").iterdir()
                    if x.name.startswith(".download")]
    finally:
        httpd.shutdown()
