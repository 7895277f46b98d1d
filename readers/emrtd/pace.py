"""PACE (ICAO 9303-11 §4.4) with ECDH generic mapping and AES-128 secure messaging
(id-PACE-ECDH-GM-AES-CBC-CMAC-128), both ends, on the standardized curve EF.CardAccess names.

Vietnamese chips accept PACE with CAN = the last 6 digits of the 12-digit ID on
brainpoolP256r1 (DOMAIN.md §4); the MRZ works as the password too (Appendix G's example uses
it). The mapped generator G~ is not a curve ``cryptography`` knows, so the arithmetic is
:mod:`readers.emrtd.ec`'s ladder; randomness is passed in (``rnd``) so the Appendix G worked
example replays byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from readers.emrtd.apdu import (
    SW,
    CardPort,
    Command,
    encode_command,
    encode_tlv,
    parse_tlv,
    parse_tlvs,
    unwrap_tlv,
)
from readers.emrtd.ec import BRAINPOOLP256R1, BY_STANDARD_ID, Curve, Point
from readers.emrtd.mrz import AccessKey, CanKey
from readers.emrtd.sm import AES, KDF_ENC, KDF_MAC, KDF_PI, AesSuite, aes_cbc, cmac, kdf
from readers.errors import AccessDenied, ApduError, SecureMessagingError, TlvError

OID_PACE_ECDH_GM_AES_128 = bytes.fromhex("04007F00070202040202")  # 0.4.0.127.0.7.2.2.4.2.2
PARAM_BRAINPOOL_P256R1 = BRAINPOOLP256R1.standard_id
KEY_REF_MRZ, KEY_REF_CAN = 1, 2
INS_MSE, INS_GENERAL_AUTHENTICATE = 0x22, 0x86


def password(key: AccessKey | CanKey) -> tuple[bytes, int]:
    """π and its key reference: the CAN as it is, the MRZ as SHA-1 of its key seed text
    (ICAO 9303-11 §4.4.3.1)."""
    if isinstance(key, CanKey):
        return key.can.encode("ascii"), KEY_REF_CAN
    return hashlib.sha1(key.mrz_information().encode("ascii")).digest(), KEY_REF_MRZ


def k_pi(secret: bytes) -> bytes:
    return kdf(secret, KDF_PI, cipher=AES, key_bytes=16)


def auth_token(curve: Curve, key_mac: bytes, point: Point) -> bytes:
    """CMAC over the public key data object 7F49 {06 OID, 86 point}, 8 bytes."""
    body = encode_tlv(0x06, OID_PACE_ECDH_GM_AES_128) + encode_tlv(0x86, curve.encode(point))
    return cmac(key_mac, encode_tlv(0x7F49, body))[:8]


def _suite(curve: Curve, shared: bytes) -> AesSuite:
    return AesSuite(kdf(shared, KDF_ENC, cipher=AES, key_bytes=16),
                    kdf(shared, KDF_MAC, cipher=AES, key_bytes=16))


def pace_curve(card_access: bytes) -> Curve | None:
    """The curve of EF.CardAccess's PACEInfo for ECDH-GM AES-128 with a standardized
    parameter id, or None (no PACE we speak: use BAC)."""
    try:
        for tag, value in parse_tlvs(unwrap_tlv(card_access, 0x31)):
            items = parse_tlvs(value) if tag == 0x30 else []
            if (len(items) >= 3 and items[0] == (0x06, OID_PACE_ECDH_GM_AES_128)
                    and items[2][0] == 0x02 and len(items[2][1]) <= 2):
                return BY_STANDARD_ID.get(int.from_bytes(items[2][1], "big"))
    except TlvError:
        return None
    return None


def _ga(port: CardPort, data: bytes, *, last: bool) -> bytes:
    cla = 0x00 if last else 0x10  # command chaining until the last step
    answer, sw = port.send_and_receive(encode_command(Command(
        cla, INS_GENERAL_AUTHENTICATE, 0, 0, encode_tlv(0x7C, data), le=256)))
    if sw in (SW.AUTH_FAILED, SW.SECURITY_NOT_SATISFIED) or (sw & 0xFFF0) == 0x63C0:
        raise AccessDenied("the chip refused the PACE password")
    if sw != SW.OK:
        raise ApduError(sw, "PACE step failed")
    try:
        tag, value, _ = parse_tlv(answer)
        if tag != 0x7C:
            raise TlvError("not a dynamic authentication template")
        return value
    except TlvError as e:
        raise SecureMessagingError("PACE answer is malformed") from e


def _item(value: bytes, tag: int) -> bytes:
    try:
        for t, v in parse_tlvs(value):
            if t == tag:
                return v
    except TlvError as e:
        raise SecureMessagingError("PACE data is malformed") from e
    raise SecureMessagingError(f"PACE answer lacks {tag:02X}")


def mse_set_at(key_ref: int) -> Command:
    mse = encode_tlv(0x80, OID_PACE_ECDH_GM_AES_128) + encode_tlv(0x83, bytes([key_ref]))
    return Command(0x00, INS_MSE, 0xC1, 0xA4, mse)


def authenticate(port: CardPort, key: AccessKey | CanKey, *, rnd: Callable[[int], bytes],
                 curve: Curve = BRAINPOOLP256R1) -> AesSuite:
    """The terminal's PACE run; returns the session suite (SSC starts at zero)."""
    secret, key_ref = password(key)
    _, sw = port.send_and_receive(encode_command(mse_set_at(key_ref)))
    if sw != SW.OK:
        raise ApduError(sw, "MSE:Set AT for PACE refused")
    z = _item(_ga(port, b"", last=False), 0x80)
    if len(z) % 16 or not z:
        raise SecureMessagingError("PACE nonce is not whole AES blocks")
    s = int.from_bytes(aes_cbc(k_pi(secret), z, decrypt=True), "big")
    blind = int.from_bytes(rnd(8), "big")
    sk_map = curve.scalar(rnd)
    pk_map = curve.mul_g(sk_map, blind=blind)
    pk_map_ic = curve.decode(_item(_ga(port, encode_tlv(0x81, curve.encode(pk_map)),
                                       last=False), 0x82))
    g_mapped = curve.add(curve.mul_g(s, blind=blind), curve.mul(sk_map, pk_map_ic, blind=blind))
    if g_mapped is None:
        raise SecureMessagingError("PACE mapping gave the point at infinity")
    sk_eph = curve.scalar(rnd)
    pk_eph = curve.mul(sk_eph, g_mapped, blind=blind)
    pk_eph_ic = curve.decode(_item(_ga(port, encode_tlv(0x83, curve.encode(pk_eph)),
                                       last=False), 0x84))
    if pk_eph_ic == pk_eph:
        raise SecureMessagingError("PACE: the chip echoed our key")
    suite = _suite(curve, curve.shared_x(sk_eph, pk_eph_ic, blind=blind))
    t_ic = _item(_ga(port, encode_tlv(0x85, auth_token(curve, suite.ks_mac, pk_eph_ic)),
                     last=True), 0x86)
    if not hmac.compare_digest(t_ic, auth_token(curve, suite.ks_mac, pk_eph)):
        raise AccessDenied("the chip's PACE token does not verify (wrong password?)")
    return suite


