"""The project's virtual CCCD: a chip that speaks the same APDUs as a Vietnamese citizen ID
(SELECT by AID, BAC, 3DES secure messaging, READ BINARY by file or short file identifier),
carrying files signed by a generated test PKI (CSCA → Document Signer → EF.SOD).

Used in-process by the demo and the tests, and behind pcscd through the vpcd driver
(``readers/doubles/vpcd.py``). Fault switches make the failures a real desk meets. Test
machines only:
nothing here belongs to a real person, and the keys are generated on the spot.
"""

from __future__ import annotations

import hashlib
import os
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from readers.emrtd.access import document_number_of, keys_from_cccd
from readers.emrtd.apdu import (
    INS_EXTERNAL_AUTHENTICATE,
    INS_GET_CHALLENGE,
    INS_INTERNAL_AUTHENTICATE,
    INS_READ_BINARY,
    INS_SELECT,
    SW,
    CardPort,
    Command,
    encode_tlv,
    parse_command,
    parse_tlvs,
)
from readers.emrtd.bac import BacKeys, card_authenticate
from readers.emrtd.ca import (
    OID_CA,
    OID_CA_ECDH,
    OID_EC_PUBLIC_KEY,
    OID_PK_ECDH,
    OID_PRIME_FIELD,
    OID_STANDARDIZED_DOMAIN_PARAMETERS,
    ChipAuthCard,
    ChipAuthOffer,
)
from readers.emrtd.ec import BY_NAME, Curve
from readers.emrtd.lds import (
    AID_ICAO,
    DG_TAGS,
    FID,
    OID_LDS_SECURITY_OBJECT,
    SFI,
    TAG_EF_COM,
    TAG_SOD,
    LdsSecurityObject,
    encode_dg13,
)
from readers.emrtd.mrz import AccessKey, CanKey, check_digit
from readers.emrtd.pace import (
    INS_GENERAL_AUTHENTICATE,
    INS_MSE,
    KEY_REF_CAN,
    KEY_REF_MRZ,
    OID_PACE_ECDH_GM_AES_128,
    PARAM_BRAINPOOL_P256R1,
    PaceCard,
    password,
)
from readers.emrtd.sm import DES3, CardChannel
from readers.errors import CardRemoved, SecureMessagingError, TlvError

DEMO_FACE = Path(__file__).resolve().parent / "data" / "demo_face.jpg"
FileKey = int | str


# -- test PKI --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TestPki:
    __test__ = False  # not a pytest test class

    csca_key: ec.EllipticCurvePrivateKey
    csca: x509.Certificate
    ds_key: ec.EllipticCurvePrivateKey
    ds: x509.Certificate

    def csca_pem(self) -> bytes:
        return self.csca.public_bytes(serialization.Encoding.PEM)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tiep Don TEST ONLY"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(*, now: datetime, label: str = "Test CSCA", ds_days: int = 3650,
             ds_expired: bool = False) -> TestPki:
    """CSCA (CA, keyCertSign) → Document Signer (digitalSignature), P-256 ECDSA."""
    csca_key = ec.generate_private_key(ec.SECP256R1())
    start = now - timedelta(days=30)
    csca = (x509.CertificateBuilder().subject_name(_name(label)).issuer_name(_name(label))
            .public_key(csca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + timedelta(days=5475))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(csca_key, hashes.SHA256()))
    ds_key = ec.generate_private_key(ec.SECP256R1())
    ds_start = now - timedelta(days=400 if ds_expired else 10)
    ds_end = now - timedelta(days=5) if ds_expired else now + timedelta(days=ds_days)
    ds = (x509.CertificateBuilder().subject_name(_name(f"{label} Document Signer"))
          .issuer_name(csca.subject).public_key(ds_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(ds_start).not_valid_after(ds_end)
          .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                       False), critical=True)
          .sign(csca_key, hashes.SHA256()))
    return TestPki(csca_key, csca, ds_key, ds)


