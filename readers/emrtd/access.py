"""Access keys for the chip from what the desk has: typed MRZ data, MRZ line 2, or a CCCD QR.

The QR gives the ID (document number = its last 9 digits) and the DOB but not the expiry,
which follows from the DOB and the issue date by the age-milestone rule (DOMAIN.md §4; Luật
Căn cước công dân 2014 Điều 21, Luật Căn cước 2023 Điều 21): cards expire on the birthday at
14 (cards issued from 2024-07-01), 25, 40 and 60; a card issued within 2 years before a
milestone runs to the next one; cards issued at 58 or later do not expire. The result is a
short list of candidates, most likely first; the reader stops at the first one the chip
accepts. PACE with the CAN (last 6 ID digits) will sit beside this as another key kind.
"""

from __future__ import annotations

from datetime import date

from readers.emrtd.mrz import AccessKey, CanKey

LAW_2023_FROM = date(2024, 7, 1)
NO_EXPIRY_AGE = 58
MAX_CANDIDATES = 3  # a chip may count failed attempts: never try more than a few
# What a no-expiry card writes as its MRZ expiry is unknown (DOMAIN.md §4 [open]); these are
# the plausible encodings, tried last.
NO_EXPIRY_GUESSES = ("991231", "000000")


def _birthday(dob: date, age: int) -> date:
    try:
        return dob.replace(year=dob.year + age)
    except ValueError:  # 29 February
        return date(dob.year + age, 3, 1)


def expiry_candidates(date_of_birth: date, issue_date: date) -> list[str]:
    """YYMMDD expiry candidates, most likely first."""
    milestones = ([14] if issue_date >= LAW_2023_FROM else []) + [25, 40, 60]
    if issue_date >= _birthday(date_of_birth, NO_EXPIRY_AGE):
        return list(NO_EXPIRY_GUESSES)
    ordered: list[date] = []
    for i, age in enumerate(milestones):
        birthday = _birthday(date_of_birth, age)
        if issue_date >= birthday:
            continue
        if birthday < _birthday(issue_date, 2) and i + 1 < len(milestones):
            # issued within 2 years before this milestone: valid to the next one
            ordered = [_birthday(date_of_birth, milestones[i + 1]), birthday]
        else:
            ordered = [birthday]
            if i + 1 < len(milestones):
                ordered.append(_birthday(date_of_birth, milestones[i + 1]))
        break
    out = [d.strftime("%y%m%d") for d in ordered]
    if not ordered:
        out = list(NO_EXPIRY_GUESSES)
    return out


def document_number_of(id_or_document_number: str) -> str:
    """The MRZ document number of a CCCD: the last 9 digits of the 12-digit ID (DOMAIN.md §4).
    Anything else is taken as the document number itself."""
    s = id_or_document_number
    return s[3:] if len(s) == 12 and s.isascii() and s.isdigit() else s


def can_of(id_number: str) -> str:
    """The CAN printed on a CCCD: the last 6 digits of the ID (DOMAIN.md §4)."""
    return id_number[-6:]


def keys_from_cccd(id_number: str, date_of_birth: date,
                   issue_date: date) -> list[AccessKey | CanKey]:
    """PACE with the CAN first (used when the chip offers PACE), then BAC candidates."""
    dob = date_of_birth.strftime("%y%m%d")
    doc = document_number_of(id_number)
    keys = [AccessKey(doc, dob, e) for e in expiry_candidates(date_of_birth, issue_date)]
    return [CanKey(can_of(id_number)), *keys[:MAX_CANDIDATES]]
