"""Chip Authentication, clones, tears that resume, and the lengths a chip accepts — against the
virtual CCCD through the byte-level card port (every APDU wrapped and checked both ends)."""

from __future__ import annotations

import os

import pytest
from asn1crypto import core

from readers.doubles.vcard import (
    DEMO_PERSON,
    DG14_ENCODINGS,
    CardProcessPort,
    Faults,
    VirtualCccd,
    build_dg14,
    build_sod,
    demo_card,
)
from readers.emrtd.apdu import encode_tlv, parse_tlvs, unwrap_tlv
from readers.emrtd.ca import OID_CA, OID_CA_ECDH, Dg14, parse_dg14
from readers.emrtd.chip import ChipRead, read_chip, read_with_retries
from readers.emrtd.ec import BRAINPOOLP256R1, BY_NAME
from readers.emrtd.mrz import AccessKey, CanKey
from readers.emrtd.pa import PaStatus
from readers.emrtd.sm import SHORT_READ_MAX, AesSuite, Des3Suite, TerminalChannel
from readers.errors import CardRemoved, CardSwapped, SecureMessagingError, TlvError
from tests.helpers.chip import NOW, pki, trust

CAN = CanKey(DEMO_PERSON.id_number[-6:])
KEYS: dict[str, list[AccessKey | CanKey]] = {"pace": [CAN], "bac": [DEMO_PERSON.access_key]}


def card(**faults: object) -> VirtualCccd:
    return demo_card(now=NOW, faults=Faults(**faults), pki=pki())[0]  # type: ignore[arg-type]


class Reconnecting:
    """The reader's side of a tear: each connect resets the card that is (back) on it."""

    def __init__(self, *cards: VirtualCccd) -> None:
        self.cards = list(cards)
        self.connections = 0

    def __call__(self) -> CardProcessPort:
        self.connections += 1
        current = self.cards[0] if len(self.cards) == 1 else self.cards.pop(0)
        current.reset()
        return CardProcessPort(current)


def resilient_read(connect: Reconnecting, access: str = "pace", *,
                   extended: bool = False, seen: list[object] | None = None) -> ChipRead:
    return read_with_retries(connect, KEYS[access], retries=2, rnd=os.urandom,
                             extended=extended, trust=trust(), now=NOW,
                             on_identity=seen.append if seen is not None else None)


def once(c: VirtualCccd, access: str = "pace", extended: bool = False) -> ChipRead:
    return read_chip(CardProcessPort(c), KEYS[access], rnd=os.urandom, extended=extended,
                     trust=trust(), now=NOW)


# -- Chip Authentication -----------------------------------------------------------------------
@pytest.mark.parametrize("ca", ["aes128", "aes256", "3des", "3des_kat"])
@pytest.mark.parametrize("access", ["pace", "bac"])
def test_chip_authentication_passes_and_the_read_goes_on_under_its_keys(ca: str,
                                                                        access: str) -> None:
    c = card(ca=ca)
    result = once(c, access)
    assert (result.chip_auth, result.passive_auth.status) == ("passed", PaStatus.AUTHENTIC)
    assert result.photo is not None
    channel = c._channel
    assert channel is not None and channel.ssc != bytes(channel.suite.ssc_size)
    expected = Des3Suite if ca.startswith("3des") else AesSuite
    assert isinstance(channel.suite, expected)
    if ca == "aes256":
        assert isinstance(channel.suite, AesSuite) and len(channel.suite.ks_enc) == 32


@pytest.mark.parametrize("encoding", DG14_ENCODINGS)
def test_each_dg14_key_encoding_parses_and_the_chip_authenticates(encoding: str) -> None:
    """Issue 22: every encoding issued documents carry is a genuine chip, never a copy."""
    c = card(ca_encoding=encoding)
    dg14 = parse_dg14(c.files[14])
    assert (dg14.unsupported, len(dg14.offers)) == ((), 1)
    assert dg14.offers[0].curve is BRAINPOOLP256R1
    assert dg14.offers[0].public == BRAINPOOLP256R1.mul_g(c.ca_private or 0)
    result = once(c)
    assert (result.chip_auth, result.chip_auth_reason) == ("passed", None)
    assert result.passive_auth.status is PaStatus.AUTHENTIC


