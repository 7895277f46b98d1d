"""Identify the card model and read its fields, through a one-method port — pure.

The port (:class:`FieldReader`) is bound by the adapter to one rectified card image: given a
:class:`~readers.ocr.layouts.FieldSpec` it crops the box and returns the engine's text. This
module decides which boxes to read, in which order, and turns each text into a raw string.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any, Protocol

from readers.emrtd.mrz import Td1
from readers.ocr import text as t
from readers.ocr.layouts import LAYOUTS, MRZ, TITLE, CardLayout, CardModel, FieldSpec
from readers.ocr.mrz import mrz_name, read_td1


class TextEngine(Protocol):
    """An OCR engine (``readers/devices/ocr.py``): the text of a grey image (a numpy array)."""

    def text(self, image: Any, *, lang: str, whitelist: str = "", psm: int = 7
             ) -> tuple[str, int]: ...


class FieldReader(Protocol):
    """The text printed inside ``spec.box`` of the card in view (``""`` when none) and the
    engine's lowest word confidence for it (0–100). ``opinion`` 1, 2, …: the same box
    prepared other ways (opinions whose misreads differ from the first's); ``opinions``: how
    many there are."""

    opinions: int

    def __call__(self, spec: FieldSpec, *, opinion: int = 0) -> tuple[str, int]: ...


@dataclass(frozen=True, slots=True)
class CardText:
    """What one card image said: the model, each field as a raw string (absent when the text
    did not hold one well-shaped value), and for a back the checked MRZ."""

    model: CardModel
    fields: dict[str, str] = field(default_factory=dict)
    td1: Td1 | None = None


_PARSERS: dict[str, Callable[[str], str | None]] = {
    "id_number": lambda s: t.digit_run(s, 12),
    "full_name": t.name_text,
    "date_of_birth": t.date_text,
    "expiry_date": t.date_text,
    "valid_from": t.date_text,
    "sex": t.sex_text,
    "card_code": t.card_code_text,
    "registered_facility": t.line_text,
}


def _parse(layout: CardLayout, spec: FieldSpec, raw: str) -> str | None:
    if layout.model is CardModel.CMND and spec.name == "id_number":
        return t.digit_run(raw, 9) or t.digit_run(raw, 12)  # 9 digits; late CMNDs have 12
    return _PARSERS[spec.name](raw)


_TITLE_LOOKALIKES = str.maketrans({"1": "I", "0": "O", "5": "S", "8": "B", "|": "I"})
TITLE_SIMILARITY = 0.8  # a title word may have one misread letter in five


def has_words(folded: str, words: str) -> bool:
    """``words`` in the title text, exactly or with at most one letter in five misread (the
    title only chooses the layout: every field is still checked on its own)."""
    if words in folded:
        return True
    n = len(words)
    matcher = SequenceMatcher(autojunk=False)
    matcher.set_seq2(words)
    for i in range(max(1, len(folded) - n + 1)):
        matcher.set_seq1(folded[i:i + n])
        # cheap upper bounds first: most windows of a long text share too few letters
        if (matcher.real_quick_ratio() >= TITLE_SIMILARITY
                and matcher.quick_ratio() >= TITLE_SIMILARITY
                and matcher.ratio() >= TITLE_SIMILARITY):
            return True
    return False


def fold_title(title: str) -> str:
    """A title as its words are compared: folded, look-alike digits as letters, one space."""
    return " ".join(t.fold(title).translate(_TITLE_LOOKALIKES).split())


def match_title(title: str, layouts: tuple[CardLayout, ...] = LAYOUTS) -> CardLayout | None:
    """The one layout of ``layouts`` the title names (all of one set of its words present,
    none it refuses)."""
    folded = fold_title(title)
    hits = [lay for lay in layouts if lay.titled(lambda w: has_words(folded, w))]
    return hits[0] if len(hits) == 1 else None


def identify(reader: FieldReader) -> CardLayout | None:
    """A front's layout, by the words of its title (read a second way when the first names
    none); None for anything else (a back too)."""
    title = reader(TITLE)[0]
    layout = match_title(title)
    if layout is None and reader.opinions > 1 and _a_front_upright(title):
        layout = match_title(reader(TITLE, opinion=1)[0])
    return layout


# Words every front's header carries; seeing one means the card is a front, upright, and only
# the line naming the model was lost — worth a second read (a back or a card upside down is not).
_HEADER_WORDS = ("CONG HOA", "VIET NAM", "BAO HIEM", "SOCIALIST")


def _a_front_upright(title: str) -> bool:
    folded = fold_title(title)
    return any(has_words(folded, w) for w in _HEADER_WORDS)


def read_mrz(reader: FieldReader) -> Td1 | None:
    """The back's MRZ: each opinion in turn until one holds three lines whose check digits
    all hold (those make a misread visible, so every way of reading may be tried) — while
    what is read still looks like an MRZ."""
    for opinion in range(reader.opinions):
        text = reader(MRZ, opinion=opinion)[0]
        td1 = read_td1(text)
        if td1 is not None:
            return td1
        if sum("<<" in line for line in text.splitlines()) < 2:
            return None  # no MRZ there (a front, or the back upside down): no other reading
    return None


def read_card(reader: FieldReader) -> CardText | None:
    """Read the card in view: the front's fields, or the back's MRZ. None when the image is not
    a card this module knows (a bank card, a page, a desk) or an MRZ whose digits fail."""
    layout = identify(reader)
    if layout is None:
        td1 = read_mrz(reader)
        if td1 is None:
            return None
        name = mrz_name(td1)
        return CardText(CardModel.CCCD_BACK, {"mrz_name": name} if name else {}, td1)
    return read_fields(layout, reader)


def read_field(reader: FieldReader, layout: CardLayout, spec: FieldSpec) -> str | None:
    """One field's value. A key field (one with ``min_confidence``) read with doubt is kept
    only when another, differently prepared read of the box gives the same value: an engine's
    confidence alone lets through too few right reads, and two reads that agree rarely share
    a misread. A field marked ``confirm`` always needs that second read."""
    raw, confidence = reader(spec)
    value = _parse(layout, spec, raw)
    if confidence >= spec.min_confidence and not (spec.confirm and value is not None):
        return value
    seen = [value] if value is not None else []
    for opinion in range(1, reader.opinions):
        again = _parse(layout, spec, reader(spec, opinion=opinion)[0])
        if again is not None and again in seen:
            return again
        if again is not None:
            seen.append(again)
    return None


def read_fields(layout: CardLayout, reader: FieldReader) -> CardText:
    """Every field of a layout already chosen (a front's, or a phone screen's:
    ``readers/ocr/screen.py``), each through :func:`read_field`."""
    out: dict[str, str] = {}
    for spec in layout.fields:
        value = read_field(reader, layout, spec)
        if value is not None:
            out[spec.name] = value
    return CardText(layout.model, out)
