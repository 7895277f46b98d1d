"""The long-running commands: ``tiepdon serve`` (the production daemon the systemd unit
runs), ``tiepdon demo`` (the whole terminal on loopback) and ``tiepdon registry-sim``."""

from __future__ import annotations

import argparse
import logging
import socket
from datetime import date, datetime
from typing import Any

from terminal.cli.common import EXIT_OK, CliError, clock, settings_of
from terminal.settings import refused

log = logging.getLogger("tiepdon")


def register_daemons(sub: Any) -> None:
    """``demo`` and ``serve`` (listed first in the help)."""
    demo = sub.add_parser("demo", help="the whole terminal on loopback with a simulator")
    demo.add_argument("--port", type=int, default=8765)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--latency-ms", type=float, default=300.0,
                      help="simulated registry latency (default 300)")
    demo.add_argument("--his-origin", action="append", default=[], metavar="URL",
                      help="a web page's origin (http://his.example:8080) allowed to open the "
                           "HIS feed from a browser; repeat for more")
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="the production daemon")
    serve.add_argument("--config", help="TOML settings file (default: $TIEPDON_CONFIG)")
    serve.set_defaults(func=cmd_serve)


def register_sim(sub: Any) -> None:
    """``registry-sim`` (listed last in the help)."""
    sim = sub.add_parser("registry-sim", help="a server speaking the registry gateway protocol")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=_port, default=8766)
    sim.add_argument("--db", default=":memory:", help="SQLite file (created and seeded)")
    sim.add_argument("--latency-ms", type=float, default=0.0)
    sim.add_argument("--failure-rate", type=_fraction, default=0.0)
    sim.add_argument("--seed", type=int, default=None, help="random seed for failures")
    sim.add_argument("--today", type=_iso_day, help="fixed day for validity (YYYY-MM-DD)")
    sim.set_defaults(func=cmd_registry_sim)


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(text)
    return value


_port.__name__ = "port (0-65535)"  # argparse names the type in its one-line error


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _iso_day(text: str) -> str:
    date.fromisoformat(text)
    return text


def cmd_serve(args: argparse.Namespace) -> int:
    from terminal.app import build_services, create_app, with_feeds
    from terminal.server import serve_foreground

    settings = settings_of(args)
    settings.check_online()
    settings.check_desk()
    settings.check_listeners()
    metrics_token = settings.metrics_token()
    host = settings.http.host
    socks: list[socket.socket] = []
    for port in (settings.http.port, settings.his.hn212_port):
        if port or not socks:
            socks.append(_listen(host, port))
    feed_port = socks[-1].getsockname()[1] if len(socks) > 1 else 0
    metrics_port = 0
    address = settings.metrics.address()
    if address is not None:
        socks.append(_listen(*address))
        metrics_port = socks[-1].getsockname()[1]
    try:
        services = build_services(settings, now=clock(serving=True))
    except OSError as e:
        raise refused("data", "dir", str(e.strerror)) from None
    log.info("serving on http://%s:%d/", host, socks[0].getsockname()[1])
    log.info("desk %s", settings.audit.desk)  # its own line: scripts read the first one
    if feed_port:
        log.info("HN212-compatible HIS feed on http://%s:%d/socket.io/", host, feed_port)
    if address is not None:
        log.info("metrics for Prometheus on http://%s:%d/metrics (bearer token)", address[0],
                 metrics_port)
    serve_foreground(with_feeds(create_app(settings, services), services, feed_port,
                                metrics_port=metrics_port, metrics_token=metrics_token),
                     *socks)
    return EXIT_OK


def _listen(host: str, port: int) -> socket.socket:
    from terminal.server import bind

    try:
        return bind(host, port)
    except OSError as e:
        raise CliError(f"cannot listen on {host}:{port}: {e.strerror}") from None


def cmd_demo(args: argparse.Namespace) -> int:
    from terminal.demo import run_demo

    try:
        run_demo(host=args.host, port=args.port, latency_ms=args.latency_ms,
                 his_origins=args.his_origin)
    except OSError as e:
        raise CliError(f"cannot start the demo on {args.host}:{args.port}: {e.strerror} "
                       "(try --port)") from None
    return EXIT_OK


def cmd_registry_sim(args: argparse.Namespace) -> int:
    from terminal.server import bind, serve_foreground
    from verify.model import VN_TZ
    from verify.simulator.registry_sim import SimControl, create_sim_app, open_registry

    fixed = date.fromisoformat(args.today) if args.today else None
    seed_day = fixed or datetime.now(VN_TZ).date()
    try:
        sock = bind(args.host, args.port)
    except OSError as e:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {e.strerror}") from None
    try:
        conn = open_registry(args.db, today=seed_day)
    except OSError as e:  # a folder that does not exist, a file that is not SQLite
        raise CliError(f"cannot open the simulator's database: {e}") from None
    control = SimControl(latency_ms=args.latency_ms, failure_rate=args.failure_rate)
    app = create_sim_app(conn, control, today=(lambda: fixed) if fixed else None, seed=args.seed)
    print(f"http://{args.host}:{sock.getsockname()[1]}", flush=True)
    serve_foreground(app, sock)
    return EXIT_OK
