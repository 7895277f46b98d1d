"""What the verification path hands on: a decided :class:`Verification`, who asked
(:class:`Actor`), and how an error reaches staff (:func:`error_json`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from verify.eligibility import Eligibility
from verify.model import Credential


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
