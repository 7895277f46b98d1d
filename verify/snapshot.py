"""Signed eligibility snapshots and the privacy of their records (pure core, no I/O).

A snapshot is a records file and a signed manifest. The manifest (format, snapshot version,
created, expires, record count, content hash of the records file, key id, index salt, and —
for a facility's subset — the facility it is for) is signed with Ed25519 by a publisher whose
public key the terminal trusts (several at once: rotation).

Records are unreadable in bulk: each record is AES-GCM-encrypted under its own random key,
and that key is stored once per identifier (BHXH number, CCCD number; a legacy card code when
there is no BHXH number), wrapped under a key derived from the identifier itself. The index
entry is a keyed hash of the identifier. Both derivations use HMAC-SHA-512 under a reading key
shared by publisher and terminals but never stored beside the file — so a copied file alone
gives away nothing, and even with the reading key each record must be found by guessing its
identifier (README "Threat model").
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from verify.errors import VerifyError
from verify.ids import CardCodeKind, parse_card_code
from verify.model import is_digits, normalize_text, parse_birth_date, parse_dmy, parse_sex

FORMAT = 1
MAX_MANIFEST_BYTES = 64 * 1024
MAX_KEY_ID = 64
_NONCE = bytes(12)  # every AES-GCM key below encrypts exactly one message: a fixed nonce is safe


class CacheError(VerifyError):
    code = "cache_error"
    vi = "Dữ liệu ngoại tuyến không dùng được. Báo bộ phận CNTT cài lại bản dữ liệu."
    en = "The offline data cannot be used. Ask IT to install the snapshot again."


class CacheIntegrityError(CacheError):
    """Signature, key, hash, version or format check failed: the snapshot is refused."""

    code = "cache_integrity"
    vi = "Bản dữ liệu ngoại tuyến bị từ chối (chữ ký hoặc nội dung không hợp lệ). Báo bộ phận CNTT."
    en = "The offline snapshot was refused (invalid signature or content). Tell IT."


# -- keys -------------------------------------------------------------------------------------
def public_key_text(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def parse_trusted_keys(entries: Iterable[str]) -> dict[str, Ed25519PublicKey]:
    """``key_id:base64`` strings from the settings."""
    keys: dict[str, Ed25519PublicKey] = {}
    for entry in entries:
        key_id, sep, text = entry.strip().partition(":")
        if not sep or not key_id:
            raise CacheError("trusted key entries are 'key_id:base64'")
        try:
            keys[key_id] = Ed25519PublicKey.from_public_bytes(base64.b64decode(text,
                                                                              validate=True))
        except ValueError as e:
            raise CacheError(f"trusted key {key_id} is not an Ed25519 public key") from e
    return keys


# -- manifest ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Manifest:
    format: int
    snapshot_version: int
    created: datetime
    expires: datetime
    record_count: int
    content_hash: str      # "sha256:<hex>" of the records file
    records_size: int      # bytes of the records file: tells truncation from tampering
    key_id: str
    index_salt: str        # hex, random per snapshot
    # The facility (mã CSKCB) a subset was built for; None: for every desk that trusts the
    # key (a province-wide file). Signed, and absent from the JSON when None, so manifests
    # made before it existed verify unchanged.
    facility: str | None = None

    def signed_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": self.format, "snapshot_version": self.snapshot_version,
            "created": self.created.isoformat(), "expires": self.expires.isoformat(),
            "record_count": self.record_count, "content_hash": self.content_hash,
            "records_size": self.records_size, "key_id": self.key_id,
            "index_salt": self.index_salt}
        if self.facility is not None:
            out["facility"] = self.facility
        return out


def sign_manifest(manifest: Manifest, key: Ed25519PrivateKey) -> bytes:
    body = manifest.to_json()
    body["signature"] = base64.b64encode(key.sign(manifest.signed_bytes())).decode("ascii")
    return json.dumps(body, sort_keys=True, indent=1).encode() + b"\n"


_CONTENT_HASH = re.compile(r"sha256:[0-9a-f]{64}", re.ASCII)
_FACILITY = re.compile(r"[0-9A-Z]{5}", re.ASCII)
_FIELDS = frozenset({"format", "snapshot_version", "created", "expires", "record_count",
                     "content_hash", "records_size", "key_id", "index_salt", "signature"})


def parse_manifest(data: bytes, trusted: Mapping[str, Ed25519PublicKey]) -> Manifest:
    """Strict: the exact fields, a known key, a valid signature. Raises CacheIntegrityError."""
    if not data:
        raise CacheIntegrityError("manifest is empty")
    if len(data) > MAX_MANIFEST_BYTES:
        raise CacheIntegrityError("manifest is oversized")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise CacheIntegrityError("manifest is not JSON") from e
    if not isinstance(doc, dict):
        raise CacheIntegrityError("manifest is not a JSON object")
    if set(doc) not in (_FIELDS, _FIELDS | {"facility"}):
        raise CacheIntegrityError("manifest fields are not the expected ones")
    facility = doc.get("facility")
    if facility is not None and not (isinstance(facility, str) and _FACILITY.fullmatch(facility)):
        raise CacheIntegrityError("manifest facility is not a 5-character facility code")
    if doc["format"] != FORMAT:
        raise CacheIntegrityError("manifest format is not supported")
    try:
        manifest = Manifest(
            format=int(doc["format"]), snapshot_version=int(doc["snapshot_version"]),
            created=datetime.fromisoformat(doc["created"]),
            expires=datetime.fromisoformat(doc["expires"]),
            record_count=int(doc["record_count"]), content_hash=str(doc["content_hash"]),
            records_size=int(doc["records_size"]), key_id=str(doc["key_id"]),
            index_salt=str(doc["index_salt"]), facility=facility)
        bytes.fromhex(manifest.index_salt)
        signature = base64.b64decode(doc["signature"], validate=True)
    except (ValueError, TypeError, OverflowError) as e:
        raise CacheIntegrityError("manifest values are malformed") from e
    if (not manifest.key_id.isascii() or not manifest.key_id.isprintable()
            or not 0 < len(manifest.key_id) <= MAX_KEY_ID):
        # read before the signature is checked, and said in errors and the fetch status:
        # an unsigned manifest from any mirror must not fill them
        raise CacheIntegrityError(f"manifest key id is not 1–{MAX_KEY_ID} printable ASCII "
                                  "characters")
    if manifest.created.tzinfo is None or manifest.expires.tzinfo is None:
        raise CacheIntegrityError("manifest times lack a UTC offset")
    key = trusted.get(manifest.key_id)
    if key is None:
        raise CacheIntegrityError(f"snapshot signed by an unknown key ({manifest.key_id})")
    try:
        key.verify(signature, manifest.signed_bytes())
    except InvalidSignature:
        raise CacheIntegrityError("manifest signature does not verify") from None
    # "sha256:" and 64 lowercase hex digits, as hexdigest() writes them: anything else (a
    # non-ASCII character would make check_hash's compare_digest a TypeError) is refused here.
    if not _CONTENT_HASH.fullmatch(manifest.content_hash):
        raise CacheIntegrityError("manifest content hash is malformed")
    return manifest


def check_size(manifest: Manifest, size: int) -> None:
    if size == 0:
        raise CacheIntegrityError("records file is empty")
    if size < manifest.records_size:
        raise CacheIntegrityError(f"records file is truncated ({size} of "
                                  f"{manifest.records_size} bytes)")
    if size > manifest.records_size:
        raise CacheIntegrityError("records file is longer than the manifest says")


def check_hash(manifest: Manifest, digest_hex: str) -> None:
    if not hmac.compare_digest(manifest.content_hash, "sha256:" + digest_hex):
        raise CacheIntegrityError("records file does not match the manifest's content hash")


def check_scope(manifest: Manifest, facility: str) -> None:
    """A facility's subset serves that facility's desks only. Signed with the key every
    facility of a group trusts, another facility's subset would otherwise install (a higher
    version wins): this desk's patients answered "not in the snapshot", another facility's
    patients on this disk. ``facility``: this desk's code ("" when it has none set — then
    only a snapshot for every facility is taken)."""
    if manifest.facility is not None and manifest.facility != facility:
        raise CacheIntegrityError(
            f"snapshot is for facility {manifest.facility}, this desk is "
            f"{facility or 'not set (facility.code)'}: refused")


# The highest version each scope ("*", or a facility's code) ever installed on this desk, with
# its content hash: kept beside the snapshots, so pointing ``current`` back at the previous
# folder, or a manifest that no longer parses, does not let an older snapshot in.
HighWater = dict[str, tuple[int, str]]
MAX_HIGH_WATER_BYTES = 64 * 1024


def scope_of(manifest: Manifest) -> str:
    return manifest.facility or "*"


def check_high_water(manifest: Manifest, marks: Mapping[str, tuple[int, str]]) -> None:
    mark = marks.get(scope_of(manifest))
    if mark is None:
        return
    version, digest = mark
    if manifest.snapshot_version < version:
        raise CacheIntegrityError(
            f"snapshot version {manifest.snapshot_version} is older than version {version} "
            "installed before (rollback refused)")
    if manifest.snapshot_version == version and not hmac.compare_digest(
            manifest.content_hash, digest):
        raise CacheIntegrityError(
            f"snapshot version {version} was installed before with other content "
            "(a version is never reused: refused)")


def raise_high_water(marks: Mapping[str, tuple[int, str]], manifest: Manifest) -> HighWater:
    out = dict(marks)
    mark = out.get(scope_of(manifest))
    if mark is None or manifest.snapshot_version > mark[0]:
        out[scope_of(manifest)] = (manifest.snapshot_version, manifest.content_hash)
    return out


def parse_high_water(data: bytes) -> HighWater:
    """The marks as written; anything unreadable is no marks (the folder's owner could
    remove the file as easily)."""
    try:
        doc = json.loads(data)
        return {str(scope): (int(v["version"]), str(v["content_hash"]))
                for scope, v in doc["scopes"].items()}
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return {}


def high_water_bytes(marks: Mapping[str, tuple[int, str]]) -> bytes:
    return json.dumps({"scopes": {scope: {"version": v, "content_hash": h}
                                  for scope, (v, h) in sorted(marks.items())}},
                      indent=1).encode() + b"\n"


@dataclass(frozen=True, slots=True)
class DeskTerms:
    """What a desk takes, the same at verify, install and fetch: snapshots for every
    facility or for its own (``facility``, "" when none is set); and, given the time, none
    the daemon would not use (made in the future, older than ``max_age_days``) — installing
    one would replace a working snapshot with one refused at the next start."""

    facility: str = ""
    now: datetime | None = None
    max_age_days: float | None = None

    def check(self, manifest: Manifest) -> None:
        check_scope(manifest, self.facility)
        if self.now is not None and self.max_age_days is not None:
            status, reason = usability(manifest, self.now, self.max_age_days)
            if status == "down":
                raise CacheIntegrityError(reason.replace(": not used", ": refused"))


def check_version(manifest: Manifest, installed: Manifest | None) -> None:
    """Never back, and never the same version with other content: a publisher does not
    reuse a version number, so that is another snapshot passed off as this one. Versions
    count within a scope (every facility's, or one facility's subset): a desk moving from
    the province-wide file to its facility's subset starts that subset's count (the
    high-water marks keep each scope from going back; too old a snapshot is refused by
    age)."""
    if installed is None or scope_of(installed) != scope_of(manifest):
        return
    if manifest.snapshot_version < installed.snapshot_version:
        raise CacheIntegrityError(
            f"snapshot version {manifest.snapshot_version} is older than the installed "
            f"{installed.snapshot_version} (rollback refused)")
    if (manifest.snapshot_version == installed.snapshot_version
            and not hmac.compare_digest(manifest.content_hash, installed.content_hash)):
        raise CacheIntegrityError(
            f"snapshot version {manifest.snapshot_version} is installed with other content "
            "(a version is never reused: refused)")


# -- records ----------------------------------------------------------------------------------
RECORD_FIELDS = ("card_code", "bhxh_number", "cccd_number", "full_name", "date_of_birth",
                 "sex", "valid_from", "valid_to", "registered_facility", "area_code",
                 "five_years_date", "benefit_level")


def identifiers(record: Mapping[str, Any]) -> list[str]:
    """The lookup identifiers of a record: BHXH number and CCCD number (a legacy card code
    with letters in its tail stands in for a missing BHXH number)."""
    out = []
    bhxh = str(record.get("bhxh_number") or "")
    if bhxh:
        out.append("bhxh:" + bhxh)
    elif record.get("card_code"):
        out.append("card:" + str(record["card_code"]))
    if record.get("cccd_number"):
        out.append("cccd:" + str(record["cccd_number"]))
    return out


def lookup_identifier(text: str) -> str:
    """The identifier to look up for what was presented: card code → its BHXH number."""
    s = text.strip().upper()
    if len(s) == 12 and is_digits(s):
        return "cccd:" + s
    card = parse_card_code(s)
    if card.kind is CardCodeKind.BHXH:
        return "bhxh:" + card.code
    if card.kind is CardCodeKind.CCCD:
        return "cccd:" + card.code
    return "bhxh:" + card.bhxh_number if card.bhxh_number else "card:" + card.code


@dataclass(frozen=True, slots=True)
class IndexKeys:
    index: bytes   # 16 bytes: the row's key in the index table
    wrap: bytes    # 32 bytes: wraps the record key


def derive(reading_key: bytes, salt: bytes, identifier: str) -> IndexKeys:
    mac = hmac.new(reading_key, salt + b"\x00" + identifier.encode(), hashlib.sha512).digest()
    return IndexKeys(mac[:16], mac[32:64])


def seal_record(record: Mapping[str, Any], record_key: bytes) -> bytes:
    plain = json.dumps({k: record.get(k) for k in RECORD_FIELDS}, ensure_ascii=False,
                       separators=(",", ":")).encode()
    return AESGCM(record_key).encrypt(_NONCE, plain, b"tiepdon-record")


def wrap_key(keys: IndexKeys, record_key: bytes) -> bytes:
    return AESGCM(keys.wrap).encrypt(_NONCE, record_key, keys.index)


def open_record(keys: IndexKeys, wrapped: bytes, sealed: bytes) -> dict[str, Any]:
    try:
        record_key = AESGCM(keys.wrap).decrypt(_NONCE, wrapped, keys.index)
        plain = AESGCM(record_key).decrypt(_NONCE, sealed, b"tiepdon-record")
        doc = json.loads(plain)
    except (InvalidTag, ValueError) as e:
        raise CacheIntegrityError("a snapshot record does not decrypt") from e
    if not isinstance(doc, dict):
        raise CacheIntegrityError("a snapshot record is not an object")
    return doc


def age_days(manifest: Manifest, now: datetime) -> float:
    return (now - manifest.created).total_seconds() / 86400


CLOCK_SKEW_DAYS = 5 / 1440  # a snapshot may seem made up to five minutes ahead (clock drift)


def usability(manifest: Manifest, now: datetime, max_age_days: float) -> tuple[str, str]:
    """``ok`` / ``degraded`` (expired: answers need review) / ``down`` (not used) and why —
    one rule for the daemon and ``tiepdon cache info``. A snapshot made in the future is a
    desk clock set back or a forged date: its age and expiry mean nothing, so it is not
    used."""
    age = age_days(manifest, now)
    if age < -CLOCK_SKEW_DAYS:
        return "down", "snapshot made in the future (check the desk's clock): not used"
    if age > max_age_days:
        return "down", f"snapshot too old ({age:.0f} days): not used"
    if now > manifest.expires:
        return "degraded", f"snapshot expired ({age:.0f} days old)"
    return "ok", f"version {manifest.snapshot_version}, {manifest.record_count} records"


def parse_iso_day(text: object) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        return None


CSV_COLUMNS = ("card_code", "bhxh_number", "cccd_number", "full_name", "date_of_birth", "sex",
               "valid_from", "valid_to", "registered_facility", "area_code", "five_years_date")


def records_from_csv(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Rows of a CSV export (header with :data:`CSV_COLUMNS`) as snapshot records.

    Strict per row: a bad row stops the build with its line number (never its content).
    """
    reader = csv.DictReader(lines)
    try:
        missing = set(CSV_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise CacheError(f"CSV header lacks: {', '.join(sorted(missing))}")
        for row in reader:
            line = reader.line_num
            try:
                yield _record(row)
            except (VerifyError, ValueError) as e:
                detail = e.detail if isinstance(e, VerifyError) else str(e)  # never the value
                raise CacheError(f"CSV line {line}: {detail}") from None
    except csv.Error as e:  # a field over the csv module's limit, a stray NUL, …
        raise CacheError(f"CSV line {reader.line_num}: not valid CSV") from e


def _day_iso(text: str | None) -> str | None:
    s = (text or "").strip()
    return parse_dmy(s).isoformat() if s else None


def _record(row: Mapping[str, str | None]) -> dict[str, Any]:
    card = parse_card_code(row.get("card_code") or "")
    bhxh = (row.get("bhxh_number") or "").strip() or card.bhxh_number
    if bhxh and not (len(bhxh) == 10 and is_digits(bhxh)):
        raise ValueError("bhxh_number is not 10 digits")
    cccd = (row.get("cccd_number") or "").strip() or None
    if cccd and not (len(cccd) == 12 and is_digits(cccd)):
        raise ValueError("cccd_number is not 12 digits")
    name = normalize_text(row.get("full_name") or "")
    if not name:
        raise ValueError("full_name is empty")
    sex = parse_sex(row.get("sex") or "")
    area = (row.get("area_code") or "").strip().upper() or None
    if area not in (None, "K1", "K2", "K3"):
        raise ValueError("area_code is not K1/K2/K3")
    return {
        "card_code": card.code, "bhxh_number": bhxh, "cccd_number": cccd, "full_name": name,
        "date_of_birth": parse_birth_date(row.get("date_of_birth") or "").iso(),
        "sex": sex.value if sex else None,
        "valid_from": _day_iso(row.get("valid_from")), "valid_to": _day_iso(row.get("valid_to")),
        "registered_facility": (row.get("registered_facility") or "").strip().upper() or None,
        "area_code": area, "five_years_date": _day_iso(row.get("five_years_date")),
        "benefit_level": card.benefit_digit,
    }
