"""The ``tiepdon`` command line (CONTRACT.md "Command line"), one module per command group.

Data goes to stdout as JSON; human messages to stderr. Exit 0 on success, 1 on a decided
answer that is not "eligible" (so a script never admits a patient that needs review), 2 on bad
input or an error — always one line, never a traceback. :func:`main` is the console script
(``terminal.cli:main``); each group module registers its own subcommands and handlers, and
``common`` holds what they share.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from terminal.cli import audit, cache, card, check, image, qr, serve, user
from terminal.cli.common import EXIT_ERROR, EXIT_OK, CliError, Parser, setup_logging
from terminal.settings import SettingsError

log = logging.getLogger("tiepdon")
DAEMONS = frozenset({"serve", "demo", "registry-sim"})


def build_parser() -> Parser:
    p = Parser(prog="tiepdon", description="Tiếp Đón — reception verification terminal")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    serve.register_daemons(sub)  # the order of the help's list
    for group in (qr, image, check, card, cache, audit, user):
        group.register(sub)
    serve.register_sim(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from readers.errors import ReaderError
    from verify.errors import VerifyError

    args = build_parser().parse_args(argv)
    setup_logging(args.verbose, args.command in DAEMONS)
    try:
        code: int = args.func(args)
        return code
    except (VerifyError, ReaderError) as e:
        print(f"tiepdon: {e.en} ({e.detail})" if e.detail != e.en else f"tiepdon: {e.en}",
              file=sys.stderr)
    except (SettingsError, CliError) as e:
        print(f"tiepdon: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        return EXIT_OK
    except OSError as e:  # a file named on the command line or in the settings
        where = f": {e.filename}" if e.filename else ""
        print(f"tiepdon: {e.strerror or type(e).__name__}{where}", file=sys.stderr)
    except Exception as e:  # the promise: one line, never a traceback
        log.debug("unexpected error", exc_info=True)
        print(f"tiepdon: internal error ({type(e).__name__}); run with -v for details",
              file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
