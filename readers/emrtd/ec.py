"""Elliptic-curve arithmetic over the short-Weierstrass curves eMRTD chips use.

Where OpenSSL knows the curve, multiples of the standard generator (:meth:`Curve.mul_g`) and
ECDH (:meth:`Curve.shared_x`) go through ``cryptography``: constant-time and fast. PACE's
generic mapping also needs k·P with a full point on a generator OpenSSL does not know; that,
and curves OpenSSL lacks, is a Montgomery ladder in plain integers over a fixed number of bits
with a blinded scalar (k + r·n): the same sequence of field operations whatever the secret.
Python integers are not constant-time, so the ladder narrows the timing channel rather than
closing it; the terminal's keys are ephemeral (one per read), which keeps a leak from adding
up. Scalars are drawn by rejection sampling, so they are uniform in [1, n-1]. Pure: randomness
is passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from readers.errors import SecureMessagingError

Point = tuple[int, int] | None  # affine; None is the point at infinity
_Jacobian = tuple[int, int, int]  # (X, Y, Z) ↔ (X/Z², Y/Z³); Z = 0 is infinity
_INFINITY: _Jacobian = (1, 1, 0)
MAX_DRAWS = 64  # rejection sampling: the chance of needing more is below 2^-64


def _h(*parts: str) -> int:
    return int("".join(parts), 16)


@dataclass(frozen=True, slots=True)
class Curve:
    """y² = x³ + ax + b over GF(p), generator (gx, gy) of prime order n, cofactor 1."""

    name: str
    oid: str
    standard_id: int  # BSI TR-03110 standardized domain parameter id (PACE's parameterId)
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int

    @property
    def g(self) -> tuple[int, int]:
        return self.gx, self.gy

    @property
    def size(self) -> int:
        """Bytes of a field element (and of each coordinate in an encoded point)."""
        return (self.p.bit_length() + 7) // 8

    def on_curve(self, pt: Point) -> bool:
        if pt is None:
            return True
        x, y = pt
        return (y * y - (x * x * x + self.a * x + self.b)) % self.p == 0

    def add(self, p1: Point, p2: Point) -> Point:
        if p1 is None:
            return p2
        if p2 is None:
            return p1
        p = self.p
        (x1, y1), (x2, y2) = p1, p2
        if x1 == x2 and (y1 + y2) % p == 0:
            return None
        if p1 == p2:
            lam = (3 * x1 * x1 + self.a) * pow(2 * y1, -1, p) % p
        else:
            lam = (y2 - y1) * pow(x2 - x1, -1, p) % p
        x3 = (lam * lam - x1 - x2) % p
        return x3, (lam * (x1 - x3) - y1) % p

    def _double(self, q: _Jacobian) -> _Jacobian:
        p = self.p
        x, y, z = q
        if y == 0 or z == 0:
            return _INFINITY
        yy = y * y % p
        s = 4 * x * yy % p
        m = (3 * x * x + self.a * pow(z, 4, p)) % p
        x3 = (m * m - 2 * s) % p
        return x3, (m * (s - x3) - 8 * yy * yy) % p, 2 * y * z % p

    def _add(self, q: _Jacobian, r: _Jacobian) -> _Jacobian:
        if q[2] == 0:
            return r
        if r[2] == 0:
            return q
        p = self.p
        z1z1, z2z2 = q[2] * q[2] % p, r[2] * r[2] % p
        u1, u2 = q[0] * z2z2 % p, r[0] * z1z1 % p
        s1, s2 = q[1] * z2z2 * r[2] % p, r[1] * z1z1 * q[2] % p
        if u1 == u2:
            return self._double(q) if s1 == s2 else _INFINITY
        h, rr = (u2 - u1) % p, (s2 - s1) % p
        hh = h * h % p
        hhh = h * hh % p
        x3 = (rr * rr - hhh - 2 * u1 * hh) % p
        return x3, (rr * (u1 * hh - x3) - s1 * hhh) % p, h * q[2] * r[2] % p

    def mul(self, k: int, pt: Point, *, blind: int = 0) -> Point:
        """k·pt by a Montgomery ladder over n.bit_length() + 64 bits. ``blind`` (any integer,
        random in practice) adds blind·n to the scalar, which changes nothing but the bits the
        ladder walks."""
        if pt is None:
            return None
        bits = self.n.bit_length() + 64
        scalar = (k % self.n) + (blind % (1 << 63) + 1) * self.n
        r0: _Jacobian = _INFINITY
        r1: _Jacobian = (pt[0], pt[1], 1)
        for i in reversed(range(bits)):
            if (scalar >> i) & 1:
                r0, r1 = self._add(r0, r1), self._double(r1)
            else:
                r0, r1 = self._double(r0), self._add(r0, r1)
        x, y, z = r0
        if z == 0:
            return None
        zi = pow(z, -1, self.p)
        return x * zi * zi % self.p, y * zi * zi * zi % self.p

    def scalar(self, rnd: Callable[[int], bytes]) -> int:
        """A uniform secret in [1, n-1]: draw, mask to n's bit length, reject and draw again."""
        bits = self.n.bit_length()
        for _ in range(MAX_DRAWS):
            k = int.from_bytes(rnd((bits + 7) // 8), "big") & ((1 << bits) - 1)
            if 0 < k < self.n:
                return k
        raise ValueError("the random source keeps giving out-of-range scalars")

    def encode(self, pt: Point) -> bytes:
        """Uncompressed encoding 04 || x || y (BSI TR-03111 §3.2.1)."""
        if pt is None:
            raise ValueError("the point at infinity has no encoding")
        return b"\x04" + pt[0].to_bytes(self.size, "big") + pt[1].to_bytes(self.size, "big")

    def decode(self, data: bytes) -> tuple[int, int]:
        """An uncompressed point that lies on this curve (never infinity), or an error."""
        if len(data) != 1 + 2 * self.size or data[0] != 0x04:
            raise SecureMessagingError(f"not an uncompressed {self.name} point")
        pt = (int.from_bytes(data[1:1 + self.size], "big"),
              int.from_bytes(data[1 + self.size:], "big"))
        if not (0 <= pt[0] < self.p and 0 <= pt[1] < self.p and self.on_curve(pt)):
            raise SecureMessagingError(f"the point is not on {self.name}")
        return pt

    def decode_public(self, data: bytes) -> tuple[int, int]:
        """A public key point as SEC 1 §2.3.4 allows: uncompressed, or compressed (02/03 || x,
        y recovered from the curve equation) — a DG14 may carry either."""
        if data[:1] == b"\x04":
            return self.decode(data)
        if len(data) != 1 + self.size or data[0] not in (2, 3):
            raise SecureMessagingError(f"not a {self.name} point")
        x = int.from_bytes(data[1:], "big")
        if x >= self.p:
            raise SecureMessagingError(f"the point is not on {self.name}")
        y = _sqrt_mod((x * x * x + self.a * x + self.b) % self.p, self.p)
        if y is None:
            raise SecureMessagingError(f"the point is not on {self.name}")
        if (y & 1) != (data[0] & 1):
            y = self.p - y
        return self.decode(self.encode((x, y)))

    def _openssl(self, secret: int) -> ec.EllipticCurvePrivateKey | None:
        curve = _OPENSSL.get(self.name)
        if curve is None or not 0 < secret < self.n:
            return None
        return ec.derive_private_key(secret, curve())

    def mul_g(self, k: int, *, blind: int = 0) -> Point:
        """k·G for the curve's own generator (OpenSSL's fixed-base multiplication)."""
        key = self._openssl(k % self.n)
        if key is None:
            return self.mul(k, self.g, blind=blind)
        numbers = key.public_key().public_numbers()
        return numbers.x, numbers.y

    def shared_x(self, secret: int, public: tuple[int, int], *, blind: int = 0) -> bytes:
        """ECDH (BSI TR-03111 §4.3.1): the x-coordinate of secret·public, field-size bytes.
        ``public`` must lie on the curve (:meth:`decode` checks)."""
        key = self._openssl(secret % self.n)
        if key is not None:
            curve = _OPENSSL[self.name]()
            try:
                peer = ec.EllipticCurvePublicNumbers(public[0], public[1], curve).public_key()
            except ValueError as e:
                raise SecureMessagingError(f"the point is not on {self.name}") from e
            return key.exchange(ec.ECDH(), peer)
        shared = self.mul(secret, public, blind=blind)
        if shared is None:
            raise SecureMessagingError("ECDH gave the point at infinity")
        return shared[0].to_bytes(self.size, "big")


# Domain parameters, as OpenSSL prints them (``openssl ecparam -name … -param_enc explicit``);
# tests/test_ec.py checks each against OpenSSL's own arithmetic through ``cryptography``.
BRAINPOOLP224R1 = Curve(
    "brainpoolP224r1", "1.3.36.3.3.2.8.1.1.5", 11,
    p=0xD7C134AA264366862A18302575D1D787B09F075797DA89F57EC8C0FF,
    a=0x68A5E62CA9CE6C1C299803A6C1530B514E182AD8B0042A59CAD29F43,
    b=0x2580F63CCFE44138870713B1A92369E33E2135D266DBB372386C400B,
    gx=0xD9029AD2C7E5CF4340823B2A87DC68C9E4CE3174C1E6EFDEE12C07D,
    gy=0x58AA56F772C0726F24C6B89E4ECDAC24354B9E99CAA3F6D3761402CD,
    n=0xD7C134AA264366862A18302575D0FB98D116BC4B6DDEBCA3A5A7939F)
BRAINPOOLP256R1 = Curve(
    "brainpoolP256r1", "1.3.36.3.3.2.8.1.1.7", 13,
    p=0xA9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377,
    a=0x7D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9,
    b=0x26DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B6,
    gx=0x8BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262,
    gy=0x547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997,
    n=0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7)
BRAINPOOLP384R1 = Curve(
    "brainpoolP384r1", "1.3.36.3.3.2.8.1.1.11", 16,
    p=_h("8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B412B1DA197FB71123",
          "ACD3A729901D1A71874700133107EC53"),
    a=_h("7BC382C63D8C150C3C72080ACE05AFA0C2BEA28E4FB22787139165EFBA91F90F",
          "8AA5814A503AD4EB04A8C7DD22CE2826"),
    b=_h("4A8C7DD22CE28268B39B55416F0447C2FB77DE107DCD2A62E880EA53EEB62D57",
          "CB4390295DBC9943AB78696FA504C11"),
    gx=_h("1D1C64F068CF45FFA2A63A81B7C13F6B8847A3E77EF14FE3DB7FCAFE0CBD10E8",
          "E826E03436D646AAEF87B2E247D4AF1E"),
    gy=_h("8ABE1D7520F9C2A45CB1EB8E95CFD55262B70B29FEEC5864E19C054FF9912928",
          "0E4646217791811142820341263C5315"),
    n=_h("8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B31F166E6CAC0425A7",
          "CF3AB6AF6B7FC3103B883202E9046565"))
BRAINPOOLP512R1 = Curve(
    "brainpoolP512r1", "1.3.36.3.3.2.8.1.1.13", 17,
    p=_h("AADD9DB8DBE9C48B3FD4E6AE33C9FC07CB308DB3B3C9D20ED6639CCA70330871",
          "7D4D9B009BC66842AECDA12AE6A380E62881FF2F2D82C68528AA6056583A48F3"),
    a=_h("7830A3318B603B89E2327145AC234CC594CBDD8D3DF91610A83441CAEA9863BC",
          "2DED5D5AA8253AA10A2EF1C98B9AC8B57F1117A72BF2C7B9E7C1AC4D77FC94CA"),
    b=_h("3DF91610A83441CAEA9863BC2DED5D5AA8253AA10A2EF1C98B9AC8B57F1117A7",
          "2BF2C7B9E7C1AC4D77FC94CADC083E67984050B75EBAE5DD2809BD638016F723"),
    gx=_h("81AEE4BDD82ED9645A21322E9C4C6A9385ED9F70B5D916C1B43B62EEF4D0098E",
          "FF3B1F78E2D0D48D50D1687B93B97D5F7C6D5047406A5E688B352209BCB9F822"),
    gy=_h("7DDE385D566332ECC0EABFA9CF7822FDF209F70024A57B1AA000C55B881F8111",
          "B2DCDE494A5F485E5BCA4BD88A2763AED1CA2B2FA8F0540678CD1E0F3AD80892"),
    n=_h("AADD9DB8DBE9C48B3FD4E6AE33C9FC07CB308DB3B3C9D20ED6639CCA70330870",
          "553E5C414CA92619418661197FAC10471DB1D381085DDADDB58796829CA90069"))
SECP224R1 = Curve(
    "secp224r1", "1.3.132.0.33", 10,
    p=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF000000000000000000000001,
    a=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFE,
    b=0xB4050A850C04B3ABF54132565044B0B7D7BFD8BA270B39432355FFB4,
    gx=0xB70E0CBD6BB4BF7F321390B94A03C1D356C21122343280D6115C1D21,
    gy=0xBD376388B5F723FB4C22DFE6CD4375A05A07476444D5819985007E34,
    n=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFF16A2E0B8F03E13DD29455C5C2A3D)
SECP256R1 = Curve(
    "secp256r1", "1.2.840.10045.3.1.7", 12,
    p=0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
    a=0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFC,
    b=0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    gx=0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    gy=0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
    n=0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551)
SECP384R1 = Curve(
    "secp384r1", "1.3.132.0.34", 15,
    p=_h("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFE",
          "FFFFFFFF0000000000000000FFFFFFFF"),
    a=_h("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFE",
          "FFFFFFFF0000000000000000FFFFFFFC"),
    b=_h("B3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875A",
          "C656398D8A2ED19D2A85C8EDD3EC2AEF"),
    gx=_h("AA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A38",
          "5502F25DBF55296C3A545E3872760AB7"),
    gy=_h("3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C0",
          "0A60B1CE1D7E819D7A431D7C90EA0E5F"),
    n=_h("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF",
          "581A0DB248B0A77AECEC196ACCC52973"))
SECP521R1 = Curve(
    "secp521r1", "1.3.132.0.35", 18,
    p=_h("1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
         "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
         "FFF"),
    a=_h("1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
         "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
         "FFC"),
    b=_h("51953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109",
         "E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F",
         "00"),
    gx=_h("C6858E06B70404E9CD9E3ECB662395B4429C648139053FB521F828AF606B4D3D",
          "BAA14B5E77EFE75928FE1DC127A2FFA8DE3348B3C1856A429BF97E7E31C2E5BD",
          "66"),
    gy=_h("11839296A789A3BC0045C8A5FB42C7D1BD998F54449579B446817AFBD17273E6",
          "62C97EE72995EF42640C550B9013FAD0761353C7086A272C24088BE94769FD16",
          "650"),
    n=_h("1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
         "FFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386",
         "409"))

_OPENSSL: dict[str, type[ec.EllipticCurve]] = {
    "brainpoolP256r1": ec.BrainpoolP256R1, "brainpoolP384r1": ec.BrainpoolP384R1,
    "brainpoolP512r1": ec.BrainpoolP512R1, "secp224r1": ec.SECP224R1,
    "secp256r1": ec.SECP256R1, "secp384r1": ec.SECP384R1, "secp521r1": ec.SECP521R1}
CURVES = (BRAINPOOLP224R1, BRAINPOOLP256R1, BRAINPOOLP384R1, BRAINPOOLP512R1, SECP224R1,
          SECP256R1, SECP384R1, SECP521R1)
BY_OID = {c.oid: c for c in CURVES}
BY_NAME = {c.name: c for c in CURVES}
BY_STANDARD_ID = {c.standard_id: c for c in CURVES}


def _sqrt_mod(a: int, p: int) -> int | None:
    """A square root of ``a`` modulo the odd prime ``p`` (Tonelli–Shanks), None if none."""
    if a == 0:
        return 0
    if pow(a, (p - 1) // 2, p) != 1:
        return None
    if p % 4 == 3:
        return pow(a, (p + 1) // 4, p)
    q, s = p - 1, 0
    while q % 2 == 0:
        q, s = q // 2, s + 1
    z = 2
    while pow(z, (p - 1) // 2, p) != p - 1:
        z += 1
    m, c, t, r = s, pow(z, q, p), pow(a, q, p), pow(a, (q + 1) // 2, p)
    while t != 1:
        i, t2 = 0, t
        while t2 != 1:
            t2, i = t2 * t2 % p, i + 1
        b = pow(c, 1 << (m - i - 1), p)
        m, c, t, r = i, b * b % p, t * b * b % p, r * b % p
    return r
