"""``tiepdon audit verify|export|find``: the append-only audit log, read with the daemon's
key (so run as the tiepdon user)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from terminal.cli.common import (
    EXIT_NEGATIVE,
    EXIT_OK,
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
    for name, func, text in (("verify", cmd_audit_verify, "check the hash chain"),
                             ("export", cmd_audit_export, "records as journald/syslog fields")):
        sp = audit_sub.add_parser(name, help=text)
        sp.add_argument("--config")
        sp.set_defaults(func=func)
    find = audit_sub.add_parser("find", help="lookups of one person (by keyed fingerprint)")
    who = find.add_mutually_exclusive_group(required=True)
    who.add_argument("--id", help="12-digit CCCD number")
    who.add_argument("--card", help="BHYT card code")
    find.add_argument("--config")
    find.set_defaults(func=cmd_audit_find)


def _audit_log(args: argparse.Namespace) -> tuple[AuditLog, bytes]:
    """The log and the terminal key it was written with."""
    from terminal.audit import AuditLog
    from terminal.keys import derive_key
    from terminal.services import audit_dir

    settings = settings_of(args)
    key = cli_key(settings, required=True)
    return AuditLog(audit_dir(settings), derive_key(key, "audit")), key


def cmd_audit_verify(args: argparse.Namespace) -> int:
    audit, _ = _audit_log(args)
    report = audit.verify()
    print_json({"records": report.records, "first_seq": report.first_seq,
                "last_seq": report.last_seq, "ok": report.ok,
                "problems": list(report.problems)})
    if not report.ok:
        print(f"tiepdon: audit log tampered: {report.problems[0]}", file=sys.stderr)
        return EXIT_NEGATIVE
    return EXIT_OK


def cmd_audit_export(args: argparse.Namespace) -> int:
    audit, _ = _audit_log(args)
    for record in audit.export():
        print_line(record)
    return EXIT_OK


def cmd_audit_find(args: argparse.Namespace) -> int:
    """Lookups of one person: the auditor types the ID; only its fingerprint is compared."""
    from terminal.keys import derive_key
    from verify.fingerprint import fingerprint

    audit, key = _audit_log(args)
    target = fingerprint(derive_key(key, "fingerprint"), "subject:" + (args.id or args.card))
    hits = [r for r in audit.export() if r.get("TIEPDON_SUBJECT") == target]
    for record in hits:
        print_line(record)
    return EXIT_OK if hits else EXIT_NEGATIVE