def build_sod(groups: dict[int, bytes], pki: TestPki, *,
              signing_key: ec.EllipticCurvePrivateKey | None = None,
              extra_attrs: bytes = b"") -> bytes:
    """EF.SOD: CMS SignedData over an LDSSecurityObject with SHA-256 hashes of ``groups``;
    ``extra_attrs`` (DER Attributes) are appended to the signed attributes and signed too."""
    lso = LdsSecurityObject({
        "version": 0,
        "hash_algorithm": {"algorithm": "sha256"},
        "data_group_hash_values": [
            {"data_group_number": n, "data_group_hash_value": hashlib.sha256(v).digest()}
            for n, v in sorted(groups.items())],
    }).dump()
    attrs = cms.CMSAttributes([
        {"type": "content_type", "values": [OID_LDS_SECURITY_OBJECT]},
        {"type": "message_digest", "values": [hashlib.sha256(lso).digest()]},
    ])
    if extra_attrs:
        attrs = cms.CMSAttributes.load(encode_tlv(0x31, attrs.contents + extra_attrs))
    key = signing_key or pki.ds_key
    signature = key.sign(attrs.dump(), ec.ECDSA(hashes.SHA256()))
    ds = asn1_x509.Certificate.load(pki.ds.public_bytes(serialization.Encoding.DER))
    signer = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": {
            "issuer": ds.issuer, "serial_number": ds.serial_number}}),
        "digest_algorithm": {"algorithm": "sha256"},
        "signed_attrs": attrs,
        "signature_algorithm": {"algorithm": "sha256_ecdsa"},
        "signature": signature,
    })
    sd = cms.SignedData({
        "version": "v3",
        "digest_algorithms": [{"algorithm": "sha256"}],
        "encap_content_info": {"content_type": OID_LDS_SECURITY_OBJECT, "content": lso},
        "certificates": [ds],
        "signer_infos": [signer],
    })
    return encode_tlv(TAG_SOD, cms.ContentInfo({"content_type": "signed_data",
                                                "content": sd}).dump())


# -- the person on the card --------------------------------------------------------------------
@dataclass(frozen=True)
class CardPerson:
    id_number: str
    full_name: str
    date_of_birth: date
    sex: str                       # "Nam" | "Nữ"
    issue_date: date
    expiry_date: date | None
    place_of_origin: str = "Xã Tân Lập, Huyện Đan Phượng, Hà Nội"
    place_of_residence: str = "Số 12 Ngõ 45 Trần Thái Tông, Dịch Vọng, Cầu Giấy, Hà Nội"
    nationality: str = "Việt Nam"
    ethnicity: str = "Kinh"
    religion: str = "Không"
    identifying_features: str = "Nốt ruồi C:2cm dưới sau mép trái"
    father: str | None = "Nguyễn Văn Hải"
    mother: str | None = "Trần Thị Lan"
    spouse: str | None = None
    old_id_number: str | None = "012345678"

    @property
    def access_key(self) -> AccessKey:
        expiry = self.expiry_date or date(2099, 12, 31)
        return AccessKey(document_number_of(self.id_number), self.date_of_birth.strftime("%y%m%d"),
                         expiry.strftime("%y%m%d"))


# The demo card: Nguyễn Tiến Đạt from the registry simulator, so a chip read shows eligibility.
DEMO_PERSON = CardPerson(
    id_number="001088004321", full_name="Nguyễn Tiến Đạt", date_of_birth=date(1988, 3, 29),
    sex="Nam", issue_date=date(2021, 7, 1), expiry_date=date(2028, 3, 29),
    spouse="Lê Thị Hương",
)


def mrz_name(full_name: str) -> str:
    """Vietnamese name → MRZ: no diacritics, Đ → D, surname << given names (ICAO 9303-3)."""
    plain = unicodedata.normalize("NFD", full_name.replace("Đ", "D").replace("đ", "d"))
    plain = "".join(c for c in plain if not unicodedata.combining(c)).upper()
    parts = plain.split()
    text = parts[0] + "<<" + "<".join(parts[1:]) if parts else ""
    return "".join(c if "A" <= c <= "Z" else "<" for c in text)[:30].ljust(30, "<")


def compose_mrz(p: CardPerson) -> str:
    doc = document_number_of(p.id_number)
    optional = (p.id_number + "<<" + check_digit(p.id_number))[:15].ljust(15, "<")
    l1 = ("IDVNM" + doc + check_digit(doc) + optional)[:30]
    dob = p.date_of_birth.strftime("%y%m%d")
    exp = p.access_key.date_of_expiry
    sex = "M" if p.sex == "Nam" else "F"
    l2_head = dob + check_digit(dob) + sex + exp + check_digit(exp) + "VNM" + "<" * 11
    composite = l1[5:30] + l2_head[0:7] + l2_head[8:15] + l2_head[18:29]
    return l1 + l2_head + check_digit(composite) + mrz_name(p.full_name)


