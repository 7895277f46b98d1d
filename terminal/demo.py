"""``tiepdon demo``: the whole terminal on loopback with embedded defaults.

Starts the registry simulator (in-memory SQLite, realistic latency) on a free loopback port,
points a terminal at it with a throw-away data folder, and serves the staff page.
"""

from __future__ import annotations

import csv
import io
import secrets
import shutil
import signal
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from readers.doubles.vcard import DemoSource, demo_card
from readers.emrtd.pa import load_trust
from terminal.app import build_services, create_app, with_feeds
from terminal.server import bind, serve_foreground, start_background
from terminal.settings import Settings, env_name, parse_settings
from verify.adapters.cache import build, install
from verify.model import VN_TZ
from verify.simulator.registry_sim import (
    DEMO_FACILITY,
    DEMO_OFFICER_ID,
    DEMO_OFFICER_NAME,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    SimControl,
    create_sim_app,
    open_registry,
    seed_records,
)
from verify.snapshot import CSV_COLUMNS, public_key_text, records_from_csv

EXAMPLES = (
    "001098012345||NGUYỄN VĂN B|01012000|Nữ|Hà Nội|01012022",
    "0111077012|4e677579e1bb856e205469e1babf6e20c490e1baa174|29/03/1988|1|-|01 - C54|"
    "01/07/2023|-|31/07/2023|01050111077012|-|4| 01/10/2027|4641c59ff02659c3-1202|4|"
    "5175e1baad6e2043e1baa775204769e1baa5792c205468c3a06e68207068e1bb912048c3a0204ee1bb9969|$",
)


DEMO_DESK = "demo-quay-1"


def demo_config(registry_url: str, data_dir: Path) -> dict[str, dict[str, Any]]:
    """Settings for a terminal using the simulator's training account and officer."""
    return {
        "facility": {"code": DEMO_FACILITY, "name": "Trạm Y tế phường Dịch Vọng (demo)"},
        "registry": {"url": registry_url, "username": DEMO_USERNAME, "password": DEMO_PASSWORD,
                     "timeout_seconds": 5},
        "officer": {"name": DEMO_OFFICER_NAME, "id": DEMO_OFFICER_ID},
        "data": {"dir": str(data_dir)},
        "audit": {"desk": DEMO_DESK},
    }


def demo_environment(registry_url: str, data_dir: Path) -> dict[str, str]:
    """The same settings as ``TIEPDON_<SECTION>_<KEY>`` variables (tests, benchmarks)."""
    return {env_name(section, key): str(value)
            for section, keys in demo_config(registry_url, data_dir).items()
            for key, value in keys.items()}


def demo_settings(registry_url: str, data_dir: Path, host: str, port: int,
                  cache: dict[str, Any] | None = None, camera: str = "",
                  hn212_port: int = 0, his_origins: list[str] | None = None) -> Settings:
    doc = demo_config(registry_url, data_dir)
    doc["http"] = {"host": host, "port": port}
    if hn212_port:
        doc["his"] = {"hn212_port": hn212_port, "hn212_origins": list(his_origins or [])}
    if cache:
        doc["cache"] = cache
    if camera:
        doc["camera"] = {"source": camera}
    return parse_settings(doc, environ={})


def demo_snapshot(data_dir: Path, today: date, *, version: int = 1) -> dict[str, Any]:
    """Keys, a snapshot of the simulator's people, installed: the demo works offline too.
    Returns the ``[cache]`` settings that trust it."""
    key = Ed25519PrivateKey.generate()
    reading = secrets.token_bytes(32)
    reading_file = data_dir / "reading.key"
    reading_file.write_text(reading.hex())
    reading_file.chmod(0o600)
    created = datetime.now(UTC)
    build_dir = data_dir / "snapshot-build"
    records = list(records_from_csv(_csv_lines(seed_records(today))))
    build(records, build_dir, signing_key=key, key_id="demo", reading_key=reading,
          version=version, created=created, expires=created + timedelta(days=7))
    trusted = {"demo": key.public_key()}
    install(build_dir, data_dir / "cache", trusted)
    return {"trusted_keys": [f"demo:{public_key_text(key.public_key())}"],
            "reading_key_file": str(reading_file)}


def demo_clip(data_dir: Path) -> Path:
    """A camera clip: a CCCD QR on a desk, then the BHYT QR on a VssID-style phone screen."""
    from readers.doubles.render import compose, render_qr, screen_code, write_clip

    blank = compose(render_qr("x")[:1, :1])
    path = data_dir / "demo-camera.avi"
    write_clip(path, [(blank, 15), (compose(render_qr(EXAMPLES[0], module_px=7)), 45),
                      (blank, 15), (compose(screen_code(EXAMPLES[1]), background=90), 45),
                      (blank, 15)])
    return path


def _csv_lines(rows: list[dict[str, Any]]) -> list[str]:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in CSV_COLUMNS})
    return buf.getvalue().splitlines(keepends=True)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def run_demo(*, host: str, port: int, latency_ms: float,
             his_origins: list[str] | None = None) -> None:
    # SIGTERM must clean up as Ctrl-C does: uvicorn re-raises the signal once it has shut
    # down, and the default action would kill the process before the temporary folder goes.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sock = bind(host, port)  # first, so a taken port fails before anything starts
    feed_sock = bind(host, 0)  # the HN212-compatible HIS feed, on any free port
    today = datetime.now(VN_TZ).date()
    sim = start_background(create_sim_app(open_registry(":memory:", today=today),
                                          SimControl(latency_ms=latency_ms)))
    data_dir = Path(tempfile.mkdtemp(prefix="tiepdon-demo-"))
    try:
        cache = demo_snapshot(data_dir, today)
        clip = demo_clip(data_dir)
        feed_port = feed_sock.getsockname()[1]
        settings = demo_settings(sim.url, data_dir, host, sock.getsockname()[1], cache,
                                 camera=str(clip), hn212_port=feed_port,
                                 his_origins=his_origins)
        card, pki = demo_card()
        services = build_services(settings, chip_source=DemoSource(card),
                                  trust=load_trust([pki.csca_pem()]))
        services.demo_clip = clip
        app = with_feeds(create_app(settings, services), services, feed_port)
        shown = f"[{host}]" if ":" in host else host
        print(f"http://{shown}:{settings.http.port}/", flush=True)
        print(f"Tiếp Đón demo: staff page at http://{shown}:{settings.http.port}/ "
              f"(registry simulator at {sim.url}, latency {latency_ms:.0f} ms). "
              "Paste one of these QR payloads:", file=sys.stderr)
        for example in EXAMPLES:
            print(f"  {example}", file=sys.stderr)
        print("To see offline answers (journal, then the signed demo snapshot), break the "
              f"registry: curl -X POST {sim.url}/sim/control -H 'content-type: application/json'"
              " -d '{\"fault\": \"hang\"}'  (and '{\"fault\": \"none\"}' to mend it)",
              file=sys.stderr)
        print(f"HIS feed (HN212-compatible Socket.IO, event /event): http://{shown}:{feed_port}"
              + (f" — pages allowed from {', '.join(his_origins)}" if his_origins else ""),
              file=sys.stderr)
        serve_foreground(app, sock, feed_sock)
    finally:
        sim.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
