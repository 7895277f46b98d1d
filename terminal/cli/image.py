"""``tiepdon image read FILE…``: the card in a picture, as credential JSON (issue 24).

One JSON line a file: ``{"file", "credentials": [...], "error"?}``; each credential has its
``kind`` (``cccd_text``, ``cccd_mrz``, ``bhyt_text``, or a QR kind) and ``read_from`` (``qr``,
``text``, ``mrz``). No registry lookup.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from terminal.cli.common import Parser, file_lines, fingerprint_key, now, settings_of


def register(sub: Any) -> None:
    image = sub.add_parser("image", help="card images (QR, printed fields, MRZ)")
    image_sub = image.add_subparsers(dest="image_command", required=True, parser_class=Parser)
    read = image_sub.add_parser("read", help="read the cards in image or video files")
    read.add_argument("files", nargs="+")
    read.add_argument("--config")
    read.set_defaults(func=cmd_image_read)


def cmd_image_read(args: argparse.Namespace) -> int:
    from terminal.flow.cardimage import CardImageReader
    from terminal.resources import load_tables
    from verify.model import VN_TZ

    settings = settings_of(args)
    reader = CardImageReader(load_tables(settings.data.tables_dir))
    today = now().astimezone(VN_TZ).date()
    key = fingerprint_key(settings)

    def read(name: str) -> dict[str, Any]:
        result = reader.read_file(Path(name), today=today, fingerprint_key=key)
        line: dict[str, Any] = {"file": name,
                                "credentials": [c.to_json() for c in result.credentials]}
        if result.error:
            line["error"] = result.error
        return line

    try:
        return file_lines(args.files, read, "credentials")
    finally:
        reader.close()