def face_record(jpeg: bytes, width: int = 300, height: int = 400) -> bytes:
    """ISO/IEC 19794-5 record around a JPEG (no feature points)."""
    info = bytes([1, 0]) + width.to_bytes(2, "big") + height.to_bytes(2, "big") + bytes(
        [1, 0]) + bytes(4)
    # gender, eye colour, hair colour, feature mask (3), expression (2), pose (3), uncertainty (3)
    header = bytes([1, 0, 0]) + bytes(3) + bytes(2) + bytes(3) + bytes(3)
    block = len(header) + 6 + len(info) + len(jpeg)
    facial = block.to_bytes(4, "big") + (0).to_bytes(2, "big") + header + info + jpeg
    return b"FAC\x00" + b"010\x00" + (14 + len(facial)).to_bytes(4, "big") + (1).to_bytes(
        2, "big") + facial


@dataclass(frozen=True)
class Faults:
    """What can go wrong with a card at the desk (issue 3, "Bad input")."""

    tamper_dg: int | None = None      # change a byte of this data group after signing
    signer: str = "good"              # good | foreign (another CSCA) | mismatch (wrong key)
    ds_expired: bool = False          # the document signer certificate has expired
    wrong_key: bool = False           # the chip's MRZ key differs: BAC answers 6300
    torn_after: int | None = None     # the card leaves the field after this many APDUs
    slow_ms: float = 0.0              # per-APDU delay (applied by the transport)
    extended: bool = True             # ATR advertises extended length
    drop_dg13: tuple[int, ...] = ()   # DG13 fields left out
    bad_mac_after: int | None = None  # corrupt the MAC of this protected answer (1-based)
    aa: str = "none"                  # none (no DG15) | ec (Active Authentication) | ec_wrong
    # the hash the chip signs AA challenges with, named in DG14's ActiveAuthenticationInfo:
    # sha1 | sha224 | sha256 | sha384 | sha512 | ripemd160 (a hash the terminal does not know)
    aa_hash: str = "sha256"
    aa_der: bool = False  # the AA answer DER-encoded (as X9.62 ecdsa-with-SHA* chips send it)
    pace: bool = True                 # EF.CardAccess offers PACE (CAN = last 6 ID digits)
    com_hides: tuple[int, ...] = ()   # data groups left out of the (unsigned) EF.COM list
    # Chip Authentication (DG14): none | aes128 | aes256 | 3des | 3des_kat (Set AT refused) |
    # clone (genuine signed DG14, another chip's key) | garbage (GA answers nonsense) |
    # unsupported (DG14 offers only DH)
    ca: str = "aes128"
    # How DG14 encodes the chip's CA key (real documents carry each of these): see
    # DG14_ENCODINGS. ``ca_curve`` names the key's curve.
    ca_encoding: str = "named"
    ca_curve: str = "brainpoolP256r1"
    tear_at: tuple[int, ...] = ()     # the card leaves the field once at these APDU numbers
    max_le: int | None = None         # refuse (6700) short reads longer than this


CA_PROTOCOLS = {"aes128": f"{OID_CA}.2.2", "aes256": f"{OID_CA}.2.4", "3des": f"{OID_CA}.2.1",
                "3des_kat": f"{OID_CA}.2.1", "clone": f"{OID_CA}.2.2",
                "garbage": f"{OID_CA}.2.2", "unsupported": f"{OID_CA}.1.2"}


def _der(value: core.Asn1Value) -> bytes:
    return bytes(value.dump())


# The encodings of DG14's ChipAuthenticationPublicKeyInfo issued documents carry (BSI
# TR-03110-3 §A.1.1.2, §A.2.1): the SubjectPublicKeyInfo's algorithm and how it gives the curve.
DG14_ENCODINGS = (
    "named",                      # id-ecPublicKey + namedCurve (RFC 5480)
    "explicit",                   # id-ecPublicKey + specifiedCurve (prime, a, b, G, n, h)
    "explicit_compressed",        # … with the generator in compressed form
    "pk_ecdh_named",              # id-PK-ECDH + namedCurve
    "pk_ecdh_explicit",           # id-PK-ECDH + specifiedCurve
    "standardized",               # standardizedDomainParameters + parameter id
    "domain_info",                # a bare key; ChipAuthenticationDomainParameterInfo, named
    "domain_info_standardized",   # a bare key; ChipAuthenticationDomainParameterInfo, by id
    "compressed_key",             # id-ecPublicKey + namedCurve, the key point compressed
)


