"""The ``tiepdon`` command line (CONTRACT.md "Command line").

Data goes to stdout as JSON; human messages to stderr. Exit 0 on success, 1 on a decided
answer that is not "eligible" (so a script never admits a patient that needs review), 2 on bad
input or an error — always one line, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from terminal.settings import Settings, SettingsError, load_settings, require_online

if TYPE_CHECKING:
    from verify.evidence import ChipEvidence

log = logging.getLogger("tiepdon")
EXIT_OK, EXIT_NEGATIVE, EXIT_ERROR = 0, 1, 2
DAEMONS = frozenset({"serve", "demo", "registry-sim"})


class CliError(Exception):
    """A one-line error for stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own errors: one line, exit 2
        self.exit(EXIT_ERROR, f"tiepdon: {message}\n")


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


class JournalFormatter(logging.Formatter):
    """Under systemd (``$JOURNAL_STREAM``): a ``<N>`` syslog priority prefix that journald
    turns into PRIORITY=, no timestamp (journald adds it), ``logger: message`` with
    key=value pairs inside the message."""

    PRIORITY: ClassVar[dict[int, int]] = {logging.DEBUG: 7, logging.INFO: 6,
                                          logging.WARNING: 4, logging.ERROR: 3,
                                          logging.CRITICAL: 2}

    def format(self, record: logging.LogRecord) -> str:
        return f"<{self.PRIORITY.get(record.levelno, 6)}>{record.name}: {record.getMessage()}"


def _setup_logging(verbose: bool, daemon: bool) -> None:
    """Daemons log their events; one-shot commands print only their one line unless -v."""
    level = logging.DEBUG if verbose else logging.INFO if daemon else logging.ERROR
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(Path(args.config) if getattr(args, "config", None) else None)


CLOCK_ENV = "TIEPDON_CLOCK"


def _clock(*, serving: bool = False) -> Any:
    """``TIEPDON_CLOCK=2027-01-31T08:00:00+07:00``: the terminal's "now" starts there and runs
    on — for tests and benchmarks (a frozen or rolled-back snapshot seen from outside).
    Refused by a daemon under systemd: a desk's clock is the system's."""
    text = os.environ.get(CLOCK_ENV)
    if not text:
        return None
    if serving and os.environ.get("INVOCATION_ID"):
        raise SettingsError(f"{CLOCK_ENV} is for tests; refused by a daemon under systemd")
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        raise SettingsError(f"{CLOCK_ENV}: not an ISO date and time with an offset") from None
    if start.tzinfo is None:
        raise SettingsError(f"{CLOCK_ENV}: needs a UTC offset")
    import time as _time

    origin = _time.monotonic()
    return lambda: start + timedelta(seconds=_time.monotonic() - origin)


def _now() -> datetime:
    clock = _clock()
    return clock() if clock is not None else datetime.now(UTC)


def _cli_key(settings: Settings, *, required: bool = False) -> bytes:
    """The daemon's fingerprint key when it exists and is readable, else a one-off key.

    One-shot commands never create files in the data folder.
    """
    from terminal.flow.intake import ephemeral_key
    from terminal.offline import TERMINAL_KEY

    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    for folder in ([Path(creds)] if creds else []) + [settings.data.dir]:
        try:
            key = (folder / TERMINAL_KEY).read_bytes()
        except OSError:
            continue
        if len(key) >= 32:
            return key
    if required:
        raise CliError("the terminal key is not readable here (run as the tiepdon user, or "
                       "set TIEPDON_DATA_DIR)")
    return ephemeral_key()


# -- commands ------------------------------------------------------------------------------
def cmd_qr_parse(args: argparse.Namespace) -> int:
    from terminal.app import derive_key
    from verify.fingerprint import fingerprint
    from verify.qr import parse_qr

    settings = _settings(args)
    credential = parse_qr(args.text)
    out = credential.to_json()
    out["raw_fingerprint"] = fingerprint(derive_key(_cli_key(settings), "fingerprint"),
                                         args.text)
    _print_json(out)
    return EXIT_OK


