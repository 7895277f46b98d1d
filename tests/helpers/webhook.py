"""The HIS's webhook endpoint: a real HTTP receiver on loopback that answers, fails, refuses or
hangs on command and records every post with whether its signature verified."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from verify import webhook

SECRET = "webhook-secret-for-tests-0123"
QRS = [f"0010880{n:05d}||Nguyễn Văn Thử|01012000|Nam|Hà Nội|01012022" for n in range(40)]


@dataclass
class Receiver:
    """The HIS endpoint. ``mode``: ok | fail (500) | reject (400) | hang (reads the body, never
    answers). Posts are recorded with whether their signature verified."""

    mode: str = "ok"
    posts: list[dict[str, Any]] = field(default_factory=list)
    got: threading.Condition = field(default_factory=threading.Condition)
    server: http.server.ThreadingHTTPServer | None = None
    port: int = 0
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/his/checkin"

    def start(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                stamp = int(self.headers[webhook.TIMESTAMP_HEADER])
                post = {"key": self.headers[webhook.IDEMPOTENCY_HEADER],
                        "signed": webhook.valid_signature(
                            SECRET.encode(), stamp, data, self.headers[webhook.SIGNATURE_HEADER]),
                        "body": json.loads(data), "mode": receiver.mode}
                with receiver.got:
                    receiver.posts.append(post)
                    receiver.got.notify_all()
                if receiver.mode == "hang":
                    receiver.release.wait(60)
                    return
                status = {"ok": 200, "fail": 500, "reject": 400, "missing": 404}[receiver.mode]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.release.set()
            self.server.shutdown()
            self.server.server_close()
            self.server = None
            self.release = threading.Event()

    def delivered(self) -> dict[str, dict[str, Any]]:
        """Unique deliveries by idempotency key, as an HIS that honours the key keeps them."""
        return {p["key"]: p for p in self.posts if p["mode"] == "ok"}

    def wait(self, check: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with self.got:
            while not check():
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.posts)} posts"
                self.got.wait(min(left, 0.2))