def _ec_parameters(curve: Curve, *, compressed: bool = False) -> bytes:
    """ECParameters as a specifiedCurve (RFC 3279 §2.3.5), cofactor 1."""
    base = curve.encode(curve.g)
    if compressed:
        base = bytes([2 + (curve.gy & 1)]) + base[1:1 + curve.size]
    return encode_tlv(0x30, _der(core.Integer(1)) + encode_tlv(
        0x30, _der(core.ObjectIdentifier(OID_PRIME_FIELD)) + _der(core.Integer(curve.p)))
        + encode_tlv(0x30, encode_tlv(0x04, curve.a.to_bytes(curve.size, "big"))
                     + encode_tlv(0x04, curve.b.to_bytes(curve.size, "big")))
        + encode_tlv(0x04, base) + _der(core.Integer(curve.n)) + _der(core.Integer(1)))


def _algorithm(oid: str, params: bytes = b"") -> bytes:
    return encode_tlv(0x30, _der(core.ObjectIdentifier(oid)) + params)


AA_PLAIN_OIDS = {"sha1": 1, "sha224": 2, "sha256": 3, "sha384": 4, "sha512": 5,
                 "ripemd160": 6}  # BSI TR-03111 ecdsa-plain-<hash>: 0.4.0.127.0.7.1.1.4.1.n


def build_dg14(curve: Curve, public: tuple[int, int], protocol: str, *,
               encoding: str = "named", key_id: int | None = None,
               aa_hash: str | None = None) -> bytes:
    """SecurityInfos with a ChipAuthenticationPublicKeyInfo and a ChipAuthenticationInfo (and,
    for the ``domain_info`` encodings, a ChipAuthenticationDomainParameterInfo), the key
    encoded as ``encoding`` says (one of DG14_ENCODINGS)."""
    named = _der(core.ObjectIdentifier(curve.oid))
    standard = _der(core.Integer(curve.standard_id))
    algorithm = {
        "named": _algorithm(OID_EC_PUBLIC_KEY, named),
        "explicit": _algorithm(OID_EC_PUBLIC_KEY, _ec_parameters(curve)),
        "explicit_compressed": _algorithm(OID_EC_PUBLIC_KEY,
                                          _ec_parameters(curve, compressed=True)),
        "pk_ecdh_named": _algorithm(OID_PK_ECDH, named),
        "pk_ecdh_explicit": _algorithm(OID_PK_ECDH, _ec_parameters(curve)),
        "standardized": _algorithm(OID_STANDARDIZED_DOMAIN_PARAMETERS, standard),
        "domain_info": _algorithm(OID_EC_PUBLIC_KEY),
        "domain_info_standardized": _algorithm(OID_PK_ECDH),
        "compressed_key": _algorithm(OID_EC_PUBLIC_KEY, named),
    }[encoding]
    key_ref = _der(core.Integer(key_id)) if key_id is not None else b""
    point = curve.encode(public)
    if encoding == "compressed_key":  # SEC 1 §2.3.3: 02/03 || x
        point = bytes([2 + (public[1] & 1)]) + point[1:1 + curve.size]
    spki = encode_tlv(0x30, algorithm + encode_tlv(0x03, b"\x00" + point))
    infos = encode_tlv(0x30, _der(core.ObjectIdentifier(OID_PK_ECDH)) + spki + key_ref)
    infos += encode_tlv(0x30, _der(core.ObjectIdentifier(protocol)) + _der(core.Integer(1))
                        + key_ref)
    if encoding.startswith("domain_info"):
        domain = (_algorithm(OID_EC_PUBLIC_KEY, named) if encoding == "domain_info"
                  else _algorithm(OID_STANDARDIZED_DOMAIN_PARAMETERS, standard))
        infos += encode_tlv(0x30, _der(core.ObjectIdentifier(OID_CA_ECDH)) + domain + key_ref)
    if aa_hash is not None:  # ActiveAuthenticationInfo: id-AA, version 1, the algorithm
        signature = f"0.4.0.127.0.7.1.1.4.1.{AA_PLAIN_OIDS[aa_hash]}"
        infos += encode_tlv(0x30, _der(core.ObjectIdentifier("2.23.136.1.1.5"))
                            + _der(core.Integer(1)) + _der(core.ObjectIdentifier(signature)))
    return encode_tlv(DG_TAGS[14], encode_tlv(0x31, infos))


