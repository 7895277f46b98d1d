"""The chip core against the project's virtual CCCD, in process: byte-level, no pcscd.

Every fault switch ends in its own clear outcome, and a card torn at any APDU never yields a
result.
"""

from __future__ import annotations

import os
from datetime import date
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from readers.doubles.vcard import (
    DEMO_PERSON,
    CardProcessPort,
    Faults,
    TestPki,
    VirtualCccd,
    build_files,
    compose_mrz,
    demo_card,
    face_record,
    make_atr,
    make_pki,
    mrz_name,
)
from readers.emrtd.access import expiry_candidates, keys_from_cccd
from readers.emrtd.apdu import (
    Command,
    encode_command,
    encode_tlv,
    parse_command,
    parse_tlv,
    parse_tlvs,
    unwrap_tlv,
)
from readers.emrtd.atr import supports_extended_length
from readers.emrtd.chip import ChipIdentity, ChipRead, read_chip, read_with_retries
from readers.emrtd.lds import (
    DG_TAGS,
    encode_dg13,
    parse_dg2,
    parse_dg13,
    parse_ef_com,
    parse_face_record,
)
from readers.emrtd.mrz import AccessKey, CanKey, access_key_from_line2, check_digit, parse_td1
from readers.emrtd.pa import PaStatus
from readers.errors import AccessDenied, CardRemoved, MrzError, SecureMessagingError, TlvError
from tests.helpers.chip import NOW, pki, trust


@cache
def foreign_pki() -> TestPki:
    return make_pki(now=NOW, label="Foreign CSCA")


def card(faults: Faults | None = None) -> VirtualCccd:
    """The virtual CCCD with Chip Authentication (AES-128, brainpoolP256r1) unless told."""
    return demo_card(now=NOW, faults=faults or Faults(), pki=pki(), other_pki=foreign_pki())[0]


def read(c: VirtualCccd, *, extended: bool = False,
         keys: list[AccessKey | CanKey] | None = None,
         trusted: bool = True, seen: list[ChipIdentity] | None = None) -> ChipRead:
    return read_chip(CardProcessPort(c), keys or [DEMO_PERSON.access_key], rnd=os.urandom,
                     extended=extended, trust=trust() if trusted else [], now=NOW,
                     on_identity=seen.append if seen is not None else None)


# -- MRZ and access keys -------------------------------------------------------------------
def test_domain_mrz_example() -> None:
    t = parse_td1("IDVNM0930470641001093047064<<2\n9301054M3301052VNM<<<<<<<<<<<8\n"
                  "UNG<<HOANG<HIEP<<<<<<<<<<<<<<<")
    assert (t.document_number, t.date_of_birth, t.date_of_expiry, t.sex) == (
        "093047064", "930105", "330105", "M")
    assert t.id_number == "001093047064"


@pytest.mark.parametrize("bad", [
    "IDVNM0930470649001093047064<<2\n9301054M3301052VNM<<<<<<<<<<<8\nUNG<<HOANG<<<<<<<<<<<<<<<<<<<",
    "IDVNM0930470641001093047064<<2\n9301055M3301052VNM<<<<<<<<<<<8\nUNG<<HOANG<<<<<<<<<<<<<<<<<<<",
    "IDVNM0930470641001093047064<<2\n9301054M3301052VNM<<<<<<<<<<<9\nUNG<<HOANG<<<<<<<<<<<<<<<<<<<",
    "IDVNM093047064",
    "idvnm0930470641001093047064<<2\n9301054M3301052VNM<<<<<<<<<<<8\nUNG<<HOANG<HIÊP<<<<<<<<<<<<<<",
])
def test_mrz_check_digits(bad: str) -> None:
    with pytest.raises(MrzError):
        parse_td1(bad)


def test_check_digit_and_line2() -> None:
    assert check_digit("L898902C<") == "3"
    key = access_key_from_line2("9301054M3301052VNM<<<<<<<<<<<8", "093047064")
    assert (key.date_of_birth, key.date_of_expiry) == ("930105", "330105")
    with pytest.raises(MrzError):
        access_key_from_line2("9301053M3301052VNM", "093047064")


def test_composed_mrz_parses_back() -> None:
    t = parse_td1(compose_mrz(DEMO_PERSON))
    assert t.access_key == DEMO_PERSON.access_key
    assert t.id_number == DEMO_PERSON.id_number
    assert mrz_name("Nguyễn Tiến Đạt") == "NGUYEN<<TIEN<DAT".ljust(30, "<")


