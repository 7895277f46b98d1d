"""Chip Authentication (ICAO 9303-11 §6.2, BSI TR-03110 CA version 1), both ends.

DG14 (signed by passive authentication) holds the chip's static key agreement key and the
protocol it speaks (ChipAuthenticationInfo). The terminal sends an ephemeral key on the same
curve — MSE:Set AT + GENERAL AUTHENTICATE, or MSE:Set KAT for 3DES chips that want it — and
both ends derive new secure-messaging keys from the ECDH secret; the send sequence counter
restarts at zero. The chip is authenticated *implicitly*: only a chip holding the private key
can answer the next command under the new keys, so a copy of the signed files on another chip
fails there. Pure: randomness is passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asn1crypto import core
from asn1crypto import keys as asn1_keys

from readers.emrtd.apdu import SW, Command, encode_tlv, parse_tlv, parse_tlvs, unwrap_tlv
from readers.emrtd.ec import BY_OID, BY_STANDARD_ID, CURVES, Curve
from readers.emrtd.lds import DG_TAGS
from readers.emrtd.sm import AES, DES3, CipherSuite, session_suite
from readers.errors import ApduError, SecureMessagingError, TlvError

INS_MSE, INS_GENERAL_AUTHENTICATE = 0x22, 0x86
OID_PK_ECDH = "0.4.0.127.0.7.2.2.1.2"
OID_CA = "0.4.0.127.0.7.2.2.3"  # id-CA: .1 DH, .2 ECDH, then the cipher
OID_CA_DH, OID_CA_ECDH = f"{OID_CA}.1", f"{OID_CA}.2"  # ChipAuthenticationDomainParameterInfo
OID_STANDARDIZED_DOMAIN_PARAMETERS = "0.4.0.127.0.7.1.2"  # BSI TR-03110-3 §A.2.1.1
CA_ECDH = {f"{OID_CA}.2.1": (DES3, 16), f"{OID_CA}.2.2": (AES, 16),
           f"{OID_CA}.2.3": (AES, 24), f"{OID_CA}.2.4": (AES, 32)}
OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_AA = "2.23.136.1.1.5"  # ActiveAuthenticationInfo (ICAO 9303-11 §9.2.7): the AA signature
OID_PRIME_FIELD = "1.2.840.10045.1.1"
MAX_DG14_BYTES = 8192  # a few SecurityInfos; anything bigger is not a DG14 we trust to parse


class _SecurityInfo(core.Sequence):  # type: ignore[misc]
    _fields = [("protocol", core.ObjectIdentifier), ("required_data", core.Any),  # noqa: RUF012
               ("optional_data", core.Any, {"optional": True})]


class _SecurityInfos(core.SetOf):  # type: ignore[misc]
    _child_spec = _SecurityInfo


class _AlgorithmIdentifier(core.Sequence):  # type: ignore[misc]
    """RFC 5280 §4.1.1.2, parameters left raw: what they are depends on the algorithm, and
    asn1crypto's own spec only knows id-ecPublicKey's."""

    _fields = [("algorithm", core.ObjectIdentifier),  # noqa: RUF012
               ("parameters", core.Any, {"optional": True})]


class _SubjectPublicKeyInfo(core.Sequence):  # type: ignore[misc]
    _fields = [("algorithm", _AlgorithmIdentifier),  # noqa: RUF012
               ("public_key", core.OctetBitString)]


@dataclass(frozen=True, slots=True)
class ChipAuthOffer:
    """One way DG14 says this chip can be authenticated."""

    protocol: str          # dotted id-CA-ECDH-… OID
    cipher: str            # 3des | aes
    key_bytes: int
    curve: Curve
    public: tuple[int, int]
    key_id: int | None


@dataclass(frozen=True, slots=True)
class Dg14:
    offers: tuple[ChipAuthOffer, ...]
    unsupported: tuple[str, ...]  # CA the chip offers that this terminal cannot run (why)
    # ActiveAuthenticationInfo's signatureAlgorithm (dotted OID): how an ECDSA chip hashes
    # the challenge it signs; None when DG14 names none
    aa_algorithm: str | None = None

    @property
    def offers_ca(self) -> bool:
        return bool(self.offers or self.unsupported)


def _integer(value: Any) -> int:
    return int(core.Integer.load(value.dump(), strict=True).native)


def _explicit_curve(params: Any) -> Curve | str:
    """The named curve a specifiedCurve (RFC 3279 §2.3.5) spells out, or why not. Only the
    curves we know are accepted: an unknown one is not trusted to be prime-order and sound."""
    s = asn1_keys.SpecifiedECDomain.load(params.dump(), strict=True)
    if s["field_id"]["field_type"].dotted != OID_PRIME_FIELD:
        return "binary-field curve"
    cofactor = s["cofactor"].native
    if cofactor not in (None, 1):
        return "unknown curve"  # every curve we run has cofactor 1
    p = int(s["field_id"]["parameters"].native)
    a = int.from_bytes(s["curve"]["a"].native, "big")
    b = int.from_bytes(s["curve"]["b"].native, "big")
    base, n = bytes(s["base"].native), int(s["order"].native)
    for c in CURVES:
        if (c.p, c.a, c.b, c.n) == (p, a % p, b, n) and base in _generator_encodings(c):
            return c
    return "unknown curve"


def _generator_encodings(c: Curve) -> tuple[bytes, bytes]:
    """G uncompressed and compressed (SEC 1 §2.3.3); DG14s carry either."""
    x = c.gx.to_bytes(c.size, "big")
    return c.encode(c.g), bytes([2 + (c.gy & 1)]) + x


def _domain(algorithm: Any) -> Curve | str | None:
    """The curve an AlgorithmIdentifier names — id-ecPublicKey or id-PK-ECDH with
    ECParameters (RFC 3279 §2.3.5), or standardizedDomainParameters with a parameter id
    (BSI TR-03110-3 §A.2.1.1) — None when it leaves them to a
    ChipAuthenticationDomainParameterInfo (absent parameters or implicitlyCA), or why it
    cannot be used."""
    oid = algorithm["algorithm"].dotted
    params = algorithm["parameters"]
    if oid == OID_STANDARDIZED_DOMAIN_PARAMETERS:
        param_id = _integer(params)
        curve = BY_STANDARD_ID.get(param_id)
        return curve if curve is not None else f"standardized parameter id {param_id}"
    if oid not in (OID_EC_PUBLIC_KEY, OID_PK_ECDH):
        return f"key algorithm {oid}"
    if params.native is None:  # absent, or implicitlyCA (NULL)
        return None
    chosen = asn1_keys.ECDomainParameters.load(params.dump(), strict=True)
    if chosen.name == "named":
        return BY_OID.get(chosen.chosen.dotted) or "unknown curve"
    if chosen.name == "specified":
        return _explicit_curve(chosen.chosen)
    return None


KeyInfo = tuple[Curve | str | None, bytes]  # the key's domain (as _domain gives it), its point


def _public_key(info: Any) -> KeyInfo:
    """A ChipAuthenticationPublicKeyInfo's SubjectPublicKeyInfo: its curve and its point."""
    spki = _SubjectPublicKeyInfo.load(info.dump(), strict=True)
    return _domain(spki["algorithm"]), bytes(spki["public_key"].native)


