"""The chip's files (ICAO 9303-10 LDS 1.7) as values: EF.COM, DG1, DG2, DG13 (Vietnam),
EF.SOD (DG14 is parsed in ``ca``, DG15 in ``aa``). One parser per file, strict and eager
(pymrtd style): anything that does not parse raises :class:`TlvError`, never a half-filled value.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import cms, core

from readers.emrtd.apdu import encode_tlv, parse_tlvs, unwrap_tlv
from readers.emrtd.mrz import Td1, parse_td1
from readers.errors import TlvError

AID_ICAO = bytes.fromhex("A0000002471001")  # the eMRTD application (ICAO 9303-10 §3.6.1)
# File identifiers, short file identifiers and tags (ICAO 9303-10 Table 33/34).
FID_EF_COM, FID_EF_SOD = 0x011E, 0x011D
SFI = {"cardaccess": 0x1C, "com": 0x1E, "sod": 0x1D, 1: 0x01, 2: 0x02, 13: 0x0D, 14: 0x0E,
       15: 0x0F}
FID = {"cardaccess": 0x011C, "com": 0x011E, "sod": 0x011D, 1: 0x0101, 2: 0x0102, 13: 0x010D,
       14: 0x010E, 15: 0x010F}
TAG_EF_COM, TAG_SOD = 0x60, 0x77
DG_TAGS = {1: 0x61, 2: 0x75, 3: 0x63, 4: 0x76, 5: 0x65, 6: 0x66, 7: 0x67, 8: 0x68, 9: 0x69,
           10: 0x6A, 11: 0x6B, 12: 0x6C, 13: 0x6D, 14: 0x6E, 15: 0x6F, 16: 0x70}
TAG_TO_DG = {v: k for k, v in DG_TAGS.items()}
OID_LDS_SECURITY_OBJECT = "2.23.136.1.1.1"


@dataclass(frozen=True, slots=True)
class EfCom:
    lds_version: str
    unicode_version: str
    data_groups: tuple[int, ...]


def parse_ef_com(data: bytes) -> EfCom:
    inner = dict(parse_tlvs(unwrap_tlv(data, TAG_EF_COM)))
    if 0x5C not in inner:
        raise TlvError("EF.COM has no tag list")
    groups = []
    for tag in inner[0x5C]:
        if tag not in TAG_TO_DG:
            raise TlvError("EF.COM lists an unknown data group tag")
        groups.append(TAG_TO_DG[tag])
    return EfCom(inner.get(0x5F01, b"").decode("ascii", "replace"),
                 inner.get(0x5F36, b"").decode("ascii", "replace"), tuple(groups))


def parse_dg1(data: bytes) -> Td1:
    inner = dict(parse_tlvs(unwrap_tlv(data, DG_TAGS[1])))
    mrz = inner.get(0x5F1F)
    if mrz is None:
        raise TlvError("DG1 has no MRZ")
    try:
        return parse_td1(mrz.decode("ascii"))
    except UnicodeDecodeError as e:
        raise TlvError("DG1 MRZ is not ASCII") from e


# -- DG2: face image inside an ISO/IEC 19794-5 record ----------------------------------------
@dataclass(frozen=True, slots=True)
class Photo:
    format: str   # "jpeg" | "jpeg2000"
    image: bytes
    width: int
    height: int


_JPEG = b"\xff\xd8\xff"
_JP2 = (b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")


def parse_face_record(record: bytes) -> Photo:
    """ISO/IEC 19794-5:2005: 14-byte header, 20-byte facial record header, feature points,
    12-byte image information, image data."""
    if len(record) < 14 + 20 + 12 or record[:4] != b"FAC\x00":
        raise TlvError("DG2 biometric data is not an ISO 19794-5 face record")
    count = int.from_bytes(record[12:14], "big")
    if count < 1:
        raise TlvError("DG2 face record holds no image")
    o = 14
    block = int.from_bytes(record[o:o + 4], "big")
    points = int.from_bytes(record[o + 4:o + 6], "big")
    info = o + 20 + 8 * points
    start = info + 12
    end = o + block
    if block < 32 or end > len(record) or start > end:
        raise TlvError("DG2 face record lengths do not add up")
    image_type = record[info + 1]
    width = int.from_bytes(record[info + 2:info + 4], "big")
    height = int.from_bytes(record[info + 4:info + 6], "big")
    image = record[start:end]
    if image_type == 0 and image.startswith(_JPEG):
        return Photo("jpeg", image, width, height)
    if image_type == 1 and image.startswith(_JP2):
        return Photo("jpeg2000", image, width, height)
    raise TlvError("DG2 image is neither JPEG nor JPEG 2000")


def parse_dg2(data: bytes) -> Photo:
    group = unwrap_tlv(unwrap_tlv(data, DG_TAGS[2]), 0x7F61)
    items = parse_tlvs(group)
    for tag, value in items:
        if tag == 0x7F60:
            inner = dict(parse_tlvs(value))
            record = inner.get(0x5F2E) or inner.get(0x7F2E)
            if record is None:
                raise TlvError("DG2 template has no biometric data")
            return parse_face_record(record)
    raise TlvError("DG2 has no biometric information template")


# -- DG13: Vietnamese personal data (DOMAIN.md §4) --------------------------------------------
DG13_FIELDS = {
    1: "id_number", 2: "full_name", 3: "date_of_birth", 4: "sex", 5: "nationality",
    6: "ethnicity", 7: "religion", 8: "place_of_origin", 9: "place_of_residence",
    10: "identifying_features", 11: "issue_date", 12: "expiry_date", 13: "parents",
    14: "spouse", 15: "old_id_number", 16: "unknown_16",
}


@dataclass(frozen=True, slots=True)
class Dg13:
    """Fields by number; absent fields are absent. 13/14 hold names; 15/16 stay raw text."""

    fields: dict[int, str] = field(default_factory=dict)
    father_name: str | None = None
    mother_name: str | None = None
    spouse_name: str | None = None

    def get(self, number: int) -> str | None:
        return self.fields.get(number)


_STRING_TAGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x1A: "ascii", 0x1E: "utf-16-be"}
TAG_SEQUENCE, TAG_SET, TAG_INTEGER = 0x30, 0x31, 0x02


# Control characters and bidirectional overrides: never shown to staff or sent to an HIS (a
# signed chip is still data from outside; the hash is over the raw bytes, not this text).
_UNSHOWN = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _text(tag: int, value: bytes, where: str) -> str:
    """PrintableString and UTF8String everywhere (DOMAIN.md §4), a few others tolerated."""
    codec = _STRING_TAGS.get(tag)
    if codec is None:
        raise TlvError(f"{where} is not a string")
    try:
        return _UNSHOWN.sub("", value.decode(codec)).strip()
    except UnicodeDecodeError as e:
        raise TlvError(f"{where} is not valid text") from e


def _integer(tag: int, value: bytes, where: str) -> int:
    if tag != TAG_INTEGER or not value or len(value) > 4:
        raise TlvError(f"{where} has no field number")
    return int.from_bytes(value, "big", signed=True)


def _names(items: list[tuple[int, bytes]], where: str) -> list[str | None]:
    """``SEQ { name }`` entries (parents, spouse): the first string inside each, or None."""
    out: list[str | None] = []
    for tag, value in items:
        if tag != TAG_SEQUENCE:
            raise TlvError(f"{where}: expected a sequence")
        texts = [_text(t, v, where) for t, v in parse_tlvs(value) if t != TAG_INTEGER]
        out.append(texts[0] if texts else None)
    return out


def parse_dg13(data: bytes) -> Dg13:
    """``6D { 30 { INTEGER 1, OID, SET { SEQ { INTEGER n, value… }… } } }`` by field number."""
    top = parse_tlvs(unwrap_tlv(unwrap_tlv(data, DG_TAGS[13]), TAG_SEQUENCE))
    sets = [v for t, v in top if t == TAG_SET]
    if len(sets) != 1:
        raise TlvError("DG13 has no set of fields")
    fields: dict[int, str] = {}
    father = mother = spouse = None
    for tag, entry in parse_tlvs(sets[0]):
        if tag != TAG_SEQUENCE:
            raise TlvError("DG13 field is not a sequence")
        items = parse_tlvs(entry)
        if not items:
            raise TlvError("DG13 field is empty")
        n = _integer(*items[0], "DG13 field")
        if n in fields:
            raise TlvError(f"DG13 field {n} appears twice")
        where = f"DG13 field {n}"
        if n == 13:
            names = _names(items[1:], where)
            father = names[0] if names else None
            mother = names[1] if len(names) > 1 else None
            fields[n] = "; ".join(x for x in (father, mother) if x)
        elif n == 14:
            names = _names(items[1:], where)
            spouse = names[0] if names else None
            fields[n] = spouse or ""
        else:
            fields[n] = _text(*items[1], where) if len(items) > 1 else ""
    return Dg13(fields, father, mother, spouse)


def encode_dg13(values: dict[int, str], *, father: str | None = None,
                mother: str | None = None, spouse: str | None = None,
                printable: frozenset[int] = frozenset({1})) -> bytes:
    """The inverse of :func:`parse_dg13` in the shape Vietnamese chips use (virtual card)."""
    def seq(*items: bytes) -> bytes:
        return encode_tlv(0x30, b"".join(items))

    def integer(n: int) -> bytes:
        return encode_tlv(0x02, n.to_bytes(1 + n.bit_length() // 8, "big"))

    def utf8(text: str) -> bytes:
        return encode_tlv(0x0C, text.encode("utf-8"))

    entries: list[bytes] = []
    for n in sorted(set(values) | ({13} if father or mother else set()) | {14}):
        if n == 13:
            entries.append(seq(integer(13), *(seq(utf8(x)) for x in (father, mother) if x)))
        elif n == 14:
            entries.append(seq(integer(14), *([seq(utf8(spouse))] if spouse else [])))
        elif n in printable:
            entries.append(seq(integer(n), encode_tlv(0x13, values[n].encode("ascii"))))
        else:
            entries.append(seq(integer(n), utf8(values[n])))
    oid = core.ObjectIdentifier("1.0.10646.1.0.8").dump()
    return encode_tlv(DG_TAGS[13], seq(integer(1), oid, encode_tlv(0x31, b"".join(entries))))


# -- EF.SOD ------------------------------------------------------------------------------------
class DataGroupHash(core.Sequence):  # type: ignore[misc]
    _fields = [("data_group_number", core.Integer),  # noqa: RUF012 - asn1crypto API
               ("data_group_hash_value", core.OctetString)]


class DataGroupHashes(core.SequenceOf):  # type: ignore[misc]
    _child_spec = DataGroupHash


class LdsVersionInfo(core.Sequence):  # type: ignore[misc]
    _fields = [("lds_version", core.PrintableString),  # noqa: RUF012 - asn1crypto API
               ("unicode_version", core.PrintableString)]


class LdsSecurityObject(core.Sequence):  # type: ignore[misc]
    """ICAO 9303-10 §4.6.2.2."""

    _fields = [  # noqa: RUF012 - asn1crypto API
        ("version", core.Integer),
        ("hash_algorithm", cms.DigestAlgorithm),
        ("data_group_hash_values", DataGroupHashes),
        ("lds_version_info", LdsVersionInfo, {"optional": True}),
    ]


@dataclass(frozen=True, slots=True)
class Sod:
    signed_data: Any          # asn1crypto cms.SignedData
    lds_object_der: bytes
    hash_algorithm: str
    hashes: dict[int, bytes]


# Bounds checked on the raw bytes before asn1crypto sees them: its lazy parser re-walks nested
# structures, so deeply nested or padded signed attributes cost it far more than their size.
MAX_SOD_BYTES = 0x8000  # all READ BINARY can address (offsets up to 0x7FFF)
MAX_DER_DEPTH = 24      # a genuine SOD nests about 11 deep (an explicit-curve key in the DS)


def check_der_nesting(data: bytes, limit: int = MAX_DER_DEPTH) -> None:
    """Walk BER/DER headers without building anything, constructed elements included
    (definite or indefinite length): a :class:`TlvError` when they nest deeper than ``limit``
    or do not fit in one another. Linear in the input."""
    ends: list[int | None] = []  # where each open constructed element ends; None: at 00 00
    pos, size = 0, len(data)
    while True:
        while ends:  # close what ends here
            if ends[-1] is None and data[pos:pos + 2] == b"\x00\x00":
                pos += 2
            elif ends[-1] != pos:
                break
            ends.pop()
        if pos >= size:
            if ends:
                raise TlvError("BER element is truncated")
            return
        outer = next((e for e in reversed(ends) if e is not None), size)
        constructed = data[pos] & 0x20
        if data[pos] & 0x1F == 0x1F:  # high tag number form
            pos += 1
            while pos < size and data[pos] & 0x80:
                pos += 1
        pos += 1
        if pos >= outer:
            raise TlvError("BER element is truncated")
        length = data[pos]
        pos += 1
        end: int | None = None
        if length != 0x80:
            if length > 0x80:
                count = length & 0x7F
                if count > 4:
                    raise TlvError("BER length is oversized")
                length = int.from_bytes(data[pos:pos + count], "big")
                pos += count
            end = pos + length
            if end > outer:
                raise TlvError("BER element runs past its end")
        elif not constructed:
            raise TlvError("indefinite length on a primitive BER element")
        if constructed:
            ends.append(end)
            if len(ends) > limit:
                raise TlvError(f"BER nests deeper than {limit} levels")
        else:
            pos = end if end is not None else pos


def parse_sod(data: bytes) -> Sod:
    if len(data) > MAX_SOD_BYTES:
        raise TlvError("EF.SOD is larger than a chip can hold")
    body = unwrap_tlv(data, TAG_SOD)
    check_der_nesting(body)
    try:
        info = cms.ContentInfo.load(body, strict=True)
        if info["content_type"].dotted != "1.2.840.113549.1.7.2":
            raise TlvError("EF.SOD is not CMS SignedData")
        sd = info["content"]
        eci = sd["encap_content_info"]
        if eci["content_type"].dotted != OID_LDS_SECURITY_OBJECT:
            raise TlvError("EF.SOD does not carry an LDS security object")
        octets = eci["content"].native
        if not isinstance(octets, bytes):
            raise TlvError("EF.SOD content is not an octet string")
        check_der_nesting(octets)
        lso = LdsSecurityObject.load(octets, strict=True)
        hashes = {int(h["data_group_number"].native): bytes(h["data_group_hash_value"].native)
                  for h in lso["data_group_hash_values"]}
        algorithm = str(lso["hash_algorithm"]["algorithm"].native)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
            RecursionError) as e:
        raise TlvError("EF.SOD is not a valid CMS security object") from e
    if algorithm not in {"sha1", "sha224", "sha256", "sha384", "sha512"}:
        raise TlvError("EF.SOD uses an unsupported hash algorithm")
    return Sod(sd, octets, algorithm, hashes)


def dg_hash(algorithm: str, content: bytes) -> bytes:
    return hashlib.new(algorithm, content).digest()