@pytest.mark.parametrize(("dob", "issued", "first"), [
    (date(1988, 3, 29), date(2021, 7, 1), "280329"),     # age 33 → birthday at 40
    (date(1998, 1, 1), date(2021, 6, 1), "380101"),      # within 2 years of 25 → 40
    (date(2012, 5, 5), date(2025, 1, 1), "370505"),      # 2023 law: 14, but within 2 → 25
    (date(2015, 5, 5), date(2024, 8, 1), "290505"),      # 2023 law: birthday at 14
    (date(1960, 5, 5), date(2021, 6, 1), "991231"),      # issued after 58: no expiry
])
def test_expiry_from_the_age_milestones(dob: date, issued: date, first: str) -> None:
    assert expiry_candidates(dob, issued)[0] == first


def test_keys_from_qr_try_candidates_until_one_works() -> None:
    keys = keys_from_cccd(DEMO_PERSON.id_number, DEMO_PERSON.date_of_birth,
                          DEMO_PERSON.issue_date)
    assert keys[1] == DEMO_PERSON.access_key  # after the CAN
    wrong_first = [AccessKey("088004321", "880329", "480329"), *keys]
    assert read(card(), keys=wrong_first).passive_auth.status is PaStatus.AUTHENTIC


# -- codecs ------------------------------------------------------------------------------------
@given(tag=st.sampled_from([0x5F1F, 0x61, 0x7F61, 0x5C, 0x87]), value=st.binary(max_size=70000))
def test_tlv_round_trip(tag: int, value: bytes) -> None:
    encoded = encode_tlv(tag, value)
    assert parse_tlv(encoded) == (tag, value, len(encoded))


@pytest.mark.parametrize("data", [
    b"\x61", b"\x61\x05abc", b"\x61\x80abc", b"\x61\x84\x00\x00\x00\x01a",
    b"\x61\x83\xff\xff\xff", b"\x5f", b"\x5f\x9f\x9f\x9f\x9f\x01", b"\x61\x82\x01",
])
def test_malformed_tlv(data: bytes) -> None:
    with pytest.raises(TlvError):
        parse_tlvs(data)


def test_unwrap_refuses_trailing_bytes_and_wrong_tags() -> None:
    with pytest.raises(TlvError):
        unwrap_tlv(encode_tlv(0x61, b"x") + b"\x00", 0x61)
    with pytest.raises(TlvError):
        unwrap_tlv(encode_tlv(0x62, b"x"), 0x61)


@given(data=st.binary(max_size=300), le=st.one_of(st.none(), st.integers(1, 256)))
def test_short_apdu_round_trip(data: bytes, le: int | None) -> None:
    c = Command(0x00, 0xB0, 0x01, 0x02, data[:255], le)
    assert parse_command(encode_command(c)) == c


def test_extended_apdu_round_trip() -> None:
    c = Command(0x0C, 0xB0, 0, 0, bytes(600), 0x1000, extended=True)
    assert parse_command(encode_command(c)) == c


def test_atr_tells_extended_length() -> None:
    assert supports_extended_length(make_atr(True))
    assert not supports_extended_length(make_atr(False))
    assert not supports_extended_length(b"\x3b")
    assert not supports_extended_length(bytes.fromhex("3B8F8001804F0CA000000306030001000000006A"))


# -- data groups ------------------------------------------------------------------------------
def test_dg13_every_field() -> None:
    c = card()
    dg13 = parse_dg13(c.files[13])
    assert set(dg13.fields) == set(range(1, 17))
    assert dg13.get(2) == "Nguyễn Tiến Đạt" and dg13.get(4) == "Nam"
    assert (dg13.father_name, dg13.mother_name, dg13.spouse_name) == (
        "Nguyễn Văn Hải", "Trần Thị Lan", "Lê Thị Hương")
    assert dg13.get(15) == "012345678" and dg13.get(16) == "0123456789ABCDEF"


def test_dg13_absent_fields_are_absent() -> None:
    dg13 = parse_dg13(encode_dg13({1: "001088004321", 2: "A"}))
    assert dg13.get(3) is None and dg13.father_name is None and dg13.spouse_name is None


