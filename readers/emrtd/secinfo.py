"""SecurityInfos (EF.CardAccess, DG14) summarized for an interop report — pure.

ICAO 9303-11 §9.2: ``SecurityInfos ::= SET OF SecurityInfo``, each a SEQUENCE starting with a
protocol OID. What a field report needs is the shape, not the keys: every protocol OID, the
small integers after it (version, parameter id, key id) and, for a public key, how it is
encoded (its algorithm OID and whether the curve is named by OID, given explicitly, or by a
TR-03110 standardized parameter id). Key bytes are never copied out. Anything that does not
parse is reported as such, never raised.
"""

from __future__ import annotations

from typing import Any

from asn1crypto import core

from readers.emrtd.apdu import encode_tlv, parse_tlvs, unwrap_tlv
from readers.errors import TlvError

# The DG14 wrapper (ICAO 9303-10: tag 0x6E) around the SET.
DG14_TAG = 0x6E
MAX_INFOS = 32  # a report, not a parser: more entries than this are cut


def _load(tag: int, value: bytes) -> Any:
    return core.load(encode_tlv(tag, value))


def _params_kind(tag: int | None, value: bytes) -> str:
    if tag == 0x06:
        return f"named_curve {_load(tag, value).dotted}"
    if tag == 0x02:
        return f"standardized_id {_load(tag, value).native}"
    if tag == 0x30:
        return "explicit_parameters"
    return "none" if tag in (None, 0x05) else f"tag {tag:02X}"


def _element(tag: int, value: bytes) -> dict[str, Any]:
    """One element after the protocol OID: an integer, an algorithm identifier, or a
    SubjectPublicKeyInfo (its key encoding, never the key)."""
    if tag == 0x02:
        return {"integer": _load(tag, value).native}
    if tag != 0x30:
        return {"tag": f"{tag:02X}"}
    inner = parse_tlvs(value)
    if inner and inner[0][0] == 0x06:  # AlgorithmIdentifier
        p = inner[1] if len(inner) > 1 else (None, b"")
        return {"algorithm": _load(*inner[0]).dotted, "parameters": _params_kind(*p)}
    if inner and inner[0][0] == 0x30:  # SubjectPublicKeyInfo
        alg = parse_tlvs(inner[0][1])
        if alg and alg[0][0] == 0x06:
            p = alg[1] if len(alg) > 1 else (None, b"")
            return {"public_key": _load(*alg[0]).dotted, "parameters": _params_kind(*p)}
    return {"sequence": len(inner)}


def summarize(data: bytes | None) -> list[dict[str, Any]] | str:
    """EF.CardAccess's or DG14's SecurityInfos, one entry each; a sentence when absent or
    unreadable."""
    if not data:
        return "absent"
    try:
        if data[0] == DG14_TAG:
            data = unwrap_tlv(data, DG14_TAG)
        outer = parse_tlvs(data)
        if len(outer) != 1 or outer[0][0] != 0x31:
            return "not a SET OF SecurityInfo"
        out: list[dict[str, Any]] = []
        for tag, info in parse_tlvs(outer[0][1])[:MAX_INFOS]:
            if tag != 0x30:
                out.append({"tag": f"{tag:02X}"})
                continue
            items = parse_tlvs(info)
            entry: dict[str, Any] = {}
            if items and items[0][0] == 0x06:
                entry["protocol"] = _load(*items[0]).dotted
                items = items[1:]
            entry["fields"] = [_element(t, v) for t, v in items]
            out.append(entry)
        return out
    except (TlvError, ValueError, TypeError, IndexError, OverflowError) as e:
        return f"unreadable ({type(e).__name__})"