def cmd_qr_scan(args: argparse.Namespace) -> int:
    """Decode every QR in image or video files with the whole camera chain (hard passes
    included); one JSON line a file."""
    from readers.devices.camera import scan_file
    from verify.errors import InputFormatError
    from verify.qr import parse_qr

    failed = False
    for name in args.files:
        result = scan_file(Path(name))
        payloads: list[dict[str, Any]] = []
        for text in result.payloads:
            try:
                payloads.append(parse_qr(text).to_json())
            except InputFormatError as e:
                payloads.append({"error": e.code, "detail": e.detail})
        line: dict[str, Any] = {"file": name, "payloads": payloads}
        if result.error:
            line["error"] = result.error
            failed = True
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    return EXIT_ERROR if failed else EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from terminal.app import build_services
    from verify.tables import Status

    settings = _settings(args)
    if not settings.facility.code:
        raise SettingsError("invalid setting facility.code (TIEPDON_FACILITY_CODE): required")
    if not args.offline:
        require_online(settings)
    services = build_services(settings, online=not args.offline, key=_cli_key(settings),
                              now=_clock())
    verifier = services.verifier
    if services.offline is not None:
        services.offline.load()

    async def run() -> dict[str, Any]:
        try:
            if args.qr is not None:
                credential = verifier.credential_from_qr(args.qr)
                if args.name or args.dob:
                    raise CliError("--name/--dob go with --card or --id, not with --qr")
            else:
                credential = verifier.credential_from_manual(
                    card_code=args.card, id_number=args.id, full_name=args.name,
                    date_of_birth=args.dob)
            return (await verifier.verify(credential)).to_json()
        finally:
            if services.registry is not None:
                await services.registry.aclose()

    result = asyncio.run(run())
    _print_json(result)
    return EXIT_OK if result["status"] == Status.ELIGIBLE.value else EXIT_NEGATIVE


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
    settings = _settings(args)
    try:
        trust = load_csca_dir(args.csca or settings.chip.csca_dir)
    except (OSError, ValueError) as e:
        raise CliError(f"cannot load CSCA certificates: {type(e).__name__}") from None
    result = read_from_source(PcscSource(args.reader or settings.chip.reader or None), keys,
                              extended_mode=settings.chip.extended_length,
                              retries=settings.chip.retries, trust=trust, now=_now(),
                              return_seconds=settings.chip.card_return_seconds,
                              on_wait=_tell_place_back)
    credential = chip_credential(result.identity, read=result, fingerprint="",
                                 today=datetime.now(VN_TZ).date())
    out = credential.to_json()
    out.pop("raw_fingerprint", None)
    if args.photo_out and result.photo is not None:
        Path(args.photo_out).write_bytes(result.photo.image)
    assert credential.chip is not None
    out["verdict"] = credential.chip.verdict.value
    _print_json(out)
    return card_read_exit(credential.chip)


def card_read_exit(evidence: ChipEvidence) -> int:
    """The daemon's verdict (verify/evidence.py) decides: exit 0 only when ``verified``; a
    possible copy, an unanchored signature or a check not done is exit 1."""
    from verify.evidence import Verdict

    return EXIT_OK if evidence.verdict is Verdict.VERIFIED else EXIT_NEGATIVE


def _tell_place_back() -> None:
    print("Đặt lại thẻ lên đầu đọc và giữ yên… (place the card back on the reader)",
          file=sys.stderr, flush=True)


# -- offline snapshots --------------------------------------------------------------------
def _trusted(settings: Settings) -> Any:
    from verify.snapshot import parse_trusted_keys

    keys = parse_trusted_keys(settings.cache.trusted_keys)
    if not keys:
        raise SettingsError("invalid setting cache.trusted_keys (TIEPDON_CACHE_TRUSTED_KEYS): "
                            "no publisher key configured")
    return keys


