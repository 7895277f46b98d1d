"""Active Authentication (ICAO 9303-11 §6.1): the chip proves it holds the private key whose
public half is in DG15 (itself covered by passive authentication), by signing a challenge.

ECDSA keys: the answer is a plain ``r || s`` signature (BSI TR-03111) over the challenge with
SHA-256 unless DG14 names another hash. RSA keys: ISO/IEC 9796-2 digital signature scheme 1
with message recovery (the hash named in the signature's trailer). Pure: the challenge is
passed in.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from readers.emrtd.apdu import INS_INTERNAL_AUTHENTICATE, SW, Command, unwrap_tlv
from readers.emrtd.lds import DG_TAGS
from readers.errors import TlvError

PASSED, FAILED, NOT_SUPPORTED = "passed", "failed", "not_supported"
# The chip offers the check and its signed data says how, but this terminal cannot run it (a
# curve, parameter id or encoding it does not know): our limit, never a copy, never a pass.
NOT_VERIFIED = "not_verified"
_TRAILER_HASH = {0x33: "sha1", 0x34: "sha256", 0x36: "sha512", 0x35: "sha384", 0x38: "sha224"}
_PLAIN = "0.4.0.127.0.7.1.1.4.1"  # BSI TR-03111 ecdsa-plain-signatures
_X962 = "1.2.840.10045.4"         # ANSI X9.62 ecdsa-with-SHA*
AA_HASHES = {f"{_PLAIN}.1": "sha1", f"{_PLAIN}.2": "sha224", f"{_PLAIN}.3": "sha256",
             f"{_PLAIN}.4": "sha384", f"{_PLAIN}.5": "sha512", f"{_X962}.1": "sha1",
             f"{_X962}.3.1": "sha224", f"{_X962}.3.2": "sha256", f"{_X962}.3.3": "sha384",
             f"{_X962}.3.4": "sha512"}
_EC_HASHES = {"sha1": hashes.SHA1(), "sha224": hashes.SHA224(),  # noqa: S303 - ICAO AA
              "sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}


def aa_hash(algorithm: str | None) -> str | None:
    """The hash an ECDSA chip signs the challenge with, from DG14's ActiveAuthenticationInfo
    (None there: SHA-256, what chips without one use); None for an algorithm this terminal
    does not know — the check cannot be run (not_verified), which is not a failure."""
    if algorithm is None:
        return "sha256"
    return AA_HASHES.get(algorithm)


def public_key_from_dg15(dg15: bytes) -> Any:
    try:
        return serialization.load_der_public_key(unwrap_tlv(dg15, DG_TAGS[15]))
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise TlvError("DG15 is not a public key this terminal can use") from e


def internal_authenticate(challenge: bytes) -> Command:
    return Command(0x00, INS_INTERNAL_AUTHENTICATE, 0x00, 0x00, challenge, le=256)


def _verify_iso9796_2(key: rsa.RSAPublicKey, challenge: bytes, signature: bytes) -> bool:
    numbers = key.public_numbers()
    k = (numbers.n.bit_length() + 7) // 8
    m = pow(int.from_bytes(signature, "big"), numbers.e, numbers.n)
    if m % 16 != 12:  # ISO 9796-2 allows using n - m when the trailer nibble is not 0xC
        m = numbers.n - m
    f = m.to_bytes(k, "big")
    if f[0] & 0xC0 != 0x40:
        return False
    if f[-1] == 0xBC:
        algorithm, trailer = "sha1", 1
    elif f[-1] == 0xCC and f[-2] in _TRAILER_HASH:
        algorithm, trailer = _TRAILER_HASH[f[-2]], 2
    else:
        return False
    size = hashlib.new(algorithm).digest_size
    digest = f[-trailer - size:-trailer]
    m1 = f[1:-trailer - size]
    return hmac.compare_digest(hashlib.new(algorithm, m1 + challenge).digest(), digest)


def _ecdsa_forms(answer: bytes) -> list[bytes]:
    """The DER signatures an ECDSA answer may be: plain ``r || s`` (BSI TR-03111, what ICAO
    9303-11 asks for), or already DER (chips whose DG14 names an X9.62 ecdsa-with-SHA*
    algorithm answer so). Each is only a candidate: it still has to verify."""
    forms = []
    if answer and len(answer) % 2 == 0:
        half = len(answer) // 2
        forms.append(encode_dss_signature(int.from_bytes(answer[:half], "big"),
                                          int.from_bytes(answer[half:], "big")))
    if answer[:1] == b"\x30":
        try:
            r, s = decode_dss_signature(answer)
        except ValueError:
            return forms
        if encode_dss_signature(r, s) == answer:  # exactly one DER SEQUENCE, nothing after
            forms.append(answer)
    return forms


def verify_answer(key: Any, challenge: bytes, answer: bytes, sw: int,
                  hash_name: str | None = "sha256") -> str:
    """``hash_name``: the ECDSA hash (:func:`aa_hash`); None, one this terminal does not
    know — an ECDSA answer then cannot be checked: ``not_verified``, never a pass."""
    if sw != SW.OK or not answer:
        return FAILED
    if isinstance(key, ec.EllipticCurvePublicKey):
        if hash_name is None:
            return NOT_VERIFIED
        algorithm = ec.ECDSA(_EC_HASHES[hash_name])
        for der in _ecdsa_forms(answer):
            try:
                key.verify(der, challenge, algorithm)
            except InvalidSignature:
                continue
            return PASSED
        return FAILED
    if isinstance(key, rsa.RSAPublicKey):
        return PASSED if _verify_iso9796_2(key, challenge, answer) else FAILED
    return NOT_SUPPORTED