@pytest.mark.parametrize("encoding", ["standardized", "domain_info_standardized",
                                      "pk_ecdh_explicit", "pk_ecdh_named"])
@pytest.mark.parametrize("curve", ["secp256r1", "secp384r1", "brainpoolP224r1"])
def test_other_curves_in_each_encoding_authenticate(encoding: str, curve: str) -> None:
    result = once(card(ca_encoding=encoding, ca_curve=curve), "bac")
    assert (result.chip_auth, result.chip_auth_reason) == ("passed", None)


@pytest.mark.parametrize(("param_id", "curve"), [
    (10, "secp224r1"), (11, "brainpoolP224r1"), (12, "secp256r1"), (13, "brainpoolP256r1"),
    (15, "secp384r1"), (16, "brainpoolP384r1"), (17, "brainpoolP512r1"), (18, "secp521r1")])
def test_standardized_domain_parameter_ids_name_their_curves(param_id: int, curve: str) -> None:
    """BSI TR-03110-3 table 4: the ids of the EC curves this terminal runs."""
    c = BY_NAME[curve]
    assert c.standard_id == param_id
    for encoding in ("standardized", "domain_info_standardized"):
        dg14 = parse_dg14(build_dg14(c, c.g, f"{OID_CA}.2.2", encoding=encoding, key_id=7))
        assert [(o.curve, o.public, o.key_id) for o in dg14.offers] == [(c, c.g, 7)]


@pytest.mark.parametrize("param_id", [0, 2, 8, 9, 14, 19, 127])
def test_standardized_ids_this_terminal_cannot_run_are_unsupported(param_id: int) -> None:
    """DH groups (0-2), P-192, brainpoolP192r1, brainpoolP320r1 and unknown ids."""
    dg14 = _with_standard_id(param_id)
    assert dg14.offers == () and dg14.offers_ca
    assert any(f"parameter id {param_id}" in why for why in dg14.unsupported), dg14.unsupported


def _standardized(param_id: int) -> bytes:
    """AlgorithmIdentifier {standardizedDomainParameters, INTEGER param_id}, as DER."""
    return bytes.fromhex("0607 04007f00070102 0201") + bytes([param_id])


def _with_standard_id(param_id: int) -> Dg14:
    c = BRAINPOOLP256R1
    good = build_dg14(c, c.g, f"{OID_CA}.2.2", encoding="standardized")
    changed = good.replace(_standardized(c.standard_id), _standardized(param_id))
    assert changed != good
    return parse_dg14(changed)


def test_a_bare_key_without_domain_parameters_is_unsupported_not_absent() -> None:
    c = BRAINPOOLP256R1
    dg14 = build_dg14(c, c.g, f"{OID_CA}.2.2", encoding="domain_info", key_id=1)
    infos = parse_tlvs(unwrap_tlv(unwrap_tlv(dg14, 0x6E), 0x31))
    without = [v for _, v in infos if not v.startswith(_oid(OID_CA_ECDH))]
    assert len(without) == 2
    parsed = parse_dg14(encode_tlv(0x6E, encode_tlv(0x31, b"".join(
        encode_tlv(0x30, v) for v in without))))
    assert parsed.offers == () and parsed.offers_ca
    assert any("domain parameters" in why for why in parsed.unsupported), parsed.unsupported


def _oid(dotted: str) -> bytes:
    return bytes(core.ObjectIdentifier(dotted).dump())


