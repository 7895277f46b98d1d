"""What the verification path hands on: a decided :class:`Verification`, who asked
(:class:`Actor`), how an error reaches staff (:func:`error_json`), and a card image's draft
(:func:`card_text_json`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from verify.eligibility import Eligibility, notice_message
from verify.model import Credential
from verify.tables import Tables


@dataclass(frozen=True, slots=True)
class Verification:
    credential: Credential
    eligibility: Eligibility
    registry_ms: float | None = None  # time spent waiting for the registry (Server-Timing)

    def to_json(self) -> dict[str, Any]:
        return {**self.eligibility.to_json(), "credential": self.credential.to_json()}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who looked: the logged-in staff member, the HIS token, or (loopback desk, CLI) the
    configured default officer. The registry is told the officer's name and CCCD; the audit
    records ``kind:name`` and the officer's keyed fingerprint."""

    kind: str                  # "staff" | "his" | "desk"
    name: str                  # username, token name, or "default"
    officer_name: str | None = None  # None: the configured officer
    officer_id: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"


DESK = Actor("desk", "default")


class StaffError(Protocol):
    """Any of our errors: a code for machines and a sentence per language for staff."""

    code: str
    vi: str
    en: str


def error_json(error: StaffError, fp: str | None = None) -> dict[str, Any]:
    """How an input or registry error reaches the page and the API: what to do, no data."""
    out: dict[str, Any] = {"code": error.code, "vi": error.vi, "en": error.en}
    if fp:
        out["raw_fingerprint"] = fp
    return out


# What a card image's draft shows the staff page: the fields of the manual-entry form and
# what else helps staff compare. Never the chip's access key (it is offered to the reader,
# not sent to browsers).
CARD_TEXT_FIELDS = ("kind", "read_from", "reader", "raw_fingerprint", "id_number",
                    "old_id_number", "card_code", "full_name", "date_of_birth", "sex",
                    "expiry_date", "valid_from", "registered_facility")


def card_text_json(credential: Credential, tables: Tables, *, key_offered: bool
                   ) -> dict[str, Any]:
    """The ``card_text`` event: the draft's fields under ``fields`` (each one read from the
    card), whether the chip's key was offered, and what staff do next (messages.toml)."""
    full = credential.to_json()
    fields = {k: v for k, v in full.items() if k in CARD_TEXT_FIELDS[4:]}
    notice = "card_mrz_key" if key_offered else "card_text_draft"
    out = {k: full[k] for k in CARD_TEXT_FIELDS[:4] if k in full}
    out.update({"fields": fields, "key_offered": key_offered,
                "messages": [notice_message(tables, notice).to_json()]})
    return out
