"""``tiepdon qr parse|scan``: QR payloads as credential JSON, no registry lookup."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from terminal.cli.common import (
    EXIT_OK,
    Parser,
    file_lines,
    fingerprint_key,
    print_json,
    settings_of,
)


def register(sub: Any) -> None:
    qr = sub.add_parser("qr", help="QR payloads")
    qr_sub = qr.add_subparsers(dest="qr_command", required=True, parser_class=Parser)
    parse = qr_sub.add_parser("parse", help="parse a QR payload; prints a credential JSON")
    parse.add_argument("text")
    parse.add_argument("--config")
    parse.set_defaults(func=cmd_qr_parse)
    scan = qr_sub.add_parser("scan", help="decode the QR codes in image or video files")
    scan.add_argument("files", nargs="+")
    scan.add_argument("--config")
    scan.set_defaults(func=cmd_qr_scan)


def cmd_qr_parse(args: argparse.Namespace) -> int:
    from terminal.flow.cardimage import qr_credential
    from verify.qr import parse_qr

    key = fingerprint_key(settings_of(args))
    print_json(qr_credential(parse_qr(args.text), args.text, key).to_json())
    return EXIT_OK


def cmd_qr_scan(args: argparse.Namespace) -> int:
    """Decode every QR in image or video files with the whole camera chain (hard passes
    included); one JSON line a file."""
    from readers.devices.camera import scan_file
    from terminal.flow.cardimage import qr_credential
    from verify.errors import InputFormatError
    from verify.qr import parse_qr

    key = fingerprint_key(settings_of(args))

    def read(name: str) -> dict[str, Any]:
        result = scan_file(Path(name))
        payloads: list[dict[str, Any]] = []
        for text in result.payloads:
            try:
                payloads.append(qr_credential(parse_qr(text), text, key).to_json())
            except InputFormatError as e:
                payloads.append({"error": e.code, "detail": e.detail})
        line: dict[str, Any] = {"file": name, "payloads": payloads}
        if result.error:
            line["error"] = result.error
        return line

    return file_lines(args.files, read, "payloads")
