"""The terminal's key material beyond the master key (``terminal/offline.py`` loads that one):
one key per purpose derived from it (the snapshot reading key is read by
``terminal.settings.read_reading_key``)."""

from __future__ import annotations

import hashlib
import hmac


def derive_key(master: bytes, label: str) -> bytes:
    return hmac.new(master, label.encode(), hashlib.sha256).digest()
