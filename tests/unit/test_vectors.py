"""The specifications' worked examples, byte for byte: PACE (ICAO 9303-11 Appendix G.1), AES
secure messaging and the Chip Authentication key agreement (BSI EAC worked example), CA v1 key
derivation. Appendix D (BAC, 3DES secure messaging) is in test_bac_sm.py. A real chip that
differs from us shows up here, step by step."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from readers.emrtd.apdu import Command, encode_command, parse_command
from readers.emrtd.ca import CA_ECDH, ChipAuthOffer
from readers.emrtd.ca import authenticate as ca_authenticate
from readers.emrtd.ec import BRAINPOOLP256R1 as CURVE
from readers.emrtd.mrz import AccessKey
from readers.emrtd.pace import PaceCard, authenticate, k_pi, pace_curve, password
from readers.emrtd.sm import AES, AesSuite, TerminalChannel, aes_cbc, session_suite
from tests.helpers.fakecard import ScriptedCard
from tests.helpers.paths import DATA

G = json.loads((DATA / "icao9303_11_appendix_g.json").read_text())
KEY = AccessKey(G["document_number"], G["date_of_birth"], G["date_of_expiry"])


def h(value: str) -> bytes:
    return bytes.fromhex(value)


def n(value: str) -> int:
    return int(value, 16)


def replay(*values: bytes) -> Callable[[int], bytes]:
    """A random source that gives the example's values, each asked for at its size."""
    queue = list(values)

    def rnd(size: int) -> bytes:
        value = queue.pop(0)
        assert len(value) == size, (len(value), size)
        return value
    return rnd


BLIND = bytes(8)  # the ladder's blinding draw comes first; any value gives the same result


# -- PACE, Appendix G.1 ------------------------------------------------------------------------
def test_g1_password_and_domain() -> None:
    secret, ref = password(KEY)
    assert ref == 1 and k_pi(secret) == h(G["k_pi"])
    assert pace_curve(h(G["card_access"])) is CURVE
    assert aes_cbc(h(G["k_pi"]), h(G["z"]), decrypt=True) == h(G["s"])


def test_g1_mapping_and_key_agreement_step_by_step() -> None:
    pk_ic_map = CURVE.mul(n(G["ic_map_private"]), CURVE.g)
    shared_h = CURVE.mul(n(G["ifd_map_private"]), pk_ic_map)
    assert CURVE.encode(shared_h) == h(G["h"])
    g_mapped = CURVE.add(CURVE.mul(n(G["s"]), CURVE.g), shared_h)
    assert CURVE.encode(g_mapped) == h(G["g_mapped"])
    pk_ic = CURVE.mul(n(G["ic_eph_private"]), g_mapped)
    assert pk_ic is not None
    assert CURVE.shared_x(n(G["ifd_eph_private"]), pk_ic) == h(G["k"])
    suite = session_suite(h(G["k"]), cipher=AES, key_bytes=16)
    assert isinstance(suite, AesSuite)
    assert (suite.ks_enc, suite.ks_mac) == (h(G["ks_enc"]), h(G["ks_mac"]))


def test_g1_terminal_sends_the_example_commands_byte_for_byte() -> None:
    card = ScriptedCard([(h(c), h(a)) for c, a in G["exchanges"]])
    suite = authenticate(card, KEY, rnd=replay(BLIND, h(G["ifd_map_private"]),
                                               h(G["ifd_eph_private"])), curve=CURVE)
    card.close()
    assert (suite.ks_enc, suite.ks_mac) == (h(G["ks_enc"]), h(G["ks_mac"]))


def test_g1_chip_answers_the_example_byte_for_byte() -> None:
    chip = PaceCard(password(KEY)[0], replay(h(G["s"]), h(G["ic_map_private"]),
                                             h(G["ic_eph_private"])), CURVE)
    for command, answer in G["exchanges"][1:]:
        data, sw = chip.answer(parse_command(h(command)).data)
        assert data + sw.to_bytes(2, "big") == h(answer)
    assert chip.suite is not None and chip.suite.ks_enc == h(G["ks_enc"])


# -- AES secure messaging (BSI EAC worked example) ---------------------------------------------
def test_aes_secure_messaging_worked_example() -> None:
    v: dict[str, Any] = G["aes_sm"]
    channel = TerminalChannel(AesSuite(h(v["ks_enc"]), h(v["ks_mac"])), bytes(16))
    plain = parse_command(h(v["plain"]))
    assert channel.wrap(Command(plain.cla, plain.ins, plain.p1, plain.p2, plain.data)) == h(
        v["protected"])
    answer = h(v["answer"])
    assert channel.unwrap(answer[:-2], 0x9000) == (b"", 0x9000)
    assert channel.ssc == (2).to_bytes(16, "big")


def test_aes_secure_messaging_refuses_the_example_answer_one_bit_off() -> None:
    from readers.errors import SecureMessagingError

    v: dict[str, Any] = G["aes_sm"]
    channel = TerminalChannel(AesSuite(h(v["ks_enc"]), h(v["ks_mac"])), bytes(16))
    plain = parse_command(h(v["plain"]))
    channel.wrap(Command(plain.cla, plain.ins, plain.p1, plain.p2, plain.data))
    answer = bytearray(h(v["answer"]))
    answer[-3] ^= 1
    with pytest.raises(SecureMessagingError):
        channel.unwrap(bytes(answer[:-2]), 0x9000)


# -- Chip Authentication -----------------------------------------------------------------------
def test_ca_key_agreement_worked_example() -> None:
    v: dict[str, Any] = G["ca_ecdh"]
    assert CURVE.encode(CURVE.mul(n(v["chip_private"]), CURVE.g)) == h(v["chip_public"])
    assert CURVE.encode(CURVE.mul(n(v["terminal_private"]), CURVE.g)) == h(
        v["terminal_public"])
    chip_side = CURVE.shared_x(n(v["chip_private"]), CURVE.decode(h(v["terminal_public"])))
    terminal_side = CURVE.shared_x(n(v["terminal_private"]), CURVE.decode(h(v["chip_public"])))
    assert chip_side == terminal_side == h(v["k"])


def test_ca_v1_key_derivation_and_protected_mse_from_a_real_chip() -> None:
    v: dict[str, Any] = G["ca_v1_capture"]
    offer = ChipAuthOffer("0.4.0.127.0.7.2.2.3.2.2", *CA_ECDH["0.4.0.127.0.7.2.2.3.2.2"], CURVE,
                          CURVE.decode(h(v["chip_public"])), 0xC3)
    channel = TerminalChannel(AesSuite(h(v["sm_ks_enc"]), h(v["sm_ks_mac"])),
                              (n(v["ssc_after"]) - 1).to_bytes(16, "big"))
    sent: list[bytes] = []
    plain: list[bytes] = []

    def transmit(c: Command) -> tuple[bytes, int]:
        plain.append(encode_command(c))
        sent.append(channel.wrap(c))
        channel._step()  # the chip's protected answer (not in the capture) moves the SSC too
        return (b"\x7c\x00", 0x9000) if c.ins == 0x86 else (b"", 0x9000)

    suite = ca_authenticate(transmit, offer, rnd=replay(BLIND, h(v["terminal_private"])))
    assert plain[0] == h(v["mse_plain"]) and sent[0] == h(v["mse_protected"])
    assert isinstance(suite, AesSuite)
    assert (suite.ks_enc, suite.ks_mac) == (h(v["ks_enc"]), h(v["ks_mac"]))
    assert parse_command(sent[1]).ins == 0x86