def cmd_cache_keygen(args: argparse.Namespace) -> int:
    """A publisher signing key (PEM, 0600) and, optionally, a reading key (hex, 0600)."""
    import secrets

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from verify.snapshot import public_key_text

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    _write_secret(Path(args.private), pem)
    if args.reading_key:
        _write_secret(Path(args.reading_key), secrets.token_hex(32).encode() + b"\n")
    _print_json({"trusted_key": f"{args.key_id}:{public_key_text(key.public_key())}"})
    return EXIT_OK


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def cmd_cache_build(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from terminal.app import read_reading_key
    from verify.adapters.cache import build
    from verify.snapshot import records_from_csv

    signing = serialization.load_pem_private_key(Path(args.signing_key).read_bytes(), None)
    if not isinstance(signing, Ed25519PrivateKey):
        raise CliError("the signing key is not an Ed25519 private key")
    reading = read_reading_key(args.reading_key)
    assert reading is not None  # argparse requires the option
    created = datetime.now(UTC)
    with Path(args.csv).open(encoding="utf-8-sig", newline="") as f:
        manifest = build(records_from_csv(f), Path(args.out), signing_key=signing,
                         key_id=args.key_id, reading_key=reading, version=args.version,
                         created=created, expires=created + timedelta(days=args.expires_days))
    _print_json(manifest.to_json())
    return EXIT_OK


def cmd_cache_verify(args: argparse.Namespace) -> int:
    """What ``install`` would check, the rollback rule included, without installing."""
    import contextlib

    from terminal.app import cache_dir
    from verify.adapters.cache import installed_manifest, verify_dir
    from verify.snapshot import CacheError, CacheIntegrityError, check_version

    settings = _settings(args)
    try:
        manifest = verify_dir(Path(args.dir), _trusted(settings))
        current = None
        with contextlib.suppress(CacheError, OSError):
            current = installed_manifest(cache_dir(settings), _trusted(settings))
        check_version(manifest, current.snapshot_version if current else None)
    except CacheIntegrityError as e:
        print(f"tiepdon: snapshot refused: {e.detail}", file=sys.stderr)
        return EXIT_NEGATIVE
    _print_json(manifest.to_json())
    return EXIT_OK


def cmd_cache_install(args: argparse.Namespace) -> int:
    from terminal.app import cache_dir
    from verify.adapters.cache import install
    from verify.snapshot import CacheIntegrityError

    settings = _settings(args)
    try:
        manifest = install(Path(args.dir), cache_dir(settings), _trusted(settings))
    except CacheIntegrityError as e:
        print(f"tiepdon: snapshot refused: {e.detail}", file=sys.stderr)
        return EXIT_NEGATIVE
    except OSError as e:
        raise CliError(f"install failed, the installed snapshot is unchanged: {e.strerror}"
                       ) from None
    _print_json(manifest.to_json())
    return EXIT_OK


def cmd_cache_fetch(args: argparse.Namespace) -> int:
    """Download the publisher's snapshot (``cache.url``) and install it (the daily timer)."""
    import shutil
    import tempfile

    from terminal.app import cache_dir
    from verify.adapters.cache import fetch, install
    from verify.snapshot import CacheIntegrityError

    settings = _settings(args)
    url = args.url or settings.cache.url
    if not url:
        raise SettingsError("invalid setting cache.url (TIEPDON_CACHE_URL): required")
    target = cache_dir(settings)
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=target))
    try:
        fetch(url, staging, _trusted(settings))
        manifest = install(staging, target, _trusted(settings))
    except CacheIntegrityError as e:
        print(f"tiepdon: snapshot refused: {e.detail}", file=sys.stderr)
        return EXIT_NEGATIVE
    except (OSError, ValueError) as e:  # urllib: timeouts, refusals, malformed answers
        raise CliError(f"snapshot download failed: {type(e).__name__}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _print_json(manifest.to_json())
    return EXIT_OK


def cmd_cache_info(args: argparse.Namespace) -> int:
    from terminal.app import cache_dir
    from verify.adapters.cache import installed_manifest

    settings = _settings(args)
    manifest = installed_manifest(cache_dir(settings), _trusted(settings))
    if manifest is None:
        raise CliError("no snapshot installed")
    now = _now()
    out = manifest.to_json()
    age = (now - manifest.created).total_seconds() / 86400
    out["age_days"] = round(age, 2)
    out["expired"] = now > manifest.expires
    # A snapshot "made" in the future is a frozen or forged clock: never usable.
    out["usable"] = -5 / 1440 <= age <= settings.cache.max_age_days
    _print_json(out)
    return EXIT_OK


def cmd_cache_lookup(args: argparse.Namespace) -> int:
    """Print one record (personal data, deliberately, for IT staff checking a snapshot)."""
    from terminal.app import cache_dir, read_reading_key
    from verify.adapters.cache import Snapshot
    from verify.snapshot import lookup_identifier

    settings = _settings(args)
    reading = read_reading_key(settings.cache.reading_key_file)
    if reading is None:
        raise SettingsError("invalid setting cache.reading_key_file "
                            "(TIEPDON_CACHE_READING_KEY_FILE): required")
    snapshot = Snapshot.open(cache_dir(settings), _trusted(settings), reading)
    if snapshot is None:
        raise CliError("no snapshot installed")
    hit = snapshot.lookup(lookup_identifier(args.card or args.id))
    if hit is None:
        print("tiepdon: not in the snapshot", file=sys.stderr)
        return EXIT_NEGATIVE
    _print_json(hit.record)
    return EXIT_OK


# -- audit --------------------------------------------------------------------------------
def _audit_log(args: argparse.Namespace) -> Any:
    from terminal.app import audit_dir, derive_key
    from terminal.audit import AuditLog

    settings = _settings(args)
    key = _cli_key(settings, required=True)
    return AuditLog(audit_dir(settings), derive_key(key, "audit")), settings, key


def cmd_audit_verify(args: argparse.Namespace) -> int:
    audit, _, _ = _audit_log(args)
    report = audit.verify()
    _print_json({"records": report.records, "first_seq": report.first_seq,
                 "last_seq": report.last_seq, "ok": report.ok,
                 "problems": list(report.problems)})
    if not report.ok:
        print(f"tiepdon: audit log tampered: {report.problems[0]}", file=sys.stderr)
        return EXIT_NEGATIVE
    return EXIT_OK


def cmd_audit_export(args: argparse.Namespace) -> int:
    audit, _, _ = _audit_log(args)
    for record in audit.export():
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    return EXIT_OK


def cmd_audit_find(args: argparse.Namespace) -> int:
    """Lookups of one person: the auditor types the ID; only its fingerprint is compared."""
    from terminal.app import derive_key
    from verify.fingerprint import fingerprint

    audit, _, key = _audit_log(args)
    target = fingerprint(derive_key(key, "fingerprint"), "subject:" + (args.id or args.card))
    hits = [r for r in audit.export() if r.get("TIEPDON_SUBJECT") == target]
    for record in hits:
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    return EXIT_OK if hits else EXIT_NEGATIVE


def _users_path(args: argparse.Namespace) -> Path:
    settings = _settings(args)
    path = Path(args.users_file or settings.auth.users_file or "")
    if not str(path):
        raise SettingsError("invalid setting auth.users_file (TIEPDON_AUTH_USERS_FILE): required")
    return path


def _read_password() -> str:
    import getpass

    password = (getpass.getpass("Mật khẩu / password: ") if sys.stdin.isatty()
                else sys.stdin.readline().rstrip("\n"))
    if len(password) < 8:
        raise CliError("the password needs at least 8 characters")
    return password


def _one_line(text: str, what: str) -> str:
    if not text.strip() or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise CliError(f"{what} must be one line of text without control characters")
    return text


def cmd_user_add(args: argparse.Namespace) -> int:
    """Add a staff user (password from the terminal, or one line on stdin)."""
    from terminal.auth import User, hash_password, load_users, user_entry

    path = _users_path(args)
    _one_line(args.username, "the user name")
    _one_line(args.name, "--name")
    if not (len(args.officer_id) == 12 and args.officer_id.isdigit()):
        raise CliError("--officer-id is the officer's 12-digit CCCD number")
    if path.exists() and args.username in load_users(path):
        raise CliError(f"user {args.username} exists already")
    entry = user_entry(User(args.username, args.name, args.officer_id,
                            hash_password(_read_password())))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(entry)
    print(f"tiepdon: user {args.username} added", file=sys.stderr)
    return EXIT_OK


def cmd_user_change(args: argparse.Namespace) -> int:
    """passwd (a new password), disable, enable: the running daemon ends that user's sessions
    at its next request (it re-reads the file and compares the password hash)."""
    import dataclasses

    from terminal.auth import hash_password, load_users, users_text

    path = _users_path(args)
    users = load_users(path) if path.exists() else {}
    user = users.get(args.username)
    if user is None:
        raise CliError(f"no user {args.username}")
    if args.user_command == "passwd":
        user = dataclasses.replace(user, password=hash_password(_read_password()))
    else:
        user = dataclasses.replace(user, disabled=args.user_command == "disable")
    users[user.username] = user
    tmp = path.with_name(path.name + ".tmp")
    st = path.stat()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, st.st_mode & 0o777)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(users_text(users))
        f.flush()
        os.fsync(f.fileno())
    with contextlib.suppress(PermissionError):  # keep the group the service reads it with
        os.chown(tmp, st.st_uid, st.st_gid)
    tmp.replace(path)
    print(f"tiepdon: user {args.username}: {args.user_command} done", file=sys.stderr)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from terminal.app import build_services, create_app, with_feeds
    from terminal.server import bind, serve_foreground

    settings = _settings(args)
    require_online(settings)
    host = settings.http.host
    socks: list[socket.socket] = []
    for port in (settings.http.port, settings.his.hn212_port):
        if port or not socks:
            try:
                socks.append(bind(host, port))
            except OSError as e:
                raise CliError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    try:
        services = build_services(settings, now=_clock(serving=True))
    except OSError as e:
        raise SettingsError(f"invalid setting data.dir (TIEPDON_DATA_DIR): {e.strerror}"
                            ) from None
    log.info("serving on http://%s:%d/", host, socks[0].getsockname()[1])
    feed_port = socks[-1].getsockname()[1] if len(socks) > 1 else 0
    if feed_port:
        log.info("HN212-compatible HIS feed on http://%s:%d/socket.io/", host, feed_port)
    serve_foreground(with_feeds(create_app(settings, services), services, feed_port), *socks)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from terminal.demo import run_demo

    try:
        run_demo(host=args.host, port=args.port, latency_ms=args.latency_ms)
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
    conn = open_registry(args.db, today=seed_day)
    control = SimControl(latency_ms=args.latency_ms, failure_rate=args.failure_rate)
    app = create_sim_app(conn, control, today=(lambda: fixed) if fixed else None, seed=args.seed)
    print(f"http://{args.host}:{sock.getsockname()[1]}", flush=True)
    serve_foreground(app, sock)
    return EXIT_OK


