"""Passive authentication (ICAO 9303-11 §5.1, 9303-12): is what the chip said signed by a
document signer that a trusted CSCA issued, and does every data group read hash to its value?

Pure: the trust store comes in as DER certificates, the time as ``now``. Outcomes:
``authentic``; ``unanchored`` — the signature is valid but no CSCA is configured, never shown as
authentic; ``failed`` with a reason code. Malformed input is a ``failed`` outcome too: a card
that cannot prove itself has failed to.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from readers.emrtd.lds import OID_LDS_SECURITY_OBJECT, Sod

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
    "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}


# Genuine signed attributes are a content type, a message digest and perhaps a signing time or
# a signing certificate: a few hundred bytes. asn1crypto spends time on each attribute it
# walks, so a SOD padded with thousands of them is refused unread.
MAX_SIGNED_ATTRS_BYTES = 4096


class PaStatus(StrEnum):
    AUTHENTIC = "authentic"
    UNANCHORED = "unanchored"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class PassiveAuth:
    status: PaStatus
    reason: str | None = None
    signer: str | None = None  # the document signer's subject, for the audit trail

    def to_json(self) -> dict[str, str | None]:
        return {"status": self.status.value, "reason": self.reason}


class _Fail(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _signer_cert(sd: Any) -> x509.Certificate:
    infos = sd["signer_infos"]
    if len(infos) != 1:
        raise _Fail("sod_signer_count")
    sid = infos[0]["sid"]
    for choice in sd["certificates"] or []:
        if choice.name != "certificate":
            continue
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            ias = sid.chosen
            if (cert.issuer == ias["issuer"]
                    and cert.serial_number == ias["serial_number"].native):
                return x509.load_der_x509_certificate(cert.dump())
        elif cert.key_identifier == sid.chosen.native:
            return x509.load_der_x509_certificate(cert.dump())
    raise _Fail("sod_signer_certificate_missing")


def _attr(attrs: Any, name: str) -> Any:
    found = [a for a in attrs if a["type"].native == name]
    if len(found) != 1 or len(found[0]["values"]) != 1:
        raise _Fail(f"sod_attribute_{name}")
    return found[0]["values"][0]


def _verify_signature(key: Any, signature: bytes, data: bytes, algorithm: Any,
                      digest: str) -> None:
    name = algorithm["algorithm"].native
    h = _HASHES[digest]()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(h))
        elif isinstance(key, rsa.RSAPublicKey):
            if name == "rsassa_pss":
                params = algorithm["parameters"]
                pss_hash = _HASHES[params["hash_algorithm"]["algorithm"].native]()
                key.verify(signature, data, padding.PSS(padding.MGF1(pss_hash),
                                                        params["salt_length"].native), pss_hash)
            else:
                key.verify(signature, data, padding.PKCS1v15(), h)
        else:
            raise _Fail("sod_signature_algorithm")
    except InvalidSignature:
        raise _Fail("sod_signature_invalid") from None
    except (UnsupportedAlgorithm, KeyError, ValueError):
        raise _Fail("sod_signature_algorithm") from None


def _valid_at(cert: x509.Certificate, now: datetime, what: str) -> None:
    if now < cert.not_valid_before_utc:
        raise _Fail(f"{what}_not_yet_valid")
    if now > cert.not_valid_after_utc:
        raise _Fail(f"{what}_expired")


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def _check_csca(csca: x509.Certificate, now: datetime) -> None:
    _valid_at(csca, now, "csca")
    try:
        bc = csca.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise _Fail("csca_not_ca") from None
    usage = _key_usage(csca)
    if not bc.ca or usage is None or not usage.key_cert_sign:
        raise _Fail("csca_not_ca")


def _anchor(ds: x509.Certificate, trust: Sequence[x509.Certificate], now: datetime) -> None:
    candidates = [c for c in trust if c.subject == ds.issuer]
    if not candidates:
        raise _Fail("unknown_signer")
    for csca in candidates:
        try:
            ds.verify_directly_issued_by(csca)
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
            continue
        _check_csca(csca, now)
        return
    raise _Fail("ds_certificate_signature_invalid")


def load_trust(certificates: Sequence[bytes]) -> list[x509.Certificate]:
    """DER or PEM certificates, as read from the trust-store folder."""
    out = []
    for raw in certificates:
        if raw.lstrip().startswith(b"-----BEGIN"):
            out.extend(x509.load_pem_x509_certificates(raw))
        else:
            out.append(x509.load_der_x509_certificate(raw))
    return out


# What asn1crypto and cryptography raise on certificates and SODs they cannot make sense of.
_MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
              RecursionError, UnsupportedAlgorithm, x509.DuplicateExtension, x509.InvalidVersion,
              x509.UnsupportedGeneralNameType)


def passive_authentication(sod: Sod, groups: dict[int, bytes],
                           trust: Sequence[x509.Certificate], *, now: datetime) -> PassiveAuth:
    """The numbered steps of ICAO 9303-11 §5.1.1; the first failure is the outcome."""
    signer = None
    try:
        sd = sod.signed_data
        ds = _signer_cert(sd)                                      # 1. the signer certificate
        signer = ds.subject.rfc4514_string()
        si = sd["signer_infos"][0]
        digest = si["digest_algorithm"]["algorithm"].native
        if digest not in _HASHES:
            raise _Fail("sod_digest_algorithm")
        attrs = si["signed_attrs"]
        if len(attrs.contents or b"") > MAX_SIGNED_ATTRS_BYTES:  # bound the work first
            raise _Fail("sod_signed_attributes_oversized")
        if not attrs:
            raise _Fail("sod_signed_attributes_missing")
        if _attr(attrs, "content_type").dotted != OID_LDS_SECURITY_OBJECT:   # 2. what is signed
            raise _Fail("sod_content_type")
        expected = hashlib.new(digest, sod.lds_object_der).digest()
        if not hmac.compare_digest(bytes(_attr(attrs, "message_digest").native), expected):
            raise _Fail("sod_message_digest")
        signed = b"\x31" + attrs.dump()[1:]  # RFC 5652 §5.4: signed over the SET OF, not [0]
        _verify_signature(ds.public_key(), bytes(si["signature"].native), signed,
                          si["signature_algorithm"], digest)            # 3. the signature
        _valid_at(ds, now, "ds_certificate")                            # 4. the signer's dates
        usage = _key_usage(ds)
        if usage is not None and not usage.digital_signature:
            raise _Fail("ds_certificate_key_usage")
        for number, content in sorted(groups.items()):                  # 5. every group read
            stored = sod.hashes.get(number)
            if stored is None:
                raise _Fail(f"dg{number}_not_in_sod")
            if not hmac.compare_digest(hashlib.new(sod.hash_algorithm, content).digest(),
                                       stored):
                raise _Fail(f"dg{number}_hash_mismatch")
        if not trust:                                                   # 6. the anchor
            return PassiveAuth(PaStatus.UNANCHORED, "no_csca_configured", signer)
        _anchor(ds, trust, now)
    except _Fail as f:
        return PassiveAuth(PaStatus.FAILED, f.reason, signer)
    except _MALFORMED as e:  # anything that cannot be checked has failed (fail closed)
        return PassiveAuth(PaStatus.FAILED, f"sod_malformed:{type(e).__name__}", signer)
    return PassiveAuth(PaStatus.AUTHENTIC, None, signer)