def build_files(person: CardPerson, pki: TestPki, *, faults: Faults = Faults(),
                photo: bytes | None = None, other_pki: TestPki | None = None,
                now: datetime | None = None,
                aa_key: ec.EllipticCurvePrivateKey | None = None,
                ca_public: tuple[int, int] | None = None) -> dict[FileKey, bytes]:
    now = now or datetime.now(UTC)
    mrz = compose_mrz(person)
    dg1 = encode_tlv(DG_TAGS[1], encode_tlv(0x5F1F, mrz.encode("ascii")))
    jpeg = photo if photo is not None else DEMO_FACE.read_bytes()
    biometric = encode_tlv(0x7F60, encode_tlv(0xA1, encode_tlv(0x80, b"\x01\x01"))
                           + encode_tlv(0x5F2E, face_record(jpeg)))
    dg2 = encode_tlv(DG_TAGS[2], encode_tlv(0x7F61, encode_tlv(0x02, b"\x01") + biometric))
    values = {
        1: person.id_number, 2: person.full_name, 3: person.date_of_birth.strftime("%d/%m/%Y"),
        4: person.sex, 5: person.nationality, 6: person.ethnicity, 7: person.religion,
        8: person.place_of_origin, 9: person.place_of_residence,
        10: person.identifying_features, 11: person.issue_date.strftime("%d/%m/%Y"),
        12: person.expiry_date.strftime("%d/%m/%Y") if person.expiry_date else "Không thời hạn",
        15: person.old_id_number or "", 16: "0123456789ABCDEF",
    }
    for n in faults.drop_dg13:
        values.pop(n, None)
    dg13 = encode_dg13(values, father=None if 13 in faults.drop_dg13 else person.father,
                       mother=None if 13 in faults.drop_dg13 else person.mother,
                       spouse=person.spouse)
    groups: dict[int, bytes] = {1: dg1, 2: dg2, 13: dg13}
    if ca_public is not None and faults.ca != "none":
        groups[14] = build_dg14(BY_NAME[faults.ca_curve], ca_public, CA_PROTOCOLS[faults.ca],
                                encoding=faults.ca_encoding,
                                aa_hash=faults.aa_hash if aa_key is not None else None)
    if aa_key is not None:
        groups[15] = encode_tlv(DG_TAGS[15], aa_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    tags = bytes(DG_TAGS[n] for n in sorted(groups) if n not in faults.com_hides)
    com = encode_tlv(TAG_EF_COM, encode_tlv(0x5F01, b"0107") + encode_tlv(0x5F36, b"040000")
                     + encode_tlv(0x5C, tags))
    signing_pki = pki
    if faults.signer == "foreign":
        signing_pki = other_pki or make_pki(now=now, label="Foreign CSCA")
    if faults.ds_expired:
        signing_pki = _reissue_ds(pki, now)
    key = ec.generate_private_key(ec.SECP256R1()) if faults.signer == "mismatch" else None
    sod = build_sod(groups, signing_pki, signing_key=key)
    if faults.tamper_dg is not None:
        # Change one letter (A↔B…) so the file still parses: only the signature can tell.
        data = bytearray(groups[faults.tamper_dg])
        at = max(i for i, b in enumerate(data) if 0x41 <= b <= 0x59)
        data[at] ^= 0x02 if data[at] & 0x02 == 0 else 0x06
        groups[faults.tamper_dg] = bytes(data)
    files: dict[FileKey, bytes] = {"com": com, "sod": sod}
    if faults.pace:  # SecurityInfos: PACEInfo {id-PACE-ECDH-GM-AES-CBC-CMAC-128, v2, P-256r1}
        files["cardaccess"] = encode_tlv(0x31, encode_tlv(0x30, encode_tlv(
            0x06, OID_PACE_ECDH_GM_AES_128) + encode_tlv(0x02, b"\x02")
            + encode_tlv(0x02, bytes([PARAM_BRAINPOOL_P256R1]))))
    for number, content in groups.items():
        files[number] = content
    return files


def _reissue_ds(pki: TestPki, now: datetime) -> TestPki:
    """An expired document signer issued by ``pki.csca`` (so only the dates are wrong)."""
    ds = (x509.CertificateBuilder().subject_name(_name("Test CSCA Document Signer"))
          .issuer_name(pki.csca.subject).public_key(pki.ds_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(days=400)).not_valid_after(now - timedelta(days=5))
          .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                       False), critical=True)
          .sign(pki.csca_key, hashes.SHA256()))
    return replace(pki, ds=ds)


