"""PACE with the card access number (ICAO 9303-11 §4.4): ECDH generic mapping on
brainpoolP256r1 with AES-128 secure messaging (id-PACE-ECDH-GM-AES-CBC-CMAC-128), both ends.

Vietnamese chips accept PACE with CAN = the last 6 digits of the 12-digit ID (DOMAIN.md §4).
The curve arithmetic is here in plain integers because the mapped generator G' is not a curve
``cryptography`` knows; randomness is passed in (``rnd``) so tests can replay a run.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from readers.emrtd.apdu import (
    SW,
    CardPort,
    Command,
    encode_command,
    encode_tlv,
    parse_tlv,
    parse_tlvs,
)
from readers.errors import AccessDenied, ApduError, SecureMessagingError, TlvError

# RFC 5639 brainpoolP256r1
P = 0xA9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377
A = 0x7D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9
B = 0x26DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B6
G = (0x8BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262,
     0x547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997)
N = 0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7
OID_PACE_ECDH_GM_AES_128 = bytes.fromhex("04007F00070202040202")  # 0.4.0.127.0.7.2.2.4.2.2
PARAM_BRAINPOOL_P256R1 = 13
KEY_REF_CAN = 2
INS_MSE, INS_GENERAL_AUTHENTICATE = 0x22, 0x86
Point = tuple[int, int] | None


def on_curve(pt: Point) -> bool:
    if pt is None:
        return True
    x, y = pt
    return (y * y - (x * x * x + A * x + B)) % P == 0


def add(p1: Point, p2: Point) -> Point:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % P == 0:
        return None
    if p1 == p2:
        lam = (3 * x1 * x1 + A) * pow(2 * y1, -1, P) % P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (lam * lam - x1 - x2) % P
    return x3, (lam * (x1 - x3) - y1) % P


Jacobian = tuple[int, int, int]  # (X, Y, Z) ↔ affine (X/Z², Y/Z³); Z = 0 is infinity


def _jdouble(p: Jacobian) -> Jacobian:
    x, y, z = p
    if y == 0 or z == 0:
        return (1, 1, 0)
    yy = y * y % P
    s = 4 * x * yy % P
    m = (3 * x * x + A * pow(z, 4, P)) % P
    x3 = (m * m - 2 * s) % P
    return x3, (m * (s - x3) - 8 * yy * yy) % P, 2 * y * z % P


def _jadd(p: Jacobian, q: Jacobian) -> Jacobian:
    if p[2] == 0:
        return q
    if q[2] == 0:
        return p
    z1z1, z2z2 = p[2] * p[2] % P, q[2] * q[2] % P
    u1, u2 = p[0] * z2z2 % P, q[0] * z1z1 % P
    s1, s2 = p[1] * z2z2 * q[2] % P, q[1] * z1z1 * p[2] % P
    if u1 == u2:
        return _jdouble(p) if s1 == s2 else (1, 1, 0)
    h, r = (u2 - u1) % P, (s2 - s1) % P
    hh = h * h % P
    hhh = h * hh % P
    x3 = (r * r - hhh - 2 * u1 * hh) % P
    return x3, (r * (u1 * hh - x3) - s1 * hhh) % P, h * p[2] * q[2] % P


def mul(k: int, pt: Point) -> Point:
    """k·pt by double-and-add in Jacobian coordinates (one inversion at the end)."""
    if pt is None or k % N == 0:
        return None
    result: Jacobian = (1, 1, 0)
    addend: Jacobian = (pt[0], pt[1], 1)
    while k:
        if k & 1:
            result = _jadd(result, addend)
        addend = _jdouble(addend)
        k >>= 1
    x, y, z = result
    if z == 0:
        return None
    zi = pow(z, -1, P)
    return x * zi * zi % P, y * zi * zi * zi % P


def encode_point(pt: Point) -> bytes:
    if pt is None:
        raise ValueError("the point at infinity has no encoding")
    return b"\x04" + pt[0].to_bytes(32, "big") + pt[1].to_bytes(32, "big")


def decode_point(data: bytes) -> tuple[int, int]:
    if len(data) != 65 or data[0] != 0x04:
        raise SecureMessagingError("PACE: not an uncompressed brainpoolP256r1 point")
    pt = (int.from_bytes(data[1:33], "big"), int.from_bytes(data[33:], "big"))
    if not (0 < pt[0] < P and 0 < pt[1] < P and on_curve(pt)):
        raise SecureMessagingError("PACE: the point is not on the curve")
    return pt


def kdf(secret: bytes, counter: int) -> bytes:
    """ICAO 9303-11 §9.7.1: for AES-128, SHA-1(secret || counter)[:16]."""
    return hashlib.sha1(secret + counter.to_bytes(4, "big")).digest()[:16]


def k_pi(can: str) -> bytes:
    return kdf(can.encode("latin-1"), 3)


def aes_cbc(key: bytes, data: bytes, *, decrypt: bool = False, iv: bytes = bytes(16)) -> bytes:
    c = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = c.decryptor() if decrypt else c.encryptor()
    return op.update(data) + op.finalize()


def cmac(key: bytes, data: bytes) -> bytes:
    c = CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


def auth_token(key_mac: bytes, point: Point) -> bytes:
    """CMAC over the public key data object 7F49 {06 OID, 86 point}, 8 bytes."""
    body = encode_tlv(0x06, OID_PACE_ECDH_GM_AES_128) + encode_tlv(0x86, encode_point(point))
    return cmac(key_mac, encode_tlv(0x7F49, body))[:8]


@dataclass(frozen=True, slots=True)
class AesSuite:
    """PACE's suite: AES-128-CBC with IV = E(KS_enc, SSC), AES-CMAC (8 bytes), 16-byte SSC
    (ICAO 9303-11 §9.8.6.2)."""

    ks_enc: bytes
    ks_mac: bytes
    block_size: int = 16
    ssc_size: int = 16

    def _iv(self, ssc: bytes) -> bytes:
        e = Cipher(algorithms.AES(self.ks_enc), modes.ECB()).encryptor()  # noqa: S305
        return e.update(ssc) + e.finalize()

    def encrypt(self, ssc: bytes, data: bytes) -> bytes:
        return aes_cbc(self.ks_enc, data, iv=self._iv(ssc))

    def decrypt(self, ssc: bytes, data: bytes) -> bytes:
        return aes_cbc(self.ks_enc, data, decrypt=True, iv=self._iv(ssc))

    def mac(self, data: bytes) -> bytes:
        return cmac(self.ks_mac, data)[:8]


def _keys(shared: Point) -> AesSuite:
    if shared is None:
        raise SecureMessagingError("PACE: degenerate shared secret")
    z = shared[0].to_bytes(32, "big")
    return AesSuite(kdf(z, 1), kdf(z, 2))


def has_pace(card_access: bytes) -> bool:
    """EF.CardAccess lists PACE ECDH-GM AES-128 on brainpoolP256r1 (parameter 13)."""
    return OID_PACE_ECDH_GM_AES_128 in card_access


def _ga(port: CardPort, data: bytes, *, last: bool) -> bytes:
    cla = 0x00 if last else 0x10  # command chaining until the last step
    answer, sw = port.send_and_receive(encode_command(Command(
        cla, INS_GENERAL_AUTHENTICATE, 0, 0, encode_tlv(0x7C, data), le=256)))
    if sw in (SW.AUTH_FAILED, SW.SECURITY_NOT_SATISFIED) or (sw & 0xFFF0) == 0x63C0:
        raise AccessDenied("the chip refused the CAN")
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
    for t, v in parse_tlvs(value):
        if t == tag:
            return v
    raise SecureMessagingError(f"PACE answer lacks {tag:02X}")


def authenticate(port: CardPort, can: str, *, rnd: Callable[[int], bytes]) -> AesSuite:
    """The terminal's PACE run; returns the session suite (SSC starts at zero)."""
    mse = encode_tlv(0x80, OID_PACE_ECDH_GM_AES_128) + encode_tlv(0x83, bytes([KEY_REF_CAN]))
    _, sw = port.send_and_receive(encode_command(Command(0x00, INS_MSE, 0xC1, 0xA4, mse)))
    if sw != SW.OK:
        raise ApduError(sw, "MSE:Set AT for PACE refused")
    z = _item(_ga(port, b"", last=False), 0x80)
    if len(z) % 16 or not z:
        raise SecureMessagingError("PACE nonce is not whole AES blocks")
    s = int.from_bytes(aes_cbc(k_pi(can), z, decrypt=True), "big")
    sk_map = int.from_bytes(rnd(32), "big") % (N - 1) + 1
    pk_map_ic = decode_point(_item(_ga(port, encode_tlv(0x81, encode_point(mul(sk_map, G))),
                                       last=False), 0x82))
    g_mapped = add(mul(s, G), mul(sk_map, pk_map_ic))
    if g_mapped is None:
        raise SecureMessagingError("PACE mapping gave the point at infinity")
    sk_eph = int.from_bytes(rnd(32), "big") % (N - 1) + 1
    pk_eph = mul(sk_eph, g_mapped)
    pk_eph_ic = decode_point(_item(_ga(port, encode_tlv(0x83, encode_point(pk_eph)),
                                       last=False), 0x84))
    if pk_eph_ic == pk_eph:
        raise SecureMessagingError("PACE: the chip echoed our key")
    suite = _keys(mul(sk_eph, pk_eph_ic))
    t_ic = _item(_ga(port, encode_tlv(0x85, auth_token(suite.ks_mac, pk_eph_ic)), last=True),
                 0x86)
    if not hmac.compare_digest(t_ic, auth_token(suite.ks_mac, pk_eph)):
        raise AccessDenied("the chip's PACE token does not verify (wrong CAN?)")
    return suite


