"""``tiepdon card read``: read a chip CCCD on a PC/SC reader and print the chip JSON.

:func:`cmd_card_read` is the whole command: the access key, the read and the credential it
prints; :func:`card_read_exit` turns the chip's verdict into the exit code (0 only when
verified).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terminal.cli.common import (
    EXIT_NEGATIVE,
    EXIT_OK,
    CliError,
    Parser,
    now,
    print_json,
    settings_of,
)

if TYPE_CHECKING:
    from verify.evidence import ChipEvidence


def register(sub: Any) -> None:
    card = sub.add_parser("card", help="chip CCCD")
    card_sub = card.add_subparsers(dest="card_command", required=True, parser_class=Parser)
    read = card_sub.add_parser("read", help="read a chip CCCD; prints a chip JSON")
    read.add_argument("--reader", help="PC/SC reader name (default: first with a card)")
    key = read.add_mutually_exclusive_group()
    key.add_argument("--qr", help="the card's CCCD QR text (ID, DOB and issue date)")
    key.add_argument("--doc", help="document number (last 9 ID digits) or the 12-digit ID")
    key.add_argument("--can", help="card access number: the last 6 digits of the ID (PACE)")
    read.add_argument("--dob", help="date of birth YYMMDD (with --doc)")
    read.add_argument("--expiry", help="date of expiry YYMMDD (with --doc)")
    read.add_argument("--csca", help="folder of trusted CSCA certificates")
    read.add_argument("--photo-out", help="write the face image to this file")
    read.add_argument("--config")
    read.set_defaults(func=cmd_card_read)
    probe = card_sub.add_parser(
        "probe", help="an interop report on the reader and card, without personal data")
    probe.add_argument("--reader", help="PC/SC reader name (default: first with a card)")
    pkey = probe.add_mutually_exclusive_group()
    pkey.add_argument("--qr", help="the card's CCCD QR text (ID, DOB and issue date)")
    pkey.add_argument("--can", help="card access number: the last 6 digits of the ID (PACE)")
    probe.add_argument("--csca", help="folder of trusted CSCA certificates")
    probe.add_argument("--config")
    probe.set_defaults(func=cmd_card_probe)


def cmd_card_read(args: argparse.Namespace) -> int:
    """Read a chip CCCD on a PC/SC reader; prints the chip JSON (no registry lookup)."""
    from terminal.chip.source import PcscSource, load_csca_dir, read_from_source
    from verify.credentials import ChipKeyInput, chip_credential, chip_keys
    from verify.model import VN_TZ

    if not (args.can or args.qr or (args.doc and args.dob and args.expiry)):
        raise CliError("give the access key: --qr TEXT, --can CAN, or --doc DOC9 --dob YYMMDD "
                       "--expiry YYMMDD")
    keys = chip_keys(ChipKeyInput(qr=args.qr, can=args.can, document_number=args.doc,
                                  date_of_birth=args.dob, date_of_expiry=args.expiry))
    settings = settings_of(args)
    try:
        trust = load_csca_dir(args.csca or settings.chip.csca_dir)
    except (OSError, ValueError) as e:
        raise CliError(f"cannot load CSCA certificates: {type(e).__name__}") from None
    at = now()  # TIEPDON_CLOCK too: the verdict's dates and the benefit's "today" agree
    result = read_from_source(PcscSource(args.reader or settings.chip.reader or None), keys,
                              extended_mode=settings.chip.extended_length,
                              retries=settings.chip.retries, trust=trust, now=at,
                              return_seconds=settings.chip.card_return_seconds,
                              on_wait=_tell_place_back)
    credential = chip_credential(result.identity, read=result, fingerprint="",
                                 today=at.astimezone(VN_TZ).date())
    out = credential.to_json()
    out.pop("raw_fingerprint", None)
    if args.photo_out and result.photo is not None:
        Path(args.photo_out).write_bytes(result.photo.image)
    assert credential.chip is not None
    print_json(out)
    return card_read_exit(credential.chip)


def cmd_card_probe(args: argparse.Namespace) -> int:
    """Print what an interop report needs (terminal/chip/probe.py); no names, numbers, MRZ
    or photo. With no key only the reader, the ATR and EF.CardAccess are reported."""
    from terminal.chip.probe import probe
    from terminal.chip.source import PcscSource, load_csca_dir
    from verify.credentials import ChipKeyInput, chip_keys

    keys = (chip_keys(ChipKeyInput(qr=args.qr, can=args.can)) if (args.qr or args.can)
            else [])
    settings = settings_of(args)
    try:
        trust = load_csca_dir(args.csca or settings.chip.csca_dir)
    except (OSError, ValueError) as e:
        raise CliError(f"cannot load CSCA certificates: {type(e).__name__}") from None
    report = probe(PcscSource(args.reader or settings.chip.reader or None), keys, trust=trust,
                   now=now(), extended_mode=settings.chip.extended_length)
    print_json(report)
    if report.get("error") in READER_MISSING:
        # No reader or no card is the set-up's fault, not the card's: said, exit 2.
        raise CliError(READER_MISSING[str(report["error"])])
    return EXIT_NEGATIVE if "error" in report else EXIT_OK


READER_MISSING = {"chip_no_reader": "no chip reader found (check the USB cable and pcscd)",
                  "chip_no_card": "no card on the reader"}


def card_read_exit(evidence: ChipEvidence) -> int:
    """The daemon's verdict (verify/evidence.py) decides: exit 0 only when ``verified``; a
    possible copy, an unanchored signature or a check not done is exit 1."""
    from verify.evidence import Verdict

    return EXIT_OK if evidence.verdict is Verdict.VERIFIED else EXIT_NEGATIVE


def _tell_place_back() -> None:
    print("Đặt lại thẻ lên đầu đọc và giữ yên… (place the card back on the reader)",
          file=sys.stderr, flush=True)
