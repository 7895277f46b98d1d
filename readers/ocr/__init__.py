"""Reading a printed card from its picture — the pure core (issue 24).

    layouts.py  the card models as data: each field's box on the rectified card, language,
                character whitelist and page-segmentation mode; the title words that tell
                the models apart
    text.py     OCR text → raw field strings (digit confusions repaired, nothing guessed)
    mrz.py      the TD1 MRZ from OCR text: tolerant cleanup, then every check digit
    read.py     identify the model and read its fields through a :class:`FieldReader` port
    screen.py   the same for an e-card panel on a phone screen (VssID, VNeID) whose QR failed

No image library here: the camera adapter finds and rectifies the card and crops each box
(``readers/devices/camera/card.py``), the OCR adapter turns a crop into text
(``readers/devices/ocr.py``). What comes out is raw strings; ``verify/ocr.py`` decides what
to trust.
"""

from readers.ocr.layouts import LAYOUTS, Box, CardLayout, CardModel, FieldSpec
from readers.ocr.mrz import read_td1
from readers.ocr.read import CardText, FieldReader, TextEngine, identify, read_card

__all__ = ["LAYOUTS", "Box", "CardLayout", "CardModel", "CardText", "FieldReader", "FieldSpec",
           "TextEngine", "identify", "read_card", "read_td1"]
