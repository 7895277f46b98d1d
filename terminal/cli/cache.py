"""``tiepdon cache keygen|build|verify|install|fetch|info|lookup``: signed offline snapshots
(the publisher's side and the desk's side)."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import signal
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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
from terminal.settings import Settings, read_reading_key, refused
from terminal.settings.sections import FacilitySettings

if TYPE_CHECKING:
    from verify.snapshot import DeskTerms


def register(sub: Any) -> None:
    cache = sub.add_parser("cache", help="signed offline snapshots")
    cache_sub = cache.add_subparsers(dest="cache_command", required=True, parser_class=Parser)
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
    cbuild.add_argument("--facility", help="a facility's subset: only desks whose "
                        "facility.code is this take it (default: every desk)")
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


@contextlib.contextmanager
def _overall_deadline(seconds: float) -> Iterator[None]:
    """The whole fetch within ``seconds``, whatever the mirror does: the download's own pace
    checks run between reads, and a mirror dripping its header lines or chunk sizes a byte
    at a time never lets a read return. A one-shot command in its main thread: SIGALRM
    interrupts the blocked read (TimeoutError)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def overdue(signum: int, frame: object) -> None:
        raise TimeoutError("snapshot fetch past its deadline")

    previous = signal.signal(signal.SIGALRM, overdue)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _trusted(settings: Settings) -> Any:
    from verify.snapshot import parse_trusted_keys

    return parse_trusted_keys(settings.require("cache", "trusted_keys",
                                               "no publisher key configured"))


def _terms(settings: Settings) -> DeskTerms:
    """What this desk takes (verify, install and fetch alike): its facility's or every
    facility's snapshots, none the daemon would not use at this time."""
    from verify.snapshot import DeskTerms

    return DeskTerms(settings.facility.code, now(), settings.cache.max_age_days)


def _refused(detail: str) -> int:
    print(f"tiepdon: snapshot refused: {detail}", file=sys.stderr)
    return EXIT_NEGATIVE


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


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
    print_json({"trusted_key": f"{args.key_id}:{public_key_text(key.public_key())}"})
    return EXIT_OK


