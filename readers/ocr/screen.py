"""Reading an e-card on a phone screen (VssID's BHYT card, VNeID's e-ID) when its QR does not
read — pure, like ``read.py``.

The camera adapter (``readers/devices/camera/screen.py``) finds the card panel inside the
screen and binds a :class:`~readers.ocr.read.FieldReader` to it; this module chooses the
screen layout by the panel's title words and reads its fields. The layouts and what is
assumed about the apps are in ``layouts.py`` (SCREEN_LAYOUTS).
"""

from __future__ import annotations

from readers.ocr.layouts import SCREEN_LAYOUTS, SCREEN_TITLE, CardLayout
from readers.ocr.read import CardText, FieldReader, match_title, read_fields


def match_screen_title(title: str) -> CardLayout | None:
    """The one screen layout the panel's title names."""
    return match_title(title, SCREEN_LAYOUTS)


def read_screen(reader: FieldReader) -> CardText | None:
    """The fields of the e-card panel in view, or None when its title is not one we know."""
    layout = match_screen_title(reader(SCREEN_TITLE)[0])
    return None if layout is None else read_fields(layout, reader)