def _dg13(*entries: bytes) -> bytes:
    body = encode_tlv(0x30, encode_tlv(0x02, b"\x01") + encode_tlv(0x31, b"".join(entries)))
    return encode_tlv(DG_TAGS[13], body)


@pytest.mark.parametrize("data", [
    _dg13(encode_tlv(0x30, encode_tlv(0x02, b"\x02") + encode_tlv(0x0C, b"\xc3\x28"))),
    _dg13(encode_tlv(0x30, encode_tlv(0x02, b"\x02") + encode_tlv(0x04, b"abc"))),
    _dg13(encode_tlv(0x30, encode_tlv(0x0C, b"abc"))),
    _dg13(encode_tlv(0x30, encode_tlv(0x02, b"\x02") + encode_tlv(0x0C, b"a")),
          encode_tlv(0x30, encode_tlv(0x02, b"\x02") + encode_tlv(0x0C, b"b"))),
    _dg13(encode_tlv(0x04, b"x")),
    encode_tlv(DG_TAGS[13], encode_tlv(0x30, encode_tlv(0x02, b"\x01"))),
    encode_tlv(DG_TAGS[1], b""),
])
def test_dg13_malformed(data: bytes) -> None:
    with pytest.raises(TlvError):
        parse_dg13(data)


def test_dg2_jpeg_and_jpeg2000() -> None:
    photo = parse_dg2(card().files[2])
    assert photo.format == "jpeg" and photo.image.startswith(b"\xff\xd8\xff")
    j2k = face_record(b"\xff\x4f\xff\x51" + bytes(50))
    j2k = j2k[:14 + 20 + 1] + b"\x01" + j2k[14 + 20 + 2:]
    assert parse_face_record(j2k).format == "jpeg2000"
    with pytest.raises(TlvError):
        parse_face_record(face_record(b"GIF89a" + bytes(40)))
    with pytest.raises(TlvError):
        parse_face_record(b"FAC\x00" + bytes(10))


def test_ef_com_lists_groups() -> None:
    assert parse_ef_com(card().files["com"]).data_groups == (1, 2, 13, 14)


# -- whole reads ------------------------------------------------------------------------------
@pytest.mark.parametrize("extended", [False, True])
def test_full_read_is_authentic(extended: bool) -> None:
    seen: list[ChipIdentity] = []
    result = read(card(), extended=extended, seen=seen)
    assert result.passive_auth.status is PaStatus.AUTHENTIC
    assert len(seen) == 1 and seen[0].passive_auth.status is PaStatus.AUTHENTIC
    assert seen[0].dg13.get(1) == "001088004321" and seen[0].access == "bac"
    assert result.photo is not None and result.photo.format == "jpeg"
    assert result.active_auth == "not_supported"
    assert result.chip_auth == "passed"
    assert result.apdus <= (15 if extended else 98)


def test_without_csca_it_is_unanchored_never_authentic() -> None:
    pa = read(card(), trusted=False).passive_auth
    assert (pa.status, pa.reason) == (PaStatus.UNANCHORED, "no_csca_configured")


@pytest.mark.parametrize(("faults", "reason"), [
    (Faults(tamper_dg=13), "dg13_hash_mismatch"),
    (Faults(tamper_dg=1), "dg1_hash_mismatch"),
    (Faults(signer="foreign"), "unknown_signer"),
    (Faults(signer="mismatch"), "sod_signature_invalid"),
    (Faults(ds_expired=True), "ds_certificate_expired"),
])
def test_passive_authentication_failures(faults: Faults, reason: str) -> None:
    pa = read(card(faults)).passive_auth
    assert (pa.status, pa.reason) == (PaStatus.FAILED, reason)


def test_tampered_photo_fails_the_final_check_only() -> None:
    seen: list[ChipIdentity] = []
    result = read(card(Faults(tamper_dg=2)), seen=seen)
    assert seen[0].passive_auth.status is PaStatus.AUTHENTIC
    assert (result.passive_auth.status, result.passive_auth.reason) == (
        PaStatus.FAILED, "dg2_hash_mismatch")


def test_wrong_key_is_access_denied() -> None:
    with pytest.raises(AccessDenied):
        read(card(Faults(wrong_key=True)))


def test_absent_dg13_fields_still_read() -> None:
    result = read(card(Faults(drop_dg13=(6, 7, 10, 13))))
    assert result.passive_auth.status is PaStatus.AUTHENTIC
    assert result.identity.dg13.get(6) is None and result.identity.dg13.father_name is None