@pytest.mark.parametrize("mode", ["clone", "garbage"])
def test_a_chip_that_fails_ca_is_read_to_the_end_and_reported_failed(mode: str) -> None:
    """A copy of the signed files on another chip: PA cannot tell, CA can."""
    connect = Reconnecting(card(ca=mode))
    seen: list[object] = []
    result = resilient_read(connect, seen=seen)
    assert result.chip_auth == "failed"
    assert result.passive_auth.status is PaStatus.AUTHENTIC  # the files are genuine
    assert len(seen) == 1 and result.photo is not None
    assert connect.connections == 3  # CA tried twice (CA_TRIES), then read on without it


def test_a_single_connection_ca_failure_is_a_secure_messaging_error() -> None:
    with pytest.raises(SecureMessagingError):
        once(card(ca="clone"))


def test_dg14_offering_only_unsupported_ca_is_not_verified_never_passed() -> None:
    """Our limit, not the chip's failure: ``not_verified`` with the reason, never ``failed``
    (which says copy) and never ``passed``."""
    result = once(card(ca="unsupported"))
    assert result.chip_auth == "not_verified"
    assert result.chip_auth_reason is not None and "unsupported" in result.chip_auth_reason


@pytest.mark.parametrize("curve", ["secp256r1", "secp384r1"])
def test_a_standardized_id_we_cannot_run_is_not_verified_on_a_read(curve: str) -> None:
    c = card(ca_encoding="standardized", ca_curve=curve)
    c.files[14] = c.files[14].replace(_standardized(BY_NAME[curve].standard_id),
                                      _standardized(14))  # brainpoolP320r1
    c.files["sod"] = build_sod({n: c.files[n] for n in (1, 2, 13, 14)}, pki())
    result = once(c)
    assert result.chip_auth == "not_verified"
    assert result.chip_auth_reason is not None and "parameter id 14" in result.chip_auth_reason
    assert result.passive_auth.status is PaStatus.AUTHENTIC


def test_a_signed_dg14_that_does_not_parse_is_not_verified() -> None:
    c = card()
    c.files[14] = bytes.fromhex("6e0a3108300606042a030405")
    c.files["sod"] = build_sod({n: c.files[n] for n in (1, 2, 13, 14)}, pki())
    result = once(c)
    assert (result.chip_auth, result.chip_auth_reason) == ("not_verified", "dg14_malformed")


def test_a_dg14_whose_hash_is_not_the_sods_still_fails() -> None:
    c = card()
    c.files[14] = build_dg14(BRAINPOOLP256R1, BRAINPOOLP256R1.g, f"{OID_CA}.2.2")
    result = once(c)
    assert (result.chip_auth, result.chip_auth_reason) == ("failed", "dg14_hash")


def test_dg14_hidden_from_ef_com_still_faces_ca() -> None:
    result = resilient_read(Reconnecting(card(ca="clone", com_hides=(14,))))
    assert 14 not in result.identity.com.data_groups
    assert result.chip_auth == "failed"


def test_a_chip_without_dg14_is_not_supported_not_failed() -> None:
    assert once(card(ca="none")).chip_auth == "not_supported"


@pytest.mark.parametrize("data", [
    b"", b"\x6e\x00", b"\x6e\x03\x31\x01\x30", b"\x6e\x04\x31\x02\x30\x00",
    b"\x6e\x82\xff\xff" + bytes(10),
])
def test_malformed_dg14_is_a_tlv_error(data: bytes) -> None:
    with pytest.raises(TlvError):
        parse_dg14(data)


# -- tears that resume -------------------------------------------------------------------------
def _clean(access: str) -> ChipRead:
    return once(card(), access)


@pytest.mark.parametrize("access", ["pace", "bac"])
def test_a_tear_at_every_apdu_resumes_with_the_same_result(access: str) -> None:
    clean = _clean(access)
    handshake = {"pace": 7, "bac": 3}[access] + 2 + 1  # access, CA again, the same-card check
    worst = 0
    for k in range(1, clean.apdus + 1):
        connect = Reconnecting(card(tear_at=(k,)))
        seen: list[object] = []
        result = resilient_read(connect, access, seen=seen)
        assert len(seen) == 1, k  # identity handed out once, never twice
        assert result.identity.mrz == clean.identity.mrz and result.photo == clean.photo, k
        assert (result.passive_auth.status, result.chip_auth) == (PaStatus.AUTHENTIC,
                                                                  "passed"), k
        assert result.reconnects == 1
        extra = result.apdus - clean.apdus
        # The torn APDU and the interrupted chunk again, the handshake, nothing re-read.
        assert extra <= handshake + 2 + 1, (k, extra)
        worst = max(worst, extra)
    assert worst > 0


