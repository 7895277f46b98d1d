"""ICAO 9303-11 Appendix D as a golden test, then secure messaging's failure cases."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from readers.emrtd.apdu import Command, parse_command
from readers.emrtd.bac import BacKeys, authenticate, card_authenticate, key_seed
from readers.emrtd.mrz import AccessKey
from readers.emrtd.sm import (
    CardChannel,
    Des3Suite,
    SecurePort,
    TerminalChannel,
    pad,
    retail_mac,
)
from readers.errors import AccessDenied, SecureMessagingError
from tests.helpers.fakecard import ScriptedCard
from tests.helpers.paths import DATA

D = json.loads((DATA / "icao9303_11_appendix_d.json").read_text())
KEY = AccessKey(D["document_number"], D["date_of_birth"], D["date_of_expiry"])


def h(name: str) -> bytes:
    return bytes.fromhex(D[name])


@pytest.fixture
def card() -> Iterator[ScriptedCard]:
    cards: list[ScriptedCard] = []

    def make(script: list[tuple[bytes, bytes]]) -> ScriptedCard:
        c = ScriptedCard(script)
        cards.append(c)
        return c

    yield make  # type: ignore[misc]
    for c in cards:
        c.close()


def test_key_derivation() -> None:
    assert KEY.mrz_information() == D["mrz_information"]
    assert key_seed(KEY) == h("k_seed")
    keys = BacKeys.from_access_key(KEY)
    assert (keys.k_enc, keys.k_mac) == (h("k_enc"), h("k_mac"))


def bac_script() -> list[tuple[bytes, bytes]]:
    return [
        (bytes.fromhex("0084000008"), h("rnd_ic") + b"\x90\x00"),
        (bytes.fromhex("0082000028") + h("e_ifd") + h("m_ifd") + b"\x28",
         h("card_answer") + b"\x90\x00"),
    ]


def test_bac_handshake_and_session_keys(card) -> None:  # type: ignore[no-untyped-def]
    port = card(bac_script())
    session = authenticate(port, BacKeys.from_access_key(KEY), rnd_ifd=h("rnd_ifd"),
                           k_ifd=h("k_ifd"))
    assert session.suite.ks_enc == h("ks_enc")
    assert session.suite.ks_mac == h("ks_mac")
    assert session.ssc == h("ssc")


def test_secure_messaging_exchanges(card) -> None:  # type: ignore[no-untyped-def]
    script = [(bytes.fromhex(x["protected"]), bytes.fromhex(x["answer"]))
              for x in D["exchanges"]]
    port = SecurePort(card(script), TerminalChannel(Des3Suite(h("ks_enc"), h("ks_mac")),
                                                     h("ssc")))
    for x in D["exchanges"]:
        data, sw = port.transmit(parse_command(bytes.fromhex(x["plain"])))
        assert (data.hex().upper(), sw) == (x["data"], 0x9000)


def test_card_side_mirrors_the_example() -> None:
    keys = BacKeys.from_access_key(KEY)
    result = card_authenticate(keys, h("rnd_ic"), h("e_ifd") + h("m_ifd"), k_ic=h("k_ic"))
    assert result is not None
    answer, session = result
    assert answer == h("card_answer")
    assert session.ssc == h("ssc")
    chan = CardChannel(session.suite, session.ssc)
    for x in D["exchanges"]:
        c = chan.unwrap_command(bytes.fromhex(x["protected"]))
        plain = parse_command(bytes.fromhex(x["plain"]))
        assert (c.ins, c.p1, c.p2, c.data, c.le) == (plain.ins, plain.p1, plain.p2, plain.data,
                                                      plain.le)
        assert chan.wrap_answer(bytes.fromhex(x["data"]), 0x9000) == bytes.fromhex(x["answer"])


def test_wrong_key_is_access_denied(card) -> None:  # type: ignore[no-untyped-def]
    wrong = BacKeys.from_access_key(AccessKey("L898902C", "690806", "940624"))
    assert card_authenticate(wrong, h("rnd_ic"), h("e_ifd") + h("m_ifd"), k_ic=h("k_ic")) is None
    port = card([(bytes.fromhex("0084000008"), h("rnd_ic") + b"\x90\x00"),
                 (None, b"\x63\x00")])
    port.script[1] = (bytes.fromhex("0082000028") + _e_and_m(wrong) + b"\x28", b"\x63\x00")
    with pytest.raises(AccessDenied):
        authenticate(port, wrong, rnd_ifd=h("rnd_ifd"), k_ifd=h("k_ifd"))


def _e_and_m(keys: BacKeys) -> bytes:
    from readers.emrtd.sm import des3_cbc

    e = des3_cbc(keys.k_enc, h("rnd_ifd") + h("rnd_ic") + h("k_ifd"))
    return e + retail_mac(keys.k_mac, pad(e))


def _terminal() -> TerminalChannel:
    return TerminalChannel(Des3Suite(h("ks_enc"), h("ks_mac")), h("ssc"))


GOOD = bytes.fromhex(D["exchanges"][1]["answer"])


def _unwrap(answer: bytes) -> tuple[bytes, int]:
    """Unwrap as the 2nd answer of the example: after 3 SSC steps (cmd, answer, cmd)."""
    t = _terminal()
    t.wrap(parse_command(bytes.fromhex(D["exchanges"][0]["plain"])))
    t.unwrap(*_split(bytes.fromhex(D["exchanges"][0]["answer"])))
    t.wrap(parse_command(bytes.fromhex(D["exchanges"][1]["plain"])))
    return t.unwrap(*_split(answer))


def _split(answer: bytes) -> tuple[bytes, int]:
    return answer[:-2], int.from_bytes(answer[-2:], "big")


def test_good_answer_unwraps() -> None:
    assert _unwrap(GOOD)[0].hex().upper() == "60145F01"


@pytest.mark.parametrize("answer", [
    GOOD[:-12] + bytes([GOOD[-12] ^ 1]) + GOOD[-11:],              # MAC bit flipped
    GOOD[:4] + bytes([GOOD[4] ^ 0x80]) + GOOD[5:],                 # cryptogram bit flipped
    bytes.fromhex("990290008E08AD55CC17140B2DED9000"),             # DO87 dropped
    bytes.fromhex("8709019FF0EC34F99226518E08AD55CC17140B2DED9000"),  # DO99 dropped
    bytes.fromhex("8709019FF0EC34F9922651990290009000"),           # DO8E dropped
    GOOD[:-2] + b"\x62\x82",                                       # SW disagrees with DO99
    bytes.fromhex("87FF019F9000"),                                 # truncated TLV
])
def test_tampered_answers_fail_before_decrypting(answer: bytes) -> None:
    with pytest.raises(SecureMessagingError):
        _unwrap(answer)


def test_unprotected_error_status_passes_through() -> None:
    assert _unwrap(b"\x69\x88") == (b"", 0x6988)


def test_card_rejects_a_tampered_command() -> None:
    chan = CardChannel(Des3Suite(h("ks_enc"), h("ks_mac")), h("ssc"))
    bad = bytearray.fromhex(D["exchanges"][0]["protected"])
    bad[-3] ^= 1
    with pytest.raises(SecureMessagingError):
        chan.unwrap_command(bytes(bad))


def test_extended_length_round_trip() -> None:
    suite = Des3Suite(h("ks_enc"), h("ks_mac"))
    terminal, chip = TerminalChannel(suite, h("ssc")), CardChannel(suite, h("ssc"))
    c = Command(0x00, 0xB0, 0x00, 0x00, le=0x4000, extended=True)
    got = chip.unwrap_command(terminal.wrap(c))
    assert got.le == 0x4000 and got.extended
    data = bytes(range(256)) * 64
    answer = chip.wrap_answer(data, 0x9000)
    assert terminal.unwrap(answer[:-2], 0x9000) == (data, 0x9000)