class PaceCard:
    """The chip's half, for the virtual card. Feed it the four GENERAL AUTHENTICATE bodies."""

    def __init__(self, secret: bytes, rnd: Callable[[int], bytes],
                 curve: Curve = BRAINPOOLP256R1) -> None:
        self.secret = secret
        self.rnd = rnd
        self.curve = curve
        self.step = 0
        self.suite: AesSuite | None = None

    def answer(self, data: bytes) -> tuple[bytes, int]:
        try:
            inner = parse_tlv(data)[1] if data else b""
            return self._answer(inner)
        except (TlvError, SecureMessagingError, ValueError):
            self.step = -1
            return b"", SW.WRONG_DATA

    def _answer(self, inner: bytes) -> tuple[bytes, int]:
        c = self.curve
        if self.step == 0:
            self.s = int.from_bytes(self.rnd(16), "big")
            z = aes_cbc(k_pi(self.secret), self.s.to_bytes(16, "big"))
            self.step = 1
            return encode_tlv(0x7C, encode_tlv(0x80, z)), SW.OK
        if self.step == 1:
            pk_map = c.decode(_item(inner, 0x81))
            sk_map = c.scalar(self.rnd)
            self.g = c.add(c.mul_g(self.s), c.mul(sk_map, pk_map))
            self.step = 2
            return encode_tlv(0x7C, encode_tlv(0x82, c.encode(c.mul_g(sk_map)))), SW.OK
        if self.step == 2:
            self.pk_eph_ifd = c.decode(_item(inner, 0x83))
            sk = c.scalar(self.rnd)
            self.pk_eph = c.mul(sk, self.g)
            self.candidate = _suite(c, c.shared_x(sk, self.pk_eph_ifd))
            self.step = 3
            return encode_tlv(0x7C, encode_tlv(0x84, c.encode(self.pk_eph))), SW.OK
        if self.step == 3:
            t_ifd = _item(inner, 0x85)
            if not hmac.compare_digest(t_ifd, auth_token(c, self.candidate.ks_mac,
                                                         self.pk_eph)):
                self.step = -1
                return b"", SW.AUTH_FAILED  # a wrong password ends here
            self.suite = self.candidate
            self.step = 4
            token = auth_token(c, self.suite.ks_mac, self.pk_eph_ifd)
            return encode_tlv(0x7C, encode_tlv(0x86, token)), SW.OK
        return b"", SW.SECURITY_NOT_SATISFIED
