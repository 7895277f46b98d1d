"""What a chip read proved, as one frozen value from the reader to the edges — pure.

The reader (``readers/emrtd/chip.py``) hands over a :class:`~readers.emrtd.chip.ChipRead`;
:func:`evidence_of` turns it into a :class:`ChipEvidence` once, and that value is what the
eligibility rules, the staff page, the HIS feeds, the webhook and the CLI read. It becomes
JSON only at those edges (:meth:`ChipEvidence.to_json`, CONTRACT.md's chip fields).

Two definitions live here and nowhere else:

- :meth:`ChipEvidence.verdict` — ``verified`` only when every check the chip offers passed and
  passive authentication reached a trusted CSCA; ``copy_suspected`` when the chip failed to
  prove its key (Active or Chip Authentication); ``incomplete`` when the read ended early;
  otherwise ``not_verified``. The daemon's ``chip`` event and feeds and the CLI's exit code
  both use it.
- :meth:`ChipEvidence.reported` — what the checks are called on the wire: an unfinished read
  proved nothing after the identity (``incomplete`` / ``not_verified``), whatever the partial
  read had seen.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from typing import Any

from readers.emrtd.chip import ChipIdentity, ChipRead
from readers.emrtd.lds import Photo
from readers.emrtd.pa import PassiveAuth, PaStatus


class Check(StrEnum):
    """An Active or Chip Authentication outcome."""

    PASSED = "passed"
    FAILED = "failed"              # the chip could not prove its key: it may be a copy
    NOT_SUPPORTED = "not_supported"  # the chip offers no such check
    NOT_VERIFIED = "not_verified"  # the chip offers it, this terminal could not run it


class Completeness(StrEnum):
    IDENTITY = "identity"      # only the identity files so far (the read goes on)
    COMPLETE = "complete"      # every file and check the chip offers
    INCOMPLETE = "incomplete"  # the read ended early (card lifted, error) after the identity


class Verdict(StrEnum):
    VERIFIED = "verified"
    NOT_VERIFIED = "not_verified"
    COPY_SUSPECTED = "copy_suspected"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True, slots=True)
class MrzSummary:
    document_number: str
    date_of_birth: str
    date_of_expiry: str
    sex: str
    nationality: str

    def to_json(self) -> dict[str, str]:
        return {"document_number": self.document_number, "date_of_birth": self.date_of_birth,
                "date_of_expiry": self.date_of_expiry, "sex": self.sex,
                "nationality": self.nationality}


@dataclass(frozen=True, slots=True)
class ChipDetails:
    """What DG13 and DG1 say beyond the credential's own fields (CONTRACT.md's chip fields)."""

    mrz: MrzSummary
    access: str                       # bac | pace
    nationality: str | None = None
    ethnicity: str | None = None
    religion: str | None = None
    place_of_origin: str | None = None
    place_of_residence: str | None = None
    identifying_features: str | None = None
    father_name: str | None = None
    mother_name: str | None = None
    spouse_name: str | None = None
    expiry_date: date | None = None   # None: "Không thời hạn" or unreadable


@dataclass(frozen=True, slots=True)
class PhotoInfo:
    format: str
    bytes: int

    @classmethod
    def of(cls, photo: Photo | None) -> PhotoInfo | None:
        return cls(photo.format, len(photo.image)) if photo is not None else None


@dataclass(frozen=True, slots=True)
class Reported:
    """The checks as the wire names them (webhook body, HN212 id 5, the ``chip`` event)."""

    passive_auth: str
    active_auth: str
    chip_auth: str
    verdict: str


@dataclass(frozen=True, slots=True)
class ChipEvidence:
    details: ChipDetails
    passive_auth: PassiveAuth
    active_auth: Check = Check.NOT_SUPPORTED
    chip_auth: Check = Check.NOT_SUPPORTED
    chip_auth_reason: str | None = None
    completeness: Completeness = Completeness.COMPLETE
    photo: PhotoInfo | None = None
    apdus: int = 0

    @property
    def verdict(self) -> Verdict:
        if self.completeness is Completeness.INCOMPLETE:
            return Verdict.INCOMPLETE
        if Check.FAILED in (self.active_auth, self.chip_auth):
            return Verdict.COPY_SUSPECTED
        if self.completeness is Completeness.IDENTITY:
            return Verdict.NOT_VERIFIED  # Active Authentication is still to come
        if (self.passive_auth.status is PaStatus.AUTHENTIC
                and Check.NOT_VERIFIED not in (self.active_auth, self.chip_auth)):
            return Verdict.VERIFIED
        return Verdict.NOT_VERIFIED

    @property
    def failed_checks(self) -> list[str]:
        """``AA`` / ``CA`` for each check the chip failed (a possible copy)."""
        return [label for label, check in (("AA", self.active_auth), ("CA", self.chip_auth))
                if check is Check.FAILED]

    @property
    def unverified_checks(self) -> list[str]:
        """``AA`` / ``CA`` for each check the chip offers that this terminal could not run."""
        return [label for label, check in (("AA", self.active_auth), ("CA", self.chip_auth))
                if check is Check.NOT_VERIFIED]

    def unfinished(self) -> ChipEvidence:
        """The read ended after the identity was shown: nothing after it was proved."""
        return replace(self, completeness=Completeness.INCOMPLETE)

    def reported(self) -> Reported:
        if self.completeness is Completeness.INCOMPLETE:
            return Reported("incomplete", Check.NOT_VERIFIED.value, Check.NOT_VERIFIED.value,
                            Verdict.INCOMPLETE.value)
        return Reported(self.passive_auth.status.value, self.active_auth.value,
                        self.chip_auth.value, self.verdict.value)

    def to_json(self) -> dict[str, Any]:
        """CONTRACT.md's chip fields, merged into the chip credential's JSON."""
        d = self.details
        out: dict[str, Any] = {
            key: value for key, value in (
                ("nationality", d.nationality), ("ethnicity", d.ethnicity),
                ("religion", d.religion), ("place_of_origin", d.place_of_origin),
                ("place_of_residence", d.place_of_residence),
                ("identifying_features", d.identifying_features),
                ("father_name", d.father_name), ("mother_name", d.mother_name),
                ("spouse_name", d.spouse_name)) if value is not None}
        out.update({
            "expiry_date": d.expiry_date.isoformat() if d.expiry_date else None,
            "mrz": d.mrz.to_json(),
            "access": d.access,
            "photo": ({"format": self.photo.format, "bytes": self.photo.bytes}
                      if self.photo else None),
            "passive_auth": self.passive_auth.to_json(),
            "active_auth": self.active_auth.value,
            "chip_auth": self.chip_auth.value,
            "apdus": self.apdus,
            # one verdict for every path that prints a chip (card read, the chip routes, the
            # events): it was only the CLI's
            "verdict": self.verdict.value,
        })
        if self.chip_auth_reason is not None:  # why CA failed or could not be run
            out["chip_auth_reason"] = self.chip_auth_reason
        if self.completeness is Completeness.INCOMPLETE:
            out["incomplete"] = True
        return out


def _check(value: str) -> Check:
    """The reader's words for AA/CA; an unknown word is never read as a pass."""
    try:
        return Check(value)
    except ValueError:
        return Check.NOT_VERIFIED


def evidence_of(identity: ChipIdentity, details: ChipDetails,
                read: ChipRead | None = None) -> ChipEvidence:
    """The evidence at identity time (``read`` None) or after the whole read."""
    if read is None:  # AA is still to come; CA has already run (before DG1 was read)
        return ChipEvidence(details, identity.passive_auth, chip_auth=_check(identity.chip_auth),
                            chip_auth_reason=identity.chip_auth_reason,
                            completeness=Completeness.IDENTITY)
    return ChipEvidence(details, read.passive_auth, active_auth=_check(read.active_auth),
                        chip_auth=_check(read.chip_auth), chip_auth_reason=read.chip_auth_reason,
                        completeness=Completeness.COMPLETE, photo=PhotoInfo.of(read.photo),
                        apdus=read.apdus)
