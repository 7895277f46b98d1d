"""APDUs (ISO/IEC 7816-4) and BER-TLV, strict: a length that runs past the data, an indefinite
length or trailing bytes raise :class:`TlvError`; nothing is guessed.

The card port is one method, ``send_and_receive(apdu) -> (data, sw)`` (yubikit's shape); secure
messaging and chaining stack around it as processors with the same method.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from readers.errors import TlvError


class SW(IntEnum):
    OK = 0x9000
    END_OF_FILE = 0x6282
    AUTH_FAILED = 0x6300
    WRONG_LENGTH = 0x6700
    SECURITY_NOT_SATISFIED = 0x6982
    SM_DATA_MISSING = 0x6987
    SM_DATA_INCORRECT = 0x6988
    WRONG_DATA = 0x6A80
    FILE_NOT_FOUND = 0x6A82
    WRONG_P1P2 = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00


INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_GET_CHALLENGE = 0x84
INS_EXTERNAL_AUTHENTICATE = 0x82
INS_INTERNAL_AUTHENTICATE = 0x88
CLA_SM = 0x0C


class CardPort(Protocol):
    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]: ...


@dataclass(frozen=True, slots=True)
class Command:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None  # None: no Le; 0 means "up to 256" (short) or "up to 65536" (ext)
    extended: bool = False


def encode_command(c: Command) -> bytes:
    """Cases 1–4, short or extended length (ISO 7816-4 §5.1)."""
    header = bytes([c.cla, c.ins, c.p1, c.p2])
    if not c.extended:
        if len(c.data) > 255 or (c.le is not None and not 0 <= c.le <= 256):
            raise ValueError("short APDU limits exceeded")
        body = bytes([len(c.data)]) + c.data if c.data else b""
        if c.le is not None:
            body += bytes([c.le & 0xFF])
        return header + body
    if len(c.data) > 65535 or (c.le is not None and not 0 <= c.le <= 65536):
        raise ValueError("extended APDU limits exceeded")
    body = b"\x00" + len(c.data).to_bytes(2, "big") + c.data if c.data else b""
    if c.le is not None:
        le = (c.le & 0xFFFF).to_bytes(2, "big")
        body += le if c.data else b"\x00" + le
    return header + body


def parse_command(apdu: bytes) -> Command:
    """The card side of :func:`encode_command` (the virtual card uses it)."""
    if len(apdu) < 4:
        raise TlvError("APDU shorter than its header")
    cla, ins, p1, p2 = apdu[:4]
    rest = apdu[4:]
    if not rest:
        return Command(cla, ins, p1, p2)
    if len(rest) == 1:
        return Command(cla, ins, p1, p2, le=rest[0] or 256)
    if rest[0] != 0:  # short
        lc = rest[0]
        if len(rest) == 1 + lc:
            return Command(cla, ins, p1, p2, rest[1:])
        if len(rest) == 2 + lc:
            return Command(cla, ins, p1, p2, rest[1:-1], rest[-1] or 256)
        raise TlvError("APDU length does not match Lc")
    if len(rest) == 3:
        return Command(cla, ins, p1, p2, le=int.from_bytes(rest[1:], "big") or 65536,
                       extended=True)
    lc = int.from_bytes(rest[1:3], "big")
    if lc == 0 or len(rest) < 3 + lc:
        raise TlvError("APDU length does not match extended Lc")
    data, tail = rest[3:3 + lc], rest[3 + lc:]
    if not tail:
        return Command(cla, ins, p1, p2, data, extended=True)
    if len(tail) == 2:
        return Command(cla, ins, p1, p2, data, int.from_bytes(tail, "big") or 65536, True)
    raise TlvError("APDU has trailing bytes after extended Le")


# -- BER-TLV -----------------------------------------------------------------------------
MAX_TLV_LENGTH = 1 << 20  # no LDS file comes near 1 MiB; larger is an attack or garbage


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    if len(raw) > 3:
        raise ValueError("TLV length too large")
    return bytes([0x80 | len(raw)]) + raw


def encode_tag(tag: int) -> bytes:
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def encode_tlv(tag: int, value: bytes) -> bytes:
    return encode_tag(tag) + encode_length(len(value)) + value


def parse_tag(data: bytes, offset: int) -> tuple[int, int]:
    if offset >= len(data):
        raise TlvError("TLV truncated before its tag")
    first = data[offset]
    tag, offset = first, offset + 1
    if first & 0x1F == 0x1F:  # multi-byte tag: continue while b8 is set
        for _ in range(3):
            if offset >= len(data):
                raise TlvError("TLV truncated inside its tag")
            b = data[offset]
            tag, offset = (tag << 8) | b, offset + 1
            if not b & 0x80:
                break
        else:
            raise TlvError("TLV tag longer than 4 bytes")
    return tag, offset


def parse_length(data: bytes, offset: int) -> tuple[int, int]:
    if offset >= len(data):
        raise TlvError("TLV truncated before its length")
    first = data[offset]
    offset += 1
    if first < 0x80:
        return first, offset
    count = first & 0x7F
    if count == 0:
        raise TlvError("indefinite TLV length")
    if count > 3:
        raise TlvError("TLV length field too long")
    if offset + count > len(data):
        raise TlvError("TLV truncated inside its length")
    n = int.from_bytes(data[offset:offset + count], "big")
    if n > MAX_TLV_LENGTH:
        raise TlvError("TLV length too large")
    return n, offset + count


def parse_tlv(data: bytes, offset: int = 0) -> tuple[int, bytes, int]:
    """(tag, value, offset after it). Raises when the value runs past the data."""
    tag, offset = parse_tag(data, offset)
    n, offset = parse_length(data, offset)
    if offset + n > len(data):
        raise TlvError("TLV value runs past the data")
    return tag, data[offset:offset + n], offset + n


def parse_tlvs(data: bytes) -> list[tuple[int, bytes]]:
    """A sequence of TLVs that covers ``data`` exactly."""
    out: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        tag, value, offset = parse_tlv(data, offset)
        out.append((tag, value))
    return out


def unwrap_tlv(data: bytes, tag: int) -> bytes:
    """The value of a single TLV with ``tag`` covering ``data`` exactly."""
    got, value, end = parse_tlv(data)
    if got != tag:
        raise TlvError(f"expected tag {tag:X}, found {got:X}")
    if end != len(data):
        raise TlvError("trailing bytes after TLV")
    return value


def tlv_total_length(data: bytes) -> int:
    """Tag + length + value size of the TLV that starts ``data`` (sizes a file from its head)."""
    _, offset = parse_tag(data, 0)
    n, offset = parse_length(data, offset)
    return offset + n