# -- the chip ---------------------------------------------------------------------------------
def make_atr(extended: bool) -> bytes:
    """A contactless ISO 14443-4 ATR as PC/SC shows it, with a card-capabilities byte that
    says whether extended Lc/Le is supported (ISO 7816-4 §8.1.1.2.7, third byte, b7)."""
    historical = bytes([0x80, 0x73, 0x00, 0x21, 0xC0 if extended else 0x80])
    t0 = 0x80 | len(historical)
    body = bytes([t0, 0x80, 0x01]) + historical
    tck = 0
    for b in body:
        tck ^= b
    return bytes([0x3B]) + body + bytes([tck])


@dataclass
class VirtualCccd:
    """Answers APDUs as the chip would. ``process`` returns the answer with its status word."""

    files: dict[FileKey, bytes]
    access_key: AccessKey
    faults: Faults = field(default_factory=Faults)
    rnd: Callable[[int], bytes] = os.urandom
    aa_key: ec.EllipticCurvePrivateKey | None = None
    ca_private: int | None = None     # the chip's static CA key on ``faults.ca_curve``
    apdus: int = 0
    _selected_app: bool = False
    _current: FileKey | None = None
    _challenge: bytes | None = None
    _channel: CardChannel | None = None
    _answers: int = 0
    _pace: PaceCard | None = None
    _ca: ChipAuthCard | None = None

    @property
    def atr(self) -> bytes:
        return make_atr(self.faults.extended)

    def reset(self) -> None:
        """Power cycle: the session keys and the selection are gone."""
        self._selected_app = False
        self._current = None
        self._challenge = None
        self._channel = None
        self._pace = None
        self._ca = None

    def process(self, apdu: bytes) -> bytes:
        self.apdus += 1
        if self.faults.torn_after is not None and self.apdus > self.faults.torn_after:
            raise CardRemoved("virtual card left the field")
        if self.apdus in self.faults.tear_at:
            self.reset()
            raise CardRemoved("virtual card left the field (and will be back)")
        if self.faults.slow_ms:
            time.sleep(self.faults.slow_ms / 1000)
        try:
            if self._channel is not None and apdu[:1] and apdu[0] & 0x0C == 0x0C:
                return self._protected(apdu)
            return self._plain(parse_command(apdu))
        except TlvError:
            return SW.WRONG_LENGTH.to_bytes(2, "big")

    def _sw(self, sw: int) -> bytes:
        return sw.to_bytes(2, "big")

    def _plain(self, c: Command) -> bytes:
        if c.extended and not self.faults.extended:
            return self._sw(SW.WRONG_LENGTH)
        if c.ins == INS_SELECT and c.p1 == 0x04:
            if c.data != AID_ICAO:
                return self._sw(SW.FILE_NOT_FOUND)
            self.reset()
            self._selected_app = True
            return self._sw(SW.OK)
        if c.ins == INS_SELECT and c.p1 == 0x00:
            return self._sw(SW.INS_NOT_SUPPORTED)  # DOMAIN.md §4: no MF on these cards
        if (c.ins == INS_READ_BINARY and c.p1 == 0x80 | SFI["cardaccess"]
                and "cardaccess" in self.files):
            content = self.files["cardaccess"]  # readable before any authentication
            return content[c.p2:c.p2 + (c.le or 256)] + self._sw(SW.OK)
        if c.ins == INS_MSE and c.p1 == 0xC1 and c.p2 == 0xA4 and "cardaccess" in self.files:
            return self._sw(self._pace_start(c.data))
        if c.ins == INS_GENERAL_AUTHENTICATE and self._pace is not None:
            data, sw = self._pace.answer(c.data)
            if self._pace.suite is not None:
                self._channel = CardChannel(self._pace.suite, bytes(16))
                self._pace = None
            return data + self._sw(sw)
        if not self._selected_app:
            return self._sw(SW.FILE_NOT_FOUND)
        if c.ins == INS_GET_CHALLENGE:
            self._challenge = self.rnd(8)
            return self._challenge + self._sw(SW.OK)
        if c.ins == INS_EXTERNAL_AUTHENTICATE:
            challenge, self._challenge = self._challenge, None
            key = self.access_key
            if self.faults.wrong_key:
                key = AccessKey(key.document_number, key.date_of_birth, "000101")
            result = None
            if challenge is not None:
                result = card_authenticate(BacKeys.from_access_key(key), challenge, c.data,
                                           k_ic=self.rnd(16))
            if result is None:
                return self._sw(SW.AUTH_FAILED)
            answer, session = result
            self._channel = CardChannel(session.suite, session.ssc)
            return answer + self._sw(SW.OK)
        return self._sw(SW.SECURITY_NOT_SATISFIED)

    def _pace_start(self, data: bytes) -> int:
        """MSE:Set AT for PACE: the password named by its key reference (83)."""
        try:
            ref = dict(parse_tlvs(data)).get(0x83, b"")
        except TlvError:
            return SW.WRONG_DATA
        key: AccessKey | CanKey = CanKey(self.access_key.document_number[-6:])
        if ref == bytes([KEY_REF_MRZ]):
            key = self.access_key
        elif ref != bytes([KEY_REF_CAN]):
            return SW.WRONG_DATA
        if self.faults.wrong_key:
            key = CanKey("000000")
        self._pace = PaceCard(password(key)[0], self.rnd)
        return SW.OK

    def _protected(self, apdu: bytes) -> bytes:
        channel = self._channel
        assert channel is not None  # guarded by process()
        try:
            c = channel.unwrap_command(apdu)
        except SecureMessagingError:
            self._channel = None  # ICAO 9303-11 §9.8: an SM error ends the session
            return self._sw(SW.SM_DATA_INCORRECT)
        data, sw, switch = self._command_ca(c)
        if not c.extended and len(data) > self._short_answer_room(channel):
            data, sw = b"", SW.WRONG_LENGTH  # the protected answer would not fit in 256 bytes
        answer = channel.wrap_answer(data, sw)
        if switch is not None:  # Chip Authentication: new keys from the next command on
            self._channel = CardChannel(switch, bytes(switch.ssc_size))
        self._answers += 1
        if self.faults.bad_mac_after is not None and self._answers == self.faults.bad_mac_after:
            answer = answer[:-3] + bytes([answer[-3] ^ 0x01]) + answer[-2:]
        return answer

    @staticmethod
    def _short_answer_room(channel: CardChannel) -> int:
        """The most plaintext a short protected answer carries: DO87 (padded to whole blocks,
        with its indicator byte and a 3-byte header) + DO99 (4) + DO8E (10) ≤ 256 bytes."""
        block = channel.suite.block_size
        return (256 - 4 - 10 - 3 - 1) // block * block - 1

    def _ca_card(self) -> ChipAuthCard | None:
        if self.ca_private is None or self.faults.ca in ("none", "unsupported"):
            return None
        cipher, size = {"aes256": ("aes", 32), "3des": (DES3, 16),
                        "3des_kat": (DES3, 16)}.get(self.faults.ca, ("aes", 16))
        private = self.ca_private
        curve = BY_NAME[self.faults.ca_curve]
        if self.faults.ca == "clone":  # the copied DG14 names another chip's key
            private = private * 7 % curve.n or 1
        offer = ChipAuthOffer(CA_PROTOCOLS[self.faults.ca], cipher, size, curve, curve.g, None)
        return ChipAuthCard(offer, private)

    def _command_ca(self, c: Command) -> tuple[bytes, int, Any]:
        """Chip Authentication's commands, then everything else."""
        if c.ins in (INS_MSE, INS_GENERAL_AUTHENTICATE) and c.p1 in (0x41, 0x00):
            if self._ca is None:
                self._ca = self._ca_card()
            if self._ca is None or (self.faults.ca == "3des_kat" and c.p2 == 0xA4):
                return b"", SW.WRONG_DATA if c.ins == INS_MSE else SW.INS_NOT_SUPPORTED, None
            if self.faults.ca == "garbage" and c.ins == INS_GENERAL_AUTHENTICATE:
                return b"\x01\x02\x03", SW.OK, None
            return self._ca.command(c)
        if self.faults.max_le is not None and c.ins == INS_READ_BINARY and not c.extended \
                and (c.le or 256) > self.faults.max_le:
            return b"", SW.WRONG_LENGTH, None
        data, sw = self._command(c)
        return data, sw, None

    def _command(self, c: Command) -> tuple[bytes, int]:
        if c.extended and not self.faults.extended:
            return b"", SW.WRONG_LENGTH
        if c.ins == INS_SELECT and c.p1 == 0x04:  # after PACE the AID is selected under SM
            if c.data != AID_ICAO:
                return b"", SW.FILE_NOT_FOUND
            self._selected_app = True
            return b"", SW.OK
        if c.ins == INS_SELECT and c.p1 == 0x02:
            fid = int.from_bytes(c.data, "big") if len(c.data) == 2 else -1
            for key, value in FID.items():
                if value == fid:
                    if key not in self.files:
                        return b"", SW.SECURITY_NOT_SATISFIED if key == 3 else SW.FILE_NOT_FOUND
                    self._current = key
                    return b"", SW.OK
            return b"", SW.FILE_NOT_FOUND
        if c.ins == INS_READ_BINARY:
            if c.p1 & 0x80:
                sfi = c.p1 & 0x1F
                key = next((k for k, v in SFI.items() if v == sfi), None)
                if key is None or key not in self.files:
                    return b"", SW.FILE_NOT_FOUND
                self._current, offset = key, c.p2
            else:
                offset = ((c.p1 & 0x7F) << 8) | c.p2
            if self._current is None:
                return b"", SW.FILE_NOT_FOUND
            content = self.files[self._current]
            if offset >= len(content):
                return b"", SW.WRONG_P1P2
            want = c.le or 256
            chunk = content[offset:offset + want]
            return chunk, SW.OK if len(chunk) == want else SW.END_OF_FILE
        if c.ins == INS_INTERNAL_AUTHENTICATE and self.aa_key is not None:
            key = self.aa_key
            if self.faults.aa == "ec_wrong":
                key = ec.generate_private_key(ec.SECP256R1())
            chosen = {"sha1": hashes.SHA1(), "sha224": hashes.SHA224(),  # noqa: S303 - AA
                      "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}.get(
                self.faults.aa_hash, hashes.SHA256())
            signature = key.sign(c.data, ec.ECDSA(chosen))
            if self.faults.aa_der:
                return signature, SW.OK
            r, s_ = decode_dss_signature(signature)
            return r.to_bytes(32, "big") + s_.to_bytes(32, "big"), SW.OK
        return b"", SW.INS_NOT_SUPPORTED