def cmd_cache_build(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from verify.adapters.cache import build
    from verify.snapshot import records_from_csv

    signing = serialization.load_pem_private_key(Path(args.signing_key).read_bytes(), None)
    if not isinstance(signing, Ed25519PrivateKey):
        raise CliError("the signing key is not an Ed25519 private key")
    reading = read_reading_key(args.reading_key)
    assert reading is not None  # argparse requires the option
    facility = None
    if args.facility is not None:
        try:
            facility = FacilitySettings(code=args.facility).code or None
        except ValueError:
            raise CliError("--facility must be the 5-character facility code (mã CSKCB), "
                           "e.g. 01C54") from None
    created = datetime.now(UTC)
    with Path(args.csv).open(encoding="utf-8-sig", newline="") as f:
        manifest = build(records_from_csv(f), Path(args.out), signing_key=signing,
                         key_id=args.key_id, reading_key=reading, version=args.version,
                         created=created, expires=created + timedelta(days=args.expires_days),
                         facility=facility)
    print_json(manifest.to_json())
    return EXIT_OK


def cmd_cache_verify(args: argparse.Namespace) -> int:
    """What ``install`` would check, the rollback rule included, without installing."""

    from terminal.services import cache_dir
    from verify.adapters.cache import installed_for, verify_dir
    from verify.snapshot import CacheIntegrityError, check_version

    settings = settings_of(args)
    try:
        manifest = verify_dir(Path(args.dir), _trusted(settings))
        _terms(settings).check(manifest)
        check_version(manifest, installed_for(cache_dir(settings), _trusted(settings),
                                              settings.facility.code))
    except CacheIntegrityError as e:
        return _refused(e.detail)
    print_json(manifest.to_json())
    return EXIT_OK


def cmd_cache_install(args: argparse.Namespace) -> int:
    from terminal.services import cache_dir
    from verify.adapters.cache import install
    from verify.snapshot import CacheIntegrityError

    settings = settings_of(args)
    try:
        manifest = install(Path(args.dir), cache_dir(settings), _trusted(settings),
                           terms=_terms(settings))
    except CacheIntegrityError as e:
        return _refused(e.detail)
    except OSError as e:
        raise CliError(f"install failed, the installed snapshot is unchanged: {e.strerror}"
                       ) from None
    print_json(manifest.to_json())
    return EXIT_OK


def cmd_cache_fetch(args: argparse.Namespace) -> int:
    """Download the publisher's snapshot (``cache.url``) and install it (the daily timer).
    ``records.db`` is not downloaded again when the signed manifest names the installed
    snapshot. The outcome is left in the data folder for the daemon
    (``tiepdon_snapshot_fetch_ok``)."""
    import contextlib
    import shutil
    import tempfile

    from terminal.offline import write_fetch_status
    from terminal.services import cache_dir
    from verify.adapters import cache as adapter
    from verify.adapters.cache import (
        fetch,
        install,
        installed_for,
        is_same_snapshot,
        make_private_dir,
    )
    from verify.snapshot import CacheError, CacheIntegrityError

    settings = settings_of(args)
    url = args.url or settings.require("cache", "url")
    trusted = _trusted(settings)
    target = cache_dir(settings)
    make_private_dir(target)
    terms = _terms(settings)
    # "Already installed" only when what is installed is whole: a damaged records file (the
    # daemon refuses it) is downloaded again, not reported fine every day.
    current = installed_for(target, trusted, terms.facility, whole=True)

    def status(ok: bool, reason: str = "", version: int | None = None,
               downloaded: bool = False) -> None:
        with contextlib.suppress(OSError):  # the fetch's own outcome matters more
            write_fetch_status(settings.data.dir, ok=ok, at=datetime.now(UTC), version=version,
                               downloaded=downloaded, reason=reason)

    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=target))
    try:
        with _overall_deadline(adapter.MANIFEST_DEADLINE_SECONDS
                               + adapter.FETCH_DEADLINE_SECONDS):
            manifest = fetch(url, staging, trusted, installed=current, terms=terms)
        same = is_same_snapshot(manifest, current)
        if not same:
            manifest = install(staging, target, trusted, terms=terms)
    except CacheIntegrityError as e:
        status(False, e.detail)
        return _refused(e.detail)
    # urllib: timeouts, refusals, malformed answers (a garbage status line, a broken chunk:
    # http.client's own errors, which left the status saying ok); the overall deadline
    except (OSError, ValueError, CacheError, http.client.HTTPException) as e:
        status(False, f"download failed: {type(e).__name__}")
        raise CliError(f"snapshot download failed: {type(e).__name__}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    status(True, "already installed" if same else "", manifest.snapshot_version, not same)
    print_json({**manifest.to_json(), "downloaded": not same})
    return EXIT_OK


def cmd_cache_info(args: argparse.Namespace) -> int:
    """The installed snapshot, and whether the daemon would use it — judged by the daemon's
    own store (signature, records hash, facility, reading key, age), not a second rule."""
    from terminal.services import cache_dir, offline_store
    from verify.adapters.cache import installed_manifest

    settings = settings_of(args)
    manifest = installed_manifest(cache_dir(settings), _trusted(settings))
    if manifest is None:
        raise CliError("no snapshot installed")
    at = now()
    store = offline_store(settings, None, now=lambda: at, journal="none")
    store.load()
    health = store.health()
    out = manifest.to_json()
    out["age_days"] = round((at - manifest.created).total_seconds() / 86400, 2)
    out["expired"] = at > manifest.expires
    out["usable"] = health["status"] != "down"
    out["status"], out["reason"] = health["status"], health["reason"]
    print_json(out)
    return EXIT_OK


def cmd_cache_lookup(args: argparse.Namespace) -> int:
    """Print one record (personal data, deliberately, for IT staff checking a snapshot)."""
    from terminal.services import cache_dir
    from verify.adapters.cache import Snapshot
    from verify.snapshot import lookup_identifier

    settings = settings_of(args)
    reading = read_reading_key(settings.cache.reading_key_file)
    if reading is None:
        raise refused("cache", "reading_key_file", "required")
    snapshot = Snapshot.open(cache_dir(settings), _trusted(settings), reading,
                             facility=settings.facility.code)
    if snapshot is None:
        raise CliError("no snapshot installed")
    hit = snapshot.lookup(lookup_identifier(args.card or args.id))
    if hit is None:
        print("tiepdon: not in the snapshot", file=sys.stderr)
        return EXIT_NEGATIVE
    print_json(hit.record)
    return EXIT_OK