def test_a_card_swapped_after_identity_is_refused_never_mixed() -> None:
    first = card(tear_at=(30,))
    other = card()  # same person and keys, another card: its SOD differs
    seen: list[object] = []
    with pytest.raises(CardSwapped):
        resilient_read(Reconnecting(first, other), seen=seen)
    assert len(seen) == 1


def test_a_card_swapped_before_identity_is_read_from_the_start() -> None:
    first = card(tear_at=(9,))  # during EF.SOD, before anything was shown
    other = card()
    result = resilient_read(Reconnecting(first, other))
    assert result.chip_auth == "passed" and result.passive_auth.status is PaStatus.AUTHENTIC
    assert result.identity.mrz == once(other).identity.mrz


def test_a_card_that_never_comes_back_is_card_removed() -> None:
    c = card(torn_after=30)
    with pytest.raises(CardRemoved):
        resilient_read(Reconnecting(c))


# -- lengths the chip accepts ------------------------------------------------------------------
@pytest.mark.parametrize("suite", [AesSuite(bytes(16), bytes(16)),
                                   Des3Suite(bytes(16), bytes(16))])
def test_the_short_read_length_fits_a_protected_answer(suite: AesSuite | Des3Suite) -> None:
    """DO87 (padded) + DO99 + DO8E must fit in a short answer's 256 bytes."""
    from readers.emrtd.sm import CardChannel

    card_end = CardChannel(suite, bytes(suite.ssc_size))
    answer = card_end.wrap_answer(bytes(SHORT_READ_MAX), 0x9000)
    assert len(answer) - 2 <= 256
    room = VirtualCccd._short_answer_room(card_end)
    assert room >= SHORT_READ_MAX
    assert len(card_end.wrap_answer(bytes(room + 1), 0x9000)) - 2 > 256
    assert isinstance(TerminalChannel(suite, bytes(suite.ssc_size)), TerminalChannel)


def test_a_chip_that_refuses_a_length_gets_a_smaller_one_remembered() -> None:
    c = card(max_le=0x80)
    result = once(c)
    assert result.passive_auth.status is PaStatus.AUTHENTIC and result.photo is not None
    clean = _clean("pace")
    # Refused once, then every read at the length it took: about twice the READ BINARYs.
    assert clean.apdus < result.apdus < 2 * clean.apdus


def test_extended_length_refused_by_the_chip_is_not_stepped_down() -> None:
    c = card(extended=False)
    with pytest.raises(Exception):  # noqa: B017 - 6700: the caller re-reads in short APDUs
        once(c, extended=True)


def test_dg14_with_an_unknown_explicit_curve_is_unsupported_not_absent() -> None:
    from readers.emrtd.ec import Curve

    odd = Curve("odd", "1.2.3", 0, p=BRAINPOOLP256R1.p, a=BRAINPOOLP256R1.a, b=1,
                gx=BRAINPOOLP256R1.gx, gy=BRAINPOOLP256R1.gy, n=BRAINPOOLP256R1.n)
    dg14 = build_dg14(odd, BRAINPOOLP256R1.g, "0.4.0.127.0.7.2.2.3.2.2", encoding="explicit")
    parsed = parse_dg14(dg14)
    assert parsed.offers == () and parsed.offers_ca and "unknown curve" in parsed.unsupported
    named_unknown = build_dg14(odd, BRAINPOOLP256R1.g, "0.4.0.127.0.7.2.2.3.2.2")
    assert "unknown curve" in parse_dg14(named_unknown).unsupported