# -- parser --------------------------------------------------------------------------------
def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _iso_day(text: str) -> str:
    date.fromisoformat(text)
    return text


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tiepdon", description="Tiếp Đón — reception verification terminal")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser("demo", help="the whole terminal on loopback with a simulator")
    demo.add_argument("--port", type=int, default=8765)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--latency-ms", type=float, default=300.0,
                      help="simulated registry latency (default 300)")
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="the production daemon")
    serve.add_argument("--config", help="TOML settings file (default: $TIEPDON_CONFIG)")
    serve.set_defaults(func=cmd_serve)

    qr = sub.add_parser("qr", help="QR payloads")
    qr_sub = qr.add_subparsers(dest="qr_command", required=True, parser_class=_Parser)
    parse = qr_sub.add_parser("parse", help="parse a QR payload; prints a credential JSON")
    parse.add_argument("text")
    parse.add_argument("--config")
    parse.set_defaults(func=cmd_qr_parse)
    scan = qr_sub.add_parser("scan", help="decode the QR codes in image or video files")
    scan.add_argument("files", nargs="+")
    scan.set_defaults(func=cmd_qr_scan)

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

    card = sub.add_parser("card", help="chip CCCD")
    card_sub = card.add_subparsers(dest="card_command", required=True, parser_class=_Parser)
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

    cache = sub.add_parser("cache", help="signed offline snapshots")
    cache_sub = cache.add_subparsers(dest="cache_command", required=True, parser_class=_Parser)
    keygen = cache_sub.add_parser("keygen", help="a publisher signing key (and reading key)")
    keygen.add_argument("--key-id", required=True)
    keygen.add_argument("--private", required=True, help="PEM file to create (0600)")
    keygen.add_argument("--reading-key", help="also create a reading key file (0600)")
    keygen.set_defaults(func=cmd_cache_keygen)
    cbuild = cache_sub.add_parser("build", help="build a signed snapshot from a CSV export")
    cbuild.add_argument("--csv", required=True)
    cbuild.add_argument("--out", required=True, help="folder for records.db + manifest.json")
    cbuild.add_argument("--signing-key", required=True, help="Ed25519 private key (PEM)")
    cbuild.add_argument("--key-id", required=True)
    cbuild.add_argument("--reading-key", required=True)
    cbuild.add_argument("--version", type=int, required=True)
    cbuild.add_argument("--expires-days", type=float, default=7.0)
    cbuild.set_defaults(func=cmd_cache_build)
    for name, func, text in (("verify", cmd_cache_verify, "check a snapshot folder"),
                             ("install", cmd_cache_install, "verify and install atomically")):
        sp = cache_sub.add_parser(name, help=text)
        sp.add_argument("dir")
        sp.add_argument("--config")
        sp.set_defaults(func=func)
    cfetch = cache_sub.add_parser("fetch", help="download and install from cache.url")
    cfetch.add_argument("url", nargs="?", help="overrides cache.url")
    cfetch.add_argument("--config")
    cfetch.set_defaults(func=cmd_cache_fetch)
    info = cache_sub.add_parser("info", help="the installed snapshot")
    info.add_argument("--config")
    info.set_defaults(func=cmd_cache_info)
    lookup = cache_sub.add_parser("lookup", help="one record of the installed snapshot")
    which = lookup.add_mutually_exclusive_group(required=True)
    which.add_argument("--card", help="card code or BHXH number")
    which.add_argument("--id", help="12-digit CCCD number")
    lookup.add_argument("--config")
    lookup.set_defaults(func=cmd_cache_lookup)

    audit = sub.add_parser("audit", help="the append-only audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, parser_class=_Parser)
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

    user = sub.add_parser("user", help="staff users (LAN-bound terminals)")
    user_sub = user.add_subparsers(dest="user_command", required=True, parser_class=_Parser)
    uadd = user_sub.add_parser("add", help="add a user; the password is read from stdin")
    uadd.add_argument("username")
    uadd.add_argument("--name", required=True, help="full name, sent as hoTenCb")
    uadd.add_argument("--officer-id", required=True, help="12-digit CCCD, sent as cccdCb")
    uadd.add_argument("--users-file")
    uadd.add_argument("--config")
    uadd.set_defaults(func=cmd_user_add)
    for name, text in (("passwd", "set a new password (read from stdin); ends the user's "
                                  "sessions"),
                       ("disable", "refuse the user's logins and end their sessions"),
                       ("enable", "allow a disabled user again")):
        change = user_sub.add_parser(name, help=text)
        change.add_argument("username")
        change.add_argument("--users-file")
        change.add_argument("--config")
        change.set_defaults(func=cmd_user_change)

    sim = sub.add_parser("registry-sim", help="a server speaking the registry gateway protocol")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8766)
    sim.add_argument("--db", default=":memory:", help="SQLite file (created and seeded)")
    sim.add_argument("--latency-ms", type=float, default=0.0)
    sim.add_argument("--failure-rate", type=_fraction, default=0.0)
    sim.add_argument("--seed", type=int, default=None, help="random seed for failures")
    sim.add_argument("--today", type=_iso_day, help="fixed day for validity (YYYY-MM-DD)")
    sim.set_defaults(func=cmd_registry_sim)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from readers.errors import ReaderError
    from verify.errors import VerifyError

    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose, args.command in DAEMONS)
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