def _resolve(key: KeyInfo, domain: Curve | str | None) -> tuple[Curve, tuple[int, int]] | str:
    """The key's curve (its own parameters, else the domain parameters given for its key id)
    and its point on that curve, or why it cannot be used."""
    curve, point = key
    if curve is None:
        curve = domain
    if curve is None:
        return "no domain parameters for the public key"
    if isinstance(curve, str):
        return curve
    try:
        return curve, curve.decode_public(point)
    except SecureMessagingError:
        return "public key not on its curve"


def _pick(table: dict[int | None, Any], key_id: int | None) -> tuple[int | None, Any] | None:
    """The entry for ``key_id`` and its id; with no key id on one side, the only entry."""
    if key_id in table:
        return key_id, table[key_id]
    if len(table) == 1 and (key_id is None or None in table):
        return next(iter(table.items()))
    return None


def parse_dg14(data: bytes) -> Dg14:
    """DG14's Chip Authentication offers (ICAO 9303-11 §9.2.6, BSI TR-03110-3 §A.1.1.2).

    A DG14 that does not parse is a :class:`TlvError`; CA it offers but this terminal cannot
    run (DH, an unknown cipher, curve or parameter id) is listed in ``unsupported`` — the
    caller fails closed on it, never treats it as absent."""
    if len(data) > MAX_DG14_BYTES:
        raise TlvError("DG14 is implausibly large")
    try:
        infos = _SecurityInfos.load(unwrap_tlv(data, DG_TAGS[14]), strict=True)
        protocols: list[tuple[str, int | None, tuple[str, int] | None]] = []
        keys: dict[int | None, KeyInfo] = {}
        domains: dict[int | None, Curve | str | None] = {}
        unsupported: list[str] = []
        aa_algorithm: str | None = None
        for info in infos:
            oid = info["protocol"].dotted
            optional = info["optional_data"]
            if oid == OID_AA:  # version, then the signature algorithm's OID
                aa_algorithm = core.ObjectIdentifier.load(optional.dump(), strict=True).dotted
                continue
            key_id = _integer(optional) if optional.native is not None else None
            if oid == OID_PK_ECDH:
                keys[key_id] = _public_key(info["required_data"])
            elif oid == OID_CA_ECDH:  # ChipAuthenticationDomainParameterInfo
                domains[key_id] = _domain(_AlgorithmIdentifier.load(
                    info["required_data"].dump(), strict=True))
            elif oid == OID_CA_DH:
                domains[key_id] = "DH domain parameters"
            elif oid.startswith(OID_CA + "."):
                if _integer(info["required_data"]) != 1:
                    unsupported.append(f"{oid} version")
                    continue
                protocols.append((oid, key_id, CA_ECDH.get(oid)))
            elif oid.startswith(OID_PK_ECDH[:-1]):
                unsupported.append(f"public key {oid}")
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
            RecursionError) as e:
        raise TlvError("DG14 is malformed") from e
    offers: list[ChipAuthOffer] = []
    # A protocol without a ChipAuthenticationInfo: 3DES by default (ICAO 9303-11 §9.2.6).
    wanted = protocols or [(f"{OID_CA}.2.1", key_id, (DES3, 16)) for key_id in keys]
    for oid, key_id, suite in wanted:
        picked = _pick(keys, key_id)
        if suite is None:
            unsupported.append(f"protocol {oid}")
        elif picked is None:
            unsupported.append(f"no public key for {oid}")
        else:
            domain = _pick(domains, picked[0])
            key = _resolve(picked[1], domain[1] if domain is not None else None)
            if isinstance(key, str):
                unsupported.append(key)
            else:
                offers.append(ChipAuthOffer(oid, suite[0], suite[1], key[0], key[1], key_id))
    return Dg14(tuple(offers), tuple(unsupported), aa_algorithm)


