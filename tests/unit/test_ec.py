"""The curve table and the ladder against OpenSSL's arithmetic (through ``cryptography``)."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from readers.emrtd.ec import BY_OID, CURVES, Curve
from readers.errors import SecureMessagingError

OPENSSL = {"brainpoolP256r1": ec.BrainpoolP256R1(), "brainpoolP384r1": ec.BrainpoolP384R1(),
           "brainpoolP512r1": ec.BrainpoolP512R1(), "secp224r1": ec.SECP224R1(),
           "secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1(),
           "secp521r1": ec.SECP521R1()}


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_generator_on_curve_and_of_order_n(curve: Curve) -> None:
    assert curve.on_curve(curve.g)
    assert curve.mul(curve.n - 1, curve.g) == (curve.gx, (-curve.gy) % curve.p)
    assert curve.add(curve.mul(curve.n - 1, curve.g), curve.g) is None


@pytest.mark.parametrize("name", sorted(OPENSSL))
def test_ladder_and_ecdh_agree_with_openssl(name: str) -> None:
    curve = next(c for c in CURVES if c.name == name)
    assert BY_OID[curve.oid] is curve
    for blind in (0, 1, 2**62 + 12345):
        k = curve.scalar(os.urandom)
        theirs = ec.derive_private_key(k, OPENSSL[name])
        numbers = theirs.public_key().public_numbers()
        assert curve.mul(k, curve.g, blind=blind) == (numbers.x, numbers.y)
        assert curve.mul_g(k, blind=blind) == (numbers.x, numbers.y)
        peer = ec.generate_private_key(OPENSSL[name])
        pn = peer.public_key().public_numbers()
        expected = theirs.exchange(ec.ECDH(), peer.public_key())
        assert curve.shared_x(k, (pn.x, pn.y), blind=blind) == expected
        ladder = curve.mul(k, (pn.x, pn.y), blind=blind)
        assert ladder is not None and ladder[0].to_bytes(curve.size, "big") == expected
        encoded = curve.encode((pn.x, pn.y))
        assert curve.decode(encoded) == (pn.x, pn.y)


def test_scalars_are_drawn_in_range_by_rejection() -> None:
    curve = CURVES[1]
    draws = iter([b"\xff" * 32, b"\x00" * 32, (curve.n - 1).to_bytes(32, "big")])
    assert curve.scalar(lambda n: next(draws)) == curve.n - 1  # 0xFF… ≥ n and 0 rejected
    with pytest.raises(ValueError):
        curve.scalar(lambda n: b"\x00" * n)


def test_points_off_the_curve_and_bad_encodings_are_refused() -> None:
    curve = CURVES[1]
    good = curve.encode(curve.g)
    for bad in (good[:-1], b"\x02" + good[1:], good[:-1] + bytes([good[-1] ^ 1]),
                b"\x04" + curve.p.to_bytes(32, "big") + good[33:]):
        with pytest.raises(SecureMessagingError):
            curve.decode(bad)


@pytest.mark.parametrize("c", CURVES, ids=lambda c: c.name)
def test_explicit_parameters_resolve_to_named_curves_only(c: Curve) -> None:
    """DG14 may spell a named curve out, the generator uncompressed or compressed."""
    from dataclasses import replace

    from readers.doubles.vcard import build_dg14
    from readers.emrtd.ca import OID_CA, parse_dg14

    for encoding in ("explicit", "explicit_compressed", "pk_ecdh_explicit"):
        dg14 = parse_dg14(build_dg14(c, c.g, f"{OID_CA}.2.2", encoding=encoding))
        assert [o.curve for o in dg14.offers] == [c]
    odd = replace(c, b=c.b + 1)
    assert "unknown curve" in parse_dg14(build_dg14(odd, c.g, f"{OID_CA}.2.2",
                                                    encoding="explicit")).unsupported


def test_a_curve_openssl_lacks_uses_the_ladder() -> None:
    curve = next(c for c in CURVES if c.name == "brainpoolP224r1")
    k, j = curve.scalar(os.urandom), curve.scalar(os.urandom)
    pk = curve.mul_g(k)
    assert pk == curve.mul(k, curve.g)
    pj = curve.mul_g(j)
    assert pk is not None and pj is not None
    assert curve.shared_x(k, pj) == curve.shared_x(j, pk)


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_a_compressed_public_key_decodes_on_every_curve(curve: Curve) -> None:
    """DG14 keys may come compressed (SEC 1 §2.3.3): y recovered from the curve equation
    (P-224's prime is 1 mod 4, the others 3 mod 4: both square-root paths)."""
    for k in (1, 2, 12345):
        pt = curve.mul_g(k)
        assert pt is not None
        x = pt[0].to_bytes(curve.size, "big")
        assert curve.decode_public(bytes([2 + (pt[1] & 1)]) + x) == pt
        assert curve.decode_public(curve.encode(pt)) == pt
    with pytest.raises(SecureMessagingError):
        curve.decode_public(b"\x05" + bytes(curve.size))
