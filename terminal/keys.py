"""The terminal's key material beyond the master key (``terminal/offline.py`` loads that one):
one key per purpose derived from it, and the snapshot reading key read from its file."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from terminal.settings import SettingsError


def derive_key(master: bytes, label: str) -> bytes:
    return hmac.new(master, label.encode(), hashlib.sha256).digest()


def read_reading_key(path: str) -> bytes | None:
    """64 hex digits or at least 32 raw bytes; None when not configured."""
    if not path:
        return None
    raw = Path(path).read_bytes()
    text = raw.strip()
    try:
        if len(text) == 64:
            return bytes.fromhex(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        pass
    if len(raw) < 32:
        raise SettingsError("invalid setting cache.reading_key_file "
                            "(TIEPDON_CACHE_READING_KEY_FILE): not a 32-byte key")
    return raw