class PaceCard:
    """The chip's half, for the virtual card. Feed it the four GENERAL AUTHENTICATE bodies."""

    def __init__(self, can: str, rnd: Callable[[int], bytes]) -> None:
        self.can = can
        self.rnd = rnd
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
        if self.step == 0:
            self.s = int.from_bytes(self.rnd(16), "big")
            z = aes_cbc(k_pi(self.can), self.s.to_bytes(16, "big"))
            self.step = 1
            return encode_tlv(0x7C, encode_tlv(0x80, z)), SW.OK
        if self.step == 1:
            pk_map = decode_point(_item(inner, 0x81))
            self.sk_map = int.from_bytes(self.rnd(32), "big") % (N - 1) + 1
            self.g = add(mul(self.s, G), mul(self.sk_map, pk_map))
            self.step = 2
            return encode_tlv(0x7C, encode_tlv(0x82, encode_point(mul(self.sk_map, G)))), SW.OK
        if self.step == 2:
            self.pk_eph_ifd = decode_point(_item(inner, 0x83))
            sk = int.from_bytes(self.rnd(32), "big") % (N - 1) + 1
            self.pk_eph = mul(sk, self.g)
            self.candidate = _keys(mul(sk, self.pk_eph_ifd))
            self.step = 3
            return encode_tlv(0x7C, encode_tlv(0x84, encode_point(self.pk_eph))), SW.OK
        if self.step == 3:
            t_ifd = _item(inner, 0x85)
            if not hmac.compare_digest(t_ifd, auth_token(self.candidate.ks_mac, self.pk_eph)):
                self.step = -1
                return b"", SW.AUTH_FAILED  # a wrong CAN ends here
            self.suite = self.candidate
            self.step = 4
            token = auth_token(self.suite.ks_mac, self.pk_eph_ifd)
            return encode_tlv(0x7C, encode_tlv(0x86, token)), SW.OK
        return b"", SW.SECURITY_NOT_SATISFIED
