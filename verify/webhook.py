"""The webhook's body, signature and retry schedule (pure: the time and the jitter are passed in).

Body: the field names another desk-reader vendor's app POSTs to an HIS (``id_card``,
``full_name`` … ``id_img``; public HIS integration documents), so an HIS endpoint written for it
takes ``tiepdon``'s posts unchanged, plus what only ``tiepdon`` knows: ``eligibility`` (the
desk's decision), ``card_code``, ``credential_kind`` and ``event_id`` (the idempotency key, also
sent as the ``Idempotency-Key`` header). Dates are ``dd/MM/yyyy``; absent values ``""``.

Signature: ``X-Tiepdon-Signature: sha256=<hex>``, the HMAC-SHA256 under ``[his]
webhook_secret`` of ``<X-Tiepdon-Timestamp>.<body bytes>`` — the timestamp is signed so an
old post cannot be replayed as new (README: HIS feeds shows the receiver's check).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import date
from typing import Any

from verify.his import card_fields
from verify.hn212 import b64
from verify.model import Credential

SIGNATURE_HEADER = "X-Tiepdon-Signature"
TIMESTAMP_HEADER = "X-Tiepdon-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
FIRST_RETRY_SECONDS = 2.0
MAX_RETRY_SECONDS = 300.0  # an HIS back after an outage is tried again within five minutes


def _dmy(d: date | None) -> str:
    return d.strftime("%d/%m/%Y") if d else ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def body(credential: Credential, eligibility: Mapping[str, Any], *, event_id: str,
         photo: bytes | None) -> dict[str, Any]:
    """The vendor's card fields, then what tiepdon adds; for chip reads the checks and the
    ``verdict`` (verified | copy_suspected | not_verified | incomplete)."""
    c = credential
    checks = c.chip.reported() if c.chip is not None else None
    f = card_fields(c, _dmy)
    return {
        "id_card": f["id"], "full_name": f["name"], "date_of_birth": f["birth"],
        "gender": f["sex"], "nationality": f["nationality"], "race": f["ethnicity"],
        "religion": f["religion"], "place_of_origin": f["origin"],
        "place_of_residence": f["residence"], "personal_identification": f["features"],
        "date_of_issue": f["issued"], "date_of_expiry": f["expires"],
        "father_name": f["father"], "mother_name": f["mother"], "wife_name": f["spouse"],
        "old_id_card": f["old_id"],
        "id_img": b64(photo),
        # Added by tiepdon.
        "card_code": c.card_code or "",
        "credential_kind": c.kind.value,
        # What the chip proved, as strings ("" for a QR or typed check); an unfinished read
        # proved nothing after the identity (verify/evidence.py: ChipEvidence.reported).
        "verdict": checks.verdict if checks else "",
        "passive_auth": checks.passive_auth if checks else "",
        "active_auth": checks.active_auth if checks else "",
        "chip_auth": checks.chip_auth if checks else "",
        "event_id": event_id,
        "eligibility": dict(eligibility),
    }


def signature(secret: bytes, timestamp: int, payload: bytes) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + payload, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def valid_signature(secret: bytes, timestamp: int, payload: bytes, presented: str) -> bool:
    """The receiver's check (used by the tests' HIS, and shown in the README)."""
    return hmac.compare_digest(signature(secret, timestamp, payload), presented)


def retry_after(attempts: int, jitter: float, *, first: float = FIRST_RETRY_SECONDS,
                most: float = MAX_RETRY_SECONDS) -> float:
    """Seconds before the next try after ``attempts`` failures: doubling from 2 s to 5 min,
    with ``jitter`` in [0, 1) spreading it by up to a quarter (desks that lost the same HIS
    do not all come back at once)."""
    base: float = min(most, first * 2.0 ** max(0, min(attempts, 32) - 1))
    return base * (1 + 0.25 * jitter)
