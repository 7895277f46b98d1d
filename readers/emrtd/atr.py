"""What the answer-to-reset says about the card: its historical bytes and whether it accepts
extended-length APDUs (ISO/IEC 7816-3 §8.2, 7816-4 §8.1.1.2.7 card capabilities)."""

from __future__ import annotations

from readers.errors import TlvError


def historical_bytes(atr: bytes) -> bytes:
    if len(atr) < 2 or atr[0] not in (0x3B, 0x3F):
        raise TlvError("not an ATR")
    k = atr[1] & 0x0F
    y = atr[1] >> 4
    i = 2
    while True:
        i += bin(y & 0x7).count("1")           # TA, TB, TC present
        if not y & 0x8:                        # no TD: interface bytes end
            break
        if i >= len(atr):
            raise TlvError("ATR truncated in its interface bytes")
        td = atr[i]
        y = td >> 4
        i += 1
    if i + k > len(atr):
        raise TlvError("ATR truncated in its historical bytes")
    return atr[i:i + k]


def supports_extended_length(atr: bytes) -> bool:
    """True when the card-capabilities object (compact TLV tag 7, 3 bytes) sets b7 of its
    third byte. Anything unreadable means "no": short APDUs always work."""
    try:
        hist = historical_bytes(atr)
    except TlvError:
        return False
    if not hist or hist[0] != 0x80:
        return False
    i = 1
    while i < len(hist):
        tag, length = hist[i] >> 4, hist[i] & 0x0F
        value = hist[i + 1:i + 1 + length]
        if tag == 0x7 and len(value) >= 3:
            return bool(value[2] & 0x40)
        i += 1 + length
    return False
