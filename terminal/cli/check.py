"""``tiepdon check``: one eligibility decision (registry, else the offline snapshot)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from terminal.cli.common import (
    EXIT_NEGATIVE,
    EXIT_OK,
    cli_key,
    clock,
    daemon_key,
    print_json,
    settings_of,
)


def register(sub: Any) -> None:
    check = sub.add_parser("check", help="one eligibility decision; prints an eligibility JSON")
    what = check.add_mutually_exclusive_group(required=True)
    what.add_argument("--qr", help="QR payload text")
    what.add_argument("--card", help="BHYT card code (15 chars) or BHXH number (10 digits)")
    what.add_argument("--id", help="12-digit CCCD number")
    check.add_argument("--name")
    check.add_argument("--dob", help="dd/mm/yyyy, yyyy or yyyy-mm-dd")
    check.add_argument("--config")
    check.add_argument("--offline", action="store_true", help="do not call the registry")
    check.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    from terminal.services import build_services
    from verify.tables import Status

    settings = settings_of(args)
    settings.require("facility", "code")
    if not args.offline:
        settings.check_online()
    # With the daemon's key (run as its user) the daemon's journal of recent answers is read
    # too, never written: the registry down, `check` answers as the desk does.
    key = daemon_key(settings)
    services = build_services(settings, online=not args.offline, key=key or cli_key(settings),
                              now=clock(), read_journal=key is not None)
    verifier = services.verifier
    if services.offline is not None:
        services.offline.load()

    async def run() -> dict[str, Any]:
        try:
            credential = verifier.credential_from_input(
                qr=args.qr, card_code=args.card, id_number=args.id, full_name=args.name,
                date_of_birth=args.dob)
            return (await verifier.verify(credential)).to_json()
        finally:
            if services.registry is not None:
                await services.registry.aclose()

    result = asyncio.run(run())
    print_json(result)
    return EXIT_OK if result["status"] == Status.ELIGIBLE.value else EXIT_NEGATIVE
