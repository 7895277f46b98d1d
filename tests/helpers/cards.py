"""Rendered card images for the OCR tests (readers/doubles/cards.py) and the engine they use.

Needs Debian's tesseract-ocr-vie/-eng and the fonts scripts/setup installs; Pillow draws.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date
from functools import cache
from typing import Any

import numpy as np

from readers.doubles.cards import (
    FRAME,
    Person,
    Sample,
    desk,
    draw_card,
    draw_mrz_back,
    person,
    place_on_desk,
    sample,
)
from readers.doubles.vcard import DEMO_PERSON, compose_mrz
from readers.ocr.layouts import CardModel
from terminal.resources import load_tables
from verify.tables import Tables

TODAY = date(2026, 12, 1)


def clean(kind: str, seed: int = 7) -> Sample:
    return sample(kind, random.Random(f"unit:{seed}:{kind}"), clean=True)


def degraded(kind: str, seed: int = 7) -> Sample:
    return sample(kind, random.Random(f"unit:{seed}:{kind}"))


@cache
def tables() -> Tables:
    return load_tables()


# -- the virtual card's holder, printed (the camera tests) --------------------------------------
def demo_holder() -> Person:
    """``readers.doubles.vcard.DEMO_PERSON`` (Nguyễn Tiến Đạt, the simulator's eligible
    patient) as the card renderer's person: the same ID, name, birth date, sex and expiry."""
    d = DEMO_PERSON
    assert d.expiry_date is not None
    base = person(random.Random("unit:demo-holder"))
    return replace(base, id_number=d.id_number, full_name=d.full_name.upper(),
                   date_of_birth=d.date_of_birth, male=d.sex == "Nam", expiry=d.expiry_date)


def demo_back() -> Any:
    """A clean desk frame of the demo card's back: the MRZ the virtual chip answers to."""
    rnd = random.Random("unit:demo-back")
    return place_on_desk(draw_mrz_back(compose_mrz(DEMO_PERSON), rnd), rnd, tilt=6)[0]


def demo_front() -> Any:
    """A clean desk frame of the demo holder's CCCD 2021 front (its QR worn: it does not
    read, so the print is all there is)."""
    rnd = random.Random("unit:demo-front")
    return place_on_desk(draw_card(CardModel.CCCD_2021, demo_holder(), rnd), rnd, tilt=6)[0]


def empty_desk(seed: int = 7) -> Any:
    return desk(random.Random(f"unit:desk:{seed}"))


def plain_desk() -> Any:
    """A plain grey desk: nothing on it for the decoders to chew on (the textured one costs
    the QR chain's hard passes most of a second a frame), so clip timings stay steady."""
    return np.full((FRAME[1], FRAME[0], 3), 180, np.uint8)