def test_card_without_extended_length() -> None:
    c = card(Faults(extended=False))
    assert read(c).passive_auth.status is PaStatus.AUTHENTIC
    c.reset()
    with pytest.raises(Exception):  # noqa: B017 - the card refuses: 6700 under SM
        read(c, extended=True)


def _apdus_for_full_read() -> int:
    return read(card()).apdus


def test_torn_at_every_apdu_never_yields_a_result() -> None:
    total = _apdus_for_full_read()
    for k in range(total):
        with pytest.raises(CardRemoved):
            read(card(Faults(torn_after=k)))


def test_bad_mac_at_every_answer_is_a_secure_messaging_error() -> None:
    protected = _apdus_for_full_read() - 3  # SELECT AID, GET CHALLENGE, EXT AUTH are plain
    for k in range(1, protected + 1):
        with pytest.raises(SecureMessagingError):
            read(card(Faults(bad_mac_after=k)))


def test_one_corrupted_answer_during_chip_authentication_is_no_copy() -> None:
    """A bad MAC on one answer while Chip Authentication runs (under the old keys, or the
    first answer under the new ones) branded a genuine card a copy ("BẢN SAO"), with no
    second try. A copy never proves its key; a genuine chip does on the next try — so CA is
    tried twice before it is called failed."""
    passed: list[int] = []
    for k in range(1, 12):
        c = card(Faults(bad_mac_after=k))

        def connect(c: VirtualCccd = c) -> CardProcessPort:
            c.reset()
            return CardProcessPort(c)

        try:
            result = read_with_retries(connect, [DEMO_PERSON.access_key], retries=2,
                                       rnd=os.urandom, extended=False, trust=trust(), now=NOW)
        except SecureMessagingError:
            continue  # outside CA: a read error, said as such (never a verdict)
        assert result.chip_auth == "passed", (k, result.chip_auth, result.chip_auth_reason)
        passed.append(k)
    # the three answers CA itself exchanges under BAC here: MSE, General Authenticate, and the
    # first answer under the new keys (the others are answers outside CA: read errors)
    assert passed == [7, 8, 9], passed
    clone = card(Faults(ca="clone"))

    def reconnect() -> CardProcessPort:
        clone.reset()
        return CardProcessPort(clone)

    copy = read_with_retries(reconnect, [DEMO_PERSON.access_key], retries=2, rnd=os.urandom,
                             extended=False, trust=trust(), now=NOW)
    assert copy.chip_auth == "failed" and copy.reconnects == 2  # tried twice, then said


def test_retry_after_tag_lost_resumes_where_it_stopped() -> None:
    c = card(Faults(tear_at=(40,)))
    connections = 0

    def connect() -> CardProcessPort:
        nonlocal connections
        connections += 1
        c.reset()
        return CardProcessPort(c)

    result = read_with_retries(connect, [DEMO_PERSON.access_key], retries=2, rnd=os.urandom,
                               extended=False, trust=trust(), now=NOW)
    assert result.passive_auth.status is PaStatus.AUTHENTIC and result.chip_auth == "passed"
    assert connections == 2 and result.reconnects == 1


def test_retry_budget_is_bounded() -> None:
    def connect() -> CardProcessPort:
        return CardProcessPort(card(Faults(torn_after=5)))

    with pytest.raises(CardRemoved):
        read_with_retries(connect, [DEMO_PERSON.access_key], retries=2, rnd=os.urandom,
                          extended=False, trust=trust(), now=NOW)


# -- active authentication --------------------------------------------------------------------
def aa_card(mode: str) -> VirtualCccd:
    from cryptography.hazmat.primitives.asymmetric import ec

    faults = Faults(aa=mode)
    key = ec.generate_private_key(ec.SECP256R1())
    files = build_files(DEMO_PERSON, pki(), faults=faults, now=NOW, aa_key=key)
    return VirtualCccd(files, DEMO_PERSON.access_key, faults, aa_key=key)


@pytest.mark.parametrize(("mode", "outcome"), [("ec", "passed"), ("ec_wrong", "failed")])
def test_active_authentication(mode: str, outcome: str) -> None:
    result = read(aa_card(mode))
    assert result.active_auth == outcome
    assert result.passive_auth.status is PaStatus.AUTHENTIC  # DG15 itself is signed


