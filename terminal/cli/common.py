"""What every ``tiepdon`` command shares: exit codes, the one-line error, JSON output,
logging, loading the settings, the clock and the fingerprint key.

The command modules of this package import it; nothing outside the CLI does.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from terminal.settings import Settings, clock_start, load_settings

EXIT_OK, EXIT_NEGATIVE, EXIT_ERROR = 0, 1, 2


class CliError(Exception):
    """A one-line error for stderr, exit 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own errors: one line, exit 2
        if message.startswith("unrecognized arguments"):
            # argparse repeats them: an unquoted name ("--name Nguyễn Tiến Đạt") would end up
            # in a log. Never echoed.
            message = "unrecognized arguments (not repeated here; quote a value with spaces)"
        self.exit(EXIT_ERROR, f"tiepdon: {message}\n")


def print_json(data: Any) -> None:
    """One document on stdout, indented (``qr parse``, ``check``, ``card read``, …)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def print_line(data: Any) -> None:
    """One JSON line on stdout (``qr scan``, ``audit export``: one line a file or record)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


class JournalFormatter(logging.Formatter):
    """Under systemd (``$JOURNAL_STREAM``): a ``<N>`` syslog priority prefix that journald
    turns into PRIORITY=, no timestamp (journald adds it), ``logger: message`` with
    key=value pairs inside the message."""

    PRIORITY: ClassVar[dict[int, int]] = {logging.DEBUG: 7, logging.INFO: 6,
                                          logging.WARNING: 4, logging.ERROR: 3,
                                          logging.CRITICAL: 2}

    def format(self, record: logging.LogRecord) -> str:
        return f"<{self.PRIORITY.get(record.levelno, 6)}>{record.name}: {record.getMessage()}"


def file_lines(names: list[str], read: Callable[[str], dict[str, Any]], empty: str) -> int:
    """``qr scan`` and ``image read``: one JSON line a file, in the order given, whatever one
    file does — a reader that fails on a file gives that file ``{"file", <empty>: [], "error"}``
    (the failure's class in the log, never the file's content) and the next file is read.
    EXIT_ERROR when any line has an error."""
    failed = False
    for name in names:
        try:
            line = read(name)
        except Exception as e:
            logging.getLogger("tiepdon.cli").warning("file not read: %s", type(e).__name__)
            line = {"file": name, empty: [], "error": f"could not be read ({type(e).__name__})"}
        failed = failed or "error" in line
        print_line(line)
    return EXIT_ERROR if failed else EXIT_OK


def setup_logging(verbose: bool, daemon: bool) -> None:
    """Daemons log their events; one-shot commands print only their one line unless -v."""
    level = logging.DEBUG if verbose else logging.INFO if daemon else logging.ERROR
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def settings_of(args: argparse.Namespace) -> Settings:
    """``--config FILE`` when the command has it and it was given, else ``$TIEPDON_CONFIG``."""
    return load_settings(Path(args.config) if getattr(args, "config", None) else None)


def clock(*, serving: bool = False) -> Callable[[], datetime] | None:
    """The terminal's "now" under ``TIEPDON_CLOCK`` (it starts there and runs on), else None:
    the system clock."""
    start = clock_start(os.environ, serving=serving)
    if start is None:
        return None
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


def now() -> datetime:
    running = clock()
    return running() if running is not None else datetime.now(UTC)


def daemon_key(settings: Settings) -> bytes | None:
    """The daemon's terminal key when it exists and is readable here (run as the tiepdon
    user, or with TIEPDON_DATA_DIR), else None."""
    from terminal.offline import TERMINAL_KEY

    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    for folder in ([Path(creds)] if creds else []) + [settings.data.dir]:
        try:
            key = (folder / TERMINAL_KEY).read_bytes()
        except OSError:
            continue
        if len(key) >= 32:
            return key
    return None


def fingerprint_key(settings: Settings) -> bytes:
    """The key of the keyed fingerprints commands print for raw input (``raw_fingerprint``):
    the daemon's, when readable, so they match its audit; else a one-off key."""
    from terminal.keys import derive_key

    return derive_key(cli_key(settings), "fingerprint")


def cli_key(settings: Settings, *, required: bool = False) -> bytes:
    """The daemon's fingerprint key when it exists and is readable, else a one-off key.

    One-shot commands never create files in the data folder.
    """
    from terminal.flow.intake import ephemeral_key

    key = daemon_key(settings)
    if key is not None:
        return key
    if required:
        raise CliError("the terminal key is not readable here (run as the tiepdon user, or "
                       "set TIEPDON_DATA_DIR)")
    return ephemeral_key()
