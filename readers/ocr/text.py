"""OCR text → raw field strings. Pure; nothing here decides what to trust (``verify/ocr.py``).

Each function returns the value in its printed form, or None when the text does not hold
exactly one well-shaped value — it never fills in a missing character. The only repairs are
the classic OCR confusions inside a field that can only hold digits (O→0, I→1, …).
"""

from __future__ import annotations

import re
import unicodedata

# Letters tesseract gives for digits in a digits-only field.
_AS_DIGIT = str.maketrans({"O": "0", "o": "0", "Q": "0", "D": "0", "U": "0", "I": "1",
                           "l": "1", "i": "1", "|": "1", "!": "1", "Z": "2", "z": "2",
                           "S": "5", "s": "5", "B": "8", "G": "6", "b": "6", "T": "7",
                           "g": "9", "q": "9"})
_DATE = re.compile(r"([0-9]{2})[/.-]?([0-9]{2})[/.-]?([0-9]{4})")
_SLASH_AS = "/17"  # a thin slash is read as these
_NAME_CHARS = re.compile(r"[^\w\s]|[\d_]")
_CODE15 = re.compile(r"[A-Z]{2}[1-5][0-9]{12}")


def fold(text: str) -> str:
    """Upper case without diacritics (``Đ`` → ``D``): how titles and words are compared."""
    s = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in s if not unicodedata.combining(ch)).upper()


def as_digits(text: str) -> str:
    return text.translate(_AS_DIGIT)


def digit_run(text: str, length: int) -> str | None:
    """The one run of exactly ``length`` digits (spaces inside ignored), else None."""
    runs = re.findall(r"[0-9]+", re.sub(r"(?<=\d)[ .](?=\d)", "", as_digits(text.strip())))
    found = [r for r in runs if len(r) == length]
    return found[0] if len(found) == 1 and len(runs) == 1 else None


def date_text(text: str) -> str | None:
    """``dd/mm/yyyy`` as printed (the day need not exist yet: verify checks), else None."""
    s = re.sub(r"\s+", "", as_digits(text))
    if len(s) == 10 and s[2] in _SLASH_AS and s[5] in _SLASH_AS:
        s = f"{s[:2]}/{s[3:5]}/{s[6:]}"  # dd/mm/yyyy: a slash read as 1 or 7 where one must be
    found = _DATE.findall(s)
    if len(found) != 1:
        return None
    d, m, y = found[0]
    return f"{d}/{m}/{y}"


def name_text(text: str) -> str | None:
    """A Vietnamese full name in capitals: at least two words of letters, NFC."""
    s = unicodedata.normalize("NFC", text)
    s = _NAME_CHARS.sub(" ", s)
    words = [w for w in s.split() if w.isalpha()]
    while words and len(words[-1]) == 1:  # a stray mark read as a letter (no name has one)
        words.pop()
    while words and len(words[0]) == 1:
        words.pop(0)
    if len(words) < 2 or any(not w.isupper() for w in words):
        return None
    return " ".join(words)


def sex_text(text: str) -> str | None:
    """``Nam`` or ``Nữ``."""
    words = set(re.findall(r"[A-Z]+", fold(text)))
    if words & {"NAM", "MALE"} and not words & {"NU", "FEMALE"}:
        return "Nam"
    if words & {"NU", "FEMALE"} and not words & {"NAM", "MALE"}:
        return "Nữ"
    return None


def card_code_text(text: str) -> str | None:
    """A BHYT card code: the 10-digit BHXH number (2021 model) or the 15-character code.

    In a 15-character code only the benefit digit and the province (characters 3–5), digits
    by the code's structure, are taken from a letter that looks like one (O → 0). The last
    ten are the BHXH number — or, on cards issued before it, letters and digits
    (``DN479GA78900007``): a letter there may be what is printed, so a tail read with any
    letter is left for staff to type, never turned into digits (``GB7…`` is not ``687…``)."""
    s = re.sub(r"[\s-]", "", text.upper())
    s = "S" + s[1:] if s.startswith("$") else s  # read with no whitelist (a screen's code)
    if len(s) == 15:
        code = s[:2] + as_digits(s[2:5]) + s[5:]
        return code if _CODE15.fullmatch(code) else None
    return digit_run(text, 10)


def line_text(text: str) -> str | None:
    """Free text on one line (a facility name), whitespace collapsed."""
    s = " ".join(unicodedata.normalize("NFC", text).split())
    return s or None