@pytest.mark.parametrize(("aa_hash", "outcome"), [
    ("sha1", "passed"), ("sha224", "passed"), ("sha384", "passed"), ("sha512", "passed"),
    ("ripemd160", "not_verified")])
def test_active_authentication_hashes_as_dg14_says(aa_hash: str, outcome: str) -> None:
    """The challenge was always hashed with SHA-256: a genuine ECDSA chip whose DG14
    ActiveAuthenticationInfo names SHA-1/224/384/512 failed AA — called a possible copy. A
    hash this terminal does not know is "not verified" (our limit), never a pass."""
    genuine = read(card(Faults(aa="ec", aa_hash=aa_hash)))  # with DG14 (CA), which names it
    assert genuine.active_auth == outcome
    if outcome == "passed":
        assert read(card(Faults(aa="ec_wrong", aa_hash=aa_hash))).active_auth == "failed"


def test_an_ecdsa_answer_in_der_is_read_too() -> None:
    """Chips whose DG14 names an X9.62 ecdsa-with-SHA* algorithm answer with a DER signature,
    not plain r || s: it was read as a 64-byte plain one and failed (a copy). Both forms are
    candidates now; each still has to verify."""
    assert read(card(Faults(aa="ec", aa_der=True))).active_auth == "passed"
    assert read(card(Faults(aa="ec_wrong", aa_der=True))).active_auth == "failed"


def test_rsa_iso9796_2_answers() -> None:
    import hashlib

    from cryptography.hazmat.primitives.asymmetric import rsa

    from readers.emrtd.aa import verify_answer

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    n, d = key.public_key().public_numbers().n, key.private_numbers().d
    challenge = bytes(range(8))
    m1 = os.urandom(128 - 20 - 2)
    f = b"\x6a" + m1 + hashlib.sha1(m1 + challenge).digest() + b"\xbc"
    signature = pow(int.from_bytes(f, "big"), d, n).to_bytes(128, "big")
    assert verify_answer(key.public_key(), challenge, signature, 0x9000) == "passed"
    assert verify_answer(key.public_key(), bytes(8), signature, 0x9000) == "failed"
    assert verify_answer(key.public_key(), challenge, signature, 0x6A80) == "failed"


# -- PACE with the CAN -------------------------------------------------------------------------
CAN = CanKey(DEMO_PERSON.id_number[-6:])


@pytest.mark.parametrize("extended", [False, True])
def test_pace_with_the_can(extended: bool) -> None:
    result = read(card(), extended=extended, keys=[CAN])
    assert result.identity.access == "pace"
    assert result.passive_auth.status is PaStatus.AUTHENTIC
    assert result.apdus <= (16 if extended else 99)


def test_wrong_can_falls_back_to_bac() -> None:
    result = read(card(), keys=[CanKey("111111"), DEMO_PERSON.access_key])
    assert result.identity.access == "bac"
    with pytest.raises(AccessDenied):
        read(card(), keys=[CanKey("111111")])


def test_card_without_pace_uses_bac() -> None:
    result = read(card(Faults(pace=False)), keys=[CAN, DEMO_PERSON.access_key])
    assert result.identity.access == "bac"


def test_keys_from_qr_try_the_can_first() -> None:
    keys = keys_from_cccd(DEMO_PERSON.id_number, DEMO_PERSON.date_of_birth,
                          DEMO_PERSON.issue_date)
    assert keys[0] == CAN
    assert read(card(), keys=keys).identity.access == "pace"


def test_torn_during_pace_never_yields_a_result() -> None:
    for k in range(8):
        with pytest.raises(CardRemoved):
            read(card(Faults(torn_after=k)), keys=[CAN])


@pytest.mark.parametrize(("mode", "outcome"), [("ec", "passed"), ("ec_wrong", "failed")])
def test_aa_follows_the_signed_sod_not_ef_com(mode: str, outcome: str) -> None:
    """EF.COM is unsigned: a clone that leaves DG15 out of it must still face AA."""
    from cryptography.hazmat.primitives.asymmetric import ec

    faults = Faults(aa=mode, com_hides=(15,))
    key = ec.generate_private_key(ec.SECP256R1())
    files = build_files(DEMO_PERSON, pki(), faults=faults, now=NOW, aa_key=key)
    result = read(VirtualCccd(files, DEMO_PERSON.access_key, faults, aa_key=key))
    assert 15 not in result.identity.com.data_groups
    assert result.active_auth == outcome
