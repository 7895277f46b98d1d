"""``tiepdon audit verify|export|find``: the append-only audit log, read with the daemon's
key (so run as the tiepdon user) — or, with ``--journal-dir`` / ``--journal-file``, the
central copy: the sealed records every desk writes to its journal, as the facility's log
server collected them (``journalctl --directory D -o json``, or that output saved to a file).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terminal.cli.common import (
    EXIT_NEGATIVE,
    EXIT_OK,
    CliError,
    Parser,
    cli_key,
    print_json,
    print_line,
    settings_of,
)

if TYPE_CHECKING:
    from terminal.audit import AuditLog


def register(sub: Any) -> None:
    audit = sub.add_parser("audit", help="the append-only audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, parser_class=Parser)
    verify = audit_sub.add_parser("verify", help="check the hash chain (this desk's, or one "
                                                 "desk's in the central journal)")
    _central(verify)
    verify.add_argument("--key", help="central copy: the desk's terminal key file, to check "
                                      "every MAC too (without it: links and sequence only)")
    verify.add_argument("--config")
    verify.set_defaults(func=cmd_audit_verify)
    export = audit_sub.add_parser("export", help="records as journald/syslog fields")
    export.add_argument("--config")
    export.set_defaults(func=cmd_audit_export)
    find = audit_sub.add_parser("find", help="lookups of one person (by keyed fingerprint)")
    who = find.add_mutually_exclusive_group(required=True)
    who.add_argument("--id", help="12-digit CCCD number")
    who.add_argument("--card", help="BHYT card code")
    _central(find)
    find.add_argument("--subject-key", help="the facility's subject key file (default: "
                                            "audit.subject_key_file or its credential)")
    find.add_argument("--key", help="central copy: a desk's terminal key file, for records "
                                    "made without a facility subject key")
    find.add_argument("--config")
    find.set_defaults(func=cmd_audit_find)


def _central(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--journal-dir", help="journal files collected centrally "
                                              "(systemd-journal-remote); read with journalctl")
    source.add_argument("--journal-file", help="`journalctl -o json` output saved to a file")
    parser.add_argument("--desk", help="the desk (audit.desk) whose records to read")


def _journal_lines(args: argparse.Namespace) -> Iterator[str]:
    """``journalctl --directory D -o json`` line by line, or a saved export file."""
    if args.journal_file:
        try:
            with Path(args.journal_file).open(encoding="utf-8", errors="replace") as f:
                yield from f
        except OSError as e:
            raise CliError(f"cannot read {args.journal_file}: {e.strerror}") from None
        return
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        raise CliError("journalctl not found: pass `journalctl -o json` output with "
                       "--journal-file")
    if not Path(args.journal_dir).is_dir():
        raise CliError(f"not a folder: {args.journal_dir}")
    argv = [journalctl, f"--directory={args.journal_dir}", "-o", "json",
            "--output-fields=MESSAGE", "--no-pager"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,  # noqa: S603
                          text=True, encoding="utf-8", errors="replace") as proc:
        assert proc.stdout is not None
        yield from proc.stdout
    if proc.returncode:
        raise CliError(f"journalctl --directory {args.journal_dir} failed "
                       f"(exit {proc.returncode})")


def _terminal_key_file(path: str) -> bytes:
    """A desk's terminal key named on the command line, byte for byte as its daemon reads it
    (``head -c 32 /dev/urandom``: raw bytes, so a newline or a space at either end is key)."""
    from terminal.settings import SettingsError, check_terminal_key

    try:
        return check_terminal_key(Path(path).read_bytes(), path)
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror}") from None
    except SettingsError as e:
        raise CliError(str(e)) from None


def _subject_key_file(path: str) -> bytes:
    """The facility's subject key named on the command line, as the daemon reads it."""
    from terminal.settings import read_subject_key

    try:
        return read_subject_key(Path(path))
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        raise CliError(f"{path}: not a subject key ({e})") from None


