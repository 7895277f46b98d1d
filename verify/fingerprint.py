"""Short keyed fingerprints: how logs and events name a card or payload without revealing it.

HMAC-SHA256 under the terminal's own key, cut to 12 hex digits: enough to correlate events
on one terminal, useless for recovering an ID number by trying all of them without the key.
"""

from __future__ import annotations

import hashlib
import hmac

KEY_BYTES = 32
FINGERPRINT_HEX = 12


def fingerprint(key: bytes, data: str | bytes) -> str:
    if len(key) < 16:
        raise ValueError("fingerprint key too short")
    # surrogatepass: a lone surrogate that slipped past a boundary still gets a fingerprint,
    # never a UnicodeEncodeError (boundaries refuse such text with a clear error).
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    return hmac.new(key, raw, hashlib.sha256).hexdigest()[:FINGERPRINT_HEX]