def _oid_bytes(dotted: str) -> bytes:
    return bytes(core.ObjectIdentifier(dotted).contents)


def _key_ref(offer: ChipAuthOffer) -> bytes:
    if offer.key_id is None:
        return b""
    # A key reference, not a signed INTEGER: 0xC3 is 84 01 C3.
    size = max(1, (offer.key_id.bit_length() + 7) // 8)
    return encode_tlv(0x84, offer.key_id.to_bytes(size, "big"))


Transmit = Callable[[Command], tuple[bytes, int]]


def authenticate(transmit: Transmit, offer: ChipAuthOffer, *,
                 rnd: Callable[[int], bytes]) -> CipherSuite:
    """The terminal's CA under the current secure messaging; returns the new suite (its SSC
    starts at zero). Refusals are :class:`ApduError`; the chip is only proven by the next
    protected answer."""
    curve = offer.curve
    blind = int.from_bytes(rnd(8), "big")
    secret_key = curve.scalar(rnd)
    public = curve.encode(curve.mul_g(secret_key, blind=blind))
    _, sw = transmit(Command(0x00, INS_MSE, 0x41, 0xA4,
                             encode_tlv(0x80, _oid_bytes(offer.protocol)) + _key_ref(offer)))
    if sw == SW.OK:
        answer, sw = transmit(Command(0x00, INS_GENERAL_AUTHENTICATE, 0x00, 0x00,
                                      encode_tlv(0x7C, encode_tlv(0x80, public)), le=256))
        if sw != SW.OK:
            raise ApduError(sw, "GENERAL AUTHENTICATE for Chip Authentication refused")
        try:
            tag, _, end = parse_tlv(answer)
        except TlvError as e:
            raise SecureMessagingError("Chip Authentication answer is malformed") from e
        if tag != 0x7C or end != len(answer):
            raise SecureMessagingError("Chip Authentication answer is malformed")
    elif offer.cipher == DES3:
        # ICAO 9303-11 §6.2.4.1: 3DES chips may only know MSE:Set KAT.
        _, sw = transmit(Command(0x00, INS_MSE, 0x41, 0xA6,
                                 encode_tlv(0x91, public) + _key_ref(offer)))
        if sw != SW.OK:
            raise ApduError(sw, "MSE:Set KAT for Chip Authentication refused")
    else:
        raise ApduError(sw, "MSE:Set AT for Chip Authentication refused")
    shared = curve.shared_x(secret_key, offer.public, blind=blind)
    return session_suite(shared, cipher=offer.cipher, key_bytes=offer.key_bytes)


class ChipAuthCard:
    """The chip's half, for the virtual card: takes MSE and GENERAL AUTHENTICATE commands and
    hands back the suite to switch to once its answer is sent."""

    def __init__(self, offer: ChipAuthOffer, private: int) -> None:
        self.offer = offer
        self.private = private
        self.armed = False

    def command(self, c: Command) -> tuple[bytes, int, CipherSuite | None]:
        try:
            if c.ins == INS_MSE and (c.p1, c.p2) == (0x41, 0xA4):
                fields = dict(parse_tlvs(c.data))
                if fields.get(0x80) != _oid_bytes(self.offer.protocol):
                    return b"", SW.WRONG_DATA, None
                self.armed = True
                return b"", SW.OK, None
            if c.ins == INS_MSE and (c.p1, c.p2) == (0x41, 0xA6):
                return b"", SW.OK, self._suite(dict(parse_tlvs(c.data)).get(0x91, b""))
            if c.ins == INS_GENERAL_AUTHENTICATE and self.armed:
                self.armed = False
                point = dict(parse_tlvs(unwrap_tlv(c.data, 0x7C))).get(0x80, b"")
                return encode_tlv(0x7C, b""), SW.OK, self._suite(point)
        except (TlvError, SecureMessagingError):
            return b"", SW.WRONG_DATA, None
        return b"", SW.SECURITY_NOT_SATISFIED, None

    def _suite(self, point: bytes) -> CipherSuite:
        curve = self.offer.curve
        shared = curve.shared_x(self.private, curve.decode(point))
        return session_suite(shared, cipher=self.offer.cipher, key_bytes=self.offer.key_bytes)