def _audit_log(args: argparse.Namespace) -> tuple[AuditLog, bytes]:
    """The log and the terminal key it was written with."""
    from terminal.audit import AuditLog
    from terminal.keys import derive_key
    from terminal.services import audit_dir

    settings = settings_of(args)
    key = cli_key(settings, required=True)
    return AuditLog(audit_dir(settings), derive_key(key, "audit")), key


def cmd_audit_verify(args: argparse.Namespace) -> int:
    if args.journal_dir or args.journal_file:
        return _verify_central(args)
    audit, _ = _audit_log(args)
    report = audit.verify()
    print_json({"records": report.records, "first_seq": report.first_seq,
                "last_seq": report.last_seq, "ok": report.ok,
                "problems": list(report.problems)})
    if not report.ok:
        print(f"tiepdon: audit log tampered: {report.problems[0]}", file=sys.stderr)
        return EXIT_NEGATIVE
    return EXIT_OK


def _verify_central(args: argparse.Namespace) -> int:
    """One desk's chain in the central copy: links and sequence always, MACs with ``--key``."""
    from terminal.keys import derive_key
    from verify.audit import records_from_journal, verify_records

    if not args.desk:
        raise CliError("--desk is required with --journal-dir / --journal-file (one chain a "
                       "desk)")
    key = derive_key(_terminal_key_file(args.key), "audit") if args.key else None
    records = records_from_journal(_journal_lines(args), args.desk)
    report = verify_records(key, records)
    print_json({"desk": args.desk, "records": report.records, "first_seq": report.first_seq,
                "last_seq": report.last_seq, "ok": report.ok and bool(records),
                "macs_checked": key is not None, "problems": list(report.problems)})
    if not records:
        print(f"tiepdon: no audit records of desk {args.desk} in the journal",
              file=sys.stderr)
        return EXIT_NEGATIVE
    if not report.ok:
        print(f"tiepdon: audit chain of desk {args.desk} broken: {report.problems[0]}",
              file=sys.stderr)
        return EXIT_NEGATIVE
    return EXIT_OK


def cmd_audit_export(args: argparse.Namespace) -> int:
    audit, _ = _audit_log(args)
    for record in audit.export():
        print_line(record)
    return EXIT_OK


def _subject_fingerprints(args: argparse.Namespace, terminal_key: bytes | None) -> set[str]:
    """The person's fingerprint under every key that may have made it: the facility's
    subject key, and a terminal's own key (records made before the facility key)."""
    from terminal.keys import derive_key
    from verify.credentials import manual_credential
    from verify.fingerprint import fingerprint

    # Read as the desk read it (one rule: manual_credential): `gd401…`, spaces, dashes and a
    # 20-character code name the same person; a malformed number is said, not searched.
    person = manual_credential(card_code=args.card, id_number=args.id, full_name=None,
                               date_of_birth=None)
    text = "subject:" + str(person.id_number or person.card_code)
    subject = (_subject_key_file(args.subject_key) if args.subject_key
               else settings_of(args).subject_key())
    keys = [derive_key(subject, "subject")] if subject else []
    if terminal_key is not None:
        keys.append(derive_key(terminal_key, "fingerprint"))
    if not keys:
        raise CliError("no key to fingerprint with: --subject-key (the facility's) or --key "
                       "(a desk's terminal key)")
    return {fingerprint(k, text) for k in keys}


def cmd_audit_find(args: argparse.Namespace) -> int:
    """Lookups of one person: the auditor types the ID; only its fingerprint is compared."""
    if args.journal_dir or args.journal_file:
        from verify.audit import records_from_journal

        targets = _subject_fingerprints(args, _terminal_key_file(args.key) if args.key else None)
        hits = [r for r in records_from_journal(_journal_lines(args), args.desk)
                if r.get("subject") in targets]
        hits.sort(key=lambda r: (str(r.get("at")), str(r.get("desk")), int(r["seq"])))
    else:
        audit, key = _audit_log(args)
        targets = _subject_fingerprints(args, key)
        hits = [r for r in audit.export() if r.get("TIEPDON_SUBJECT") in targets]
    for record in hits:
        print_line(record)
    if not hits:
        print("tiepdon: no audit records of this person", file=sys.stderr)
    return EXIT_OK if hits else EXIT_NEGATIVE