def demo_card(*, now: datetime | None = None, faults: Faults = Faults(),
              person: CardPerson = DEMO_PERSON, pki: TestPki | None = None,
              other_pki: TestPki | None = None,
              photo: bytes | None = None) -> tuple[VirtualCccd, TestPki]:
    """A ready virtual card and its PKI (give ``pki.csca_pem()`` to the trust store)."""
    pki = pki or make_pki(now=now or datetime.now(UTC))
    aa_key = ec.generate_private_key(ec.SECP256R1()) if faults.aa != "none" else None
    ca_curve = BY_NAME[faults.ca_curve]
    ca_private = ca_curve.scalar(os.urandom)
    ca_public = ca_curve.mul_g(ca_private)
    assert ca_public is not None
    card = VirtualCccd(build_files(person, pki, faults=faults, now=now, aa_key=aa_key,
                                   ca_public=ca_public, other_pki=other_pki, photo=photo),
                       person.access_key, faults, aa_key=aa_key, ca_private=ca_private)
    return card, pki



class CardProcessPort:
    """The in-process transport: what pcscd would carry, as bytes."""

    def __init__(self, card: VirtualCccd) -> None:
        self.card = card

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        answer = self.card.process(apdu)
        return answer[:-2], int.from_bytes(answer[-2:], "big")


@dataclass
class DemoSource:
    """The demo's "present demo card": the virtual CCCD in process, no pcscd needed."""

    card: VirtualCccd
    name: str = "Thẻ mẫu (demo)"
    person: CardPerson = DEMO_PERSON

    @property
    def demo_keys(self) -> list[AccessKey | CanKey]:
        """What staff would scan from the card's QR."""
        p = self.person
        return keys_from_cccd(p.id_number, p.date_of_birth, p.issue_date)

    def connect(self) -> tuple[CardPort, bytes]:
        self.card.reset()
        return CardProcessPort(self.card), self.card.atr
