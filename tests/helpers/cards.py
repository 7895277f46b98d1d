"""Rendered card images for the OCR tests (readers/doubles/cards.py) and the engine they use.

Needs Debian's tesseract-ocr-vie/-eng and the fonts scripts/setup installs; Pillow draws.
"""

from __future__ import annotations

import random
from datetime import date
from functools import cache

from readers.doubles.cards import Sample, sample
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
