"""The TD1 MRZ from OCR text (ICAO 9303-3 §4, 9303-5 §4.2): tolerant cleanup, strict checks.

OCR confuses O/0, I/1, S/5, B/8, Z/2 and drops or adds a filler here and there (in OCR-B it
reads many a filler ``<`` as K). The cleanup
knows which positions of TD1 hold digits and which hold letters and repairs only those
confusions; then ``readers.emrtd.mrz.parse_td1`` checks every check digit. A read whose check
digits fail is not used — there is no "closest valid" search.
"""

from __future__ import annotations

import re

from readers.emrtd.mrz import Td1, parse_td1
from readers.errors import MrzError

LINE = 30
_TO_DIGIT = str.maketrans({"O": "0", "Q": "0", "D": "0", "U": "0", "I": "1", "L": "1",
                           "Z": "2", "S": "5", "B": "8", "G": "6", "T": "7"})
_TO_LETTER = str.maketrans({"0": "O", "1": "I", "2": "Z", "5": "S", "8": "B", "6": "G"})
# TD1 positions (0-based, per line) that hold digits on Vietnamese cards: line 1 the
# document number (9 digits, ID's last 9), its check digit, the 12-digit ID and its check;
# line 2 birth, check, expiry, check and the composite check.
_L1_DIGITS = set(range(5, 27)) | {29}
_L2_DIGITS = set(range(0, 7)) | set(range(8, 15)) | {29}
_L1_LETTERS = set(range(0, 5))
_TD1_CODES = "IAC1T"  # TD1 document codes begin I, A or C (9303-5 §4.2.2); 1 and T: misread I
_L2_LETTERS = {7, 15, 16, 17}


def _lines(text: str) -> list[str]:
    """Candidate MRZ lines: upper case, spaces dropped, « and other look-alikes as ``<``."""
    out = []
    for raw in text.upper().splitlines():
        s = re.sub(r"[«‹(\[{]", "<", raw)
        s = re.sub(r"[^A-Z0-9<]", "", s)
        if len(s) >= 4:
            out.append(s)
    return out


def _fit(line: str, *, short_ok: bool = False) -> str | None:
    """A line of 30: fillers added or cut at the end only (where OCR loses or invents them);
    at most two lost unless ``short_ok`` (line 3, the name, checked by nothing)."""
    if len(line) == LINE:
        return line
    if len(line) < LINE - 2 and not short_ok:
        return None
    if len(line) < LINE:
        return line + "<" * (LINE - len(line))
    if set(line[LINE:]) <= {"<"}:
        return line[:LINE]
    return None


def _repair(line: str, digits: set[int], letters: set[int]) -> str:
    chars = list(line)
    for i, ch in enumerate(chars):
        if i in digits:
            chars[i] = ch.translate(_TO_DIGIT)
        elif i in letters:
            chars[i] = ch.translate(_TO_LETTER)
    return "".join(chars)


def _variants(line: str) -> list[tuple[str, bool]]:
    """The line fitted to 30, and — when OCR added one character — each line with one
    character taken out (marked: such a read must also pass the ID cross-check)."""
    fitted = _fit(line)
    out = [(fitted, False)] if fitted is not None else []
    if len(line) == LINE + 1 and fitted is None:
        out += [(line[:k] + line[k + 1:], True) for k in range(len(line))]
    return out


def _vn_filled(line: str) -> str | None:
    """Line 2 of a Vietnamese card rebuilt: its optional data (positions 18–28) is all fillers,
    which OCR-B makes OCR read as K or C, or lose and add; kept are the 18 characters before
    and the composite check digit after (which covers the fillers too). None when the middle
    holds a digit (data, not fillers) or the line is far from 30."""
    if not LINE - 4 <= len(line) <= LINE + 4 or any(ch.isdigit() for ch in line[18:-1]):
        return None
    return line[:18] + "<" * 11 + line[-1]


def _checked(l1: str, l2: str, l3: str) -> Td1 | None:
    """The lines as read, else with the Vietnamese card's digit/letter positions repaired."""
    for text in (l1 + l2 + l3, _repair(l1, _L1_DIGITS, _L1_LETTERS)
                 + _repair(l2, _L2_DIGITS, _L2_LETTERS) + l3):
        try:
            return parse_td1(text)
        except MrzError:
            continue
    return None


def _vn_id_agrees(td1: Td1) -> bool:
    """Vietnamese cards: the optional data's 12-digit ID ends in the document number."""
    return td1.id_number is not None and td1.id_number[3:] == td1.document_number


def read_td1(text: str) -> Td1 | None:
    """The MRZ in ``text`` with every check digit holding, or None. Line 3 (the name) has no
    check digit and is taken as read, letters only. A line 1 or 2 one character too long is
    tried with each character taken out; such a read is kept only when the check digits hold
    *and* line 1's ID ends in its document number — two independent checks, so a deletion
    that happens to satisfy one check digit is still refused."""
    lines = _lines(text)
    for i in range(len(lines) - 1):
        # Line 3 (the name) may be lost to glare: the key is in lines 1 and 2.
        l3 = _fit(lines[i + 2][:LINE] if i + 2 < len(lines) else "", short_ok=True)
        if l3 is None or lines[i][0] not in _TD1_CODES:
            continue
        l3 = l3.translate(_TO_LETTER)
        found: list[Td1] = []
        second = _variants(lines[i + 1])
        filled = _vn_filled(lines[i + 1])
        if filled is not None and all(filled != v for v, _ in second):
            second.append((filled, True))  # rebuilt: must pass the ID cross-check too
        for l1, cut1 in _variants(lines[i]):
            for l2, cut2 in second:
                td1 = _checked(l1, l2, l3)
                if td1 is not None and (not (cut1 or cut2) or _vn_id_agrees(td1)):
                    found.append(td1)
        if len({(f.document_number, f.date_of_birth, f.date_of_expiry) for f in found}) == 1:
            return found[0]
    return None


def mrz_name(td1: Td1) -> str | None:
    """``SURNAME<<GIVEN<NAMES`` as ``SURNAME GIVEN NAMES`` (no diacritics: the MRZ has none)."""
    words = [w for w in td1.names.replace("<", " ").split() if w.isalpha()]
    return " ".join(words) or None
