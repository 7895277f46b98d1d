"""Basic Access Control (ICAO 9303-11 §4.3): keys from the MRZ, the mutual authentication,
and the session keys with their send sequence counter. Both ends are here: the terminal's
:func:`authenticate` and the card's :func:`card_authenticate` (for the virtual card).

Randomness is passed in (``rnd_ifd``, ``k_ifd``; ``rnd_ic``, ``k_ic``), so the Appendix D worked
example runs as a golden test.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from readers.emrtd.apdu import (
    INS_EXTERNAL_AUTHENTICATE,
    INS_GET_CHALLENGE,
    SW,
    CardPort,
    Command,
    encode_command,
)
from readers.emrtd.mrz import AccessKey
from readers.emrtd.sm import KDF_ENC, KDF_MAC, Des3Suite, des3_cbc, kdf, pad, retail_mac
from readers.errors import AccessDenied, ApduError, SecureMessagingError


def key_seed(key: AccessKey) -> bytes:
    return hashlib.sha1(key.mrz_information().encode("ascii")).digest()[:16]


@dataclass(frozen=True, slots=True)
class BacKeys:
    k_enc: bytes
    k_mac: bytes

    @classmethod
    def from_access_key(cls, key: AccessKey) -> BacKeys:
        seed = key_seed(key)
        return cls(kdf(seed, KDF_ENC), kdf(seed, KDF_MAC))


@dataclass(frozen=True, slots=True)
class Session:
    suite: Des3Suite
    ssc: bytes


def _session(k_ifd: bytes, k_ic: bytes, rnd_ic: bytes, rnd_ifd: bytes) -> Session:
    seed = bytes(a ^ b for a, b in zip(k_ifd, k_ic, strict=True))
    # ICAO 9303-11 §9.8.6.3: SSC = 4 least significant bytes of RND.IC || of RND.IFD.
    return Session(Des3Suite(kdf(seed, KDF_ENC), kdf(seed, KDF_MAC)), rnd_ic[4:] + rnd_ifd[4:])


def authenticate(port: CardPort, keys: BacKeys, *, rnd_ifd: bytes, k_ifd: bytes) -> Session:
    """GET CHALLENGE, EXTERNAL AUTHENTICATE, check the card's answer, derive session keys.

    Raises :class:`AccessDenied` when the card refuses the key (real chips answer 6300).
    """
    if len(rnd_ifd) != 8 or len(k_ifd) != 16:
        raise ValueError("rnd_ifd is 8 bytes and k_ifd 16")
    rnd_ic, sw = port.send_and_receive(encode_command(Command(0x00, INS_GET_CHALLENGE, 0, 0,
                                                              le=8)))
    if sw != SW.OK or len(rnd_ic) != 8:
        raise ApduError(sw, "GET CHALLENGE failed")
    s = rnd_ifd + rnd_ic + k_ifd
    e_ifd = des3_cbc(keys.k_enc, s)
    m_ifd = retail_mac(keys.k_mac, pad(e_ifd))
    answer, sw = port.send_and_receive(encode_command(Command(
        0x00, INS_EXTERNAL_AUTHENTICATE, 0, 0, e_ifd + m_ifd, le=40)))
    if sw in (SW.AUTH_FAILED, SW.SECURITY_NOT_SATISFIED) or (sw & 0xFFF0) == 0x63C0:
        raise AccessDenied("the chip refused the BAC key")
    if sw != SW.OK or len(answer) != 40:
        raise ApduError(sw, "EXTERNAL AUTHENTICATE failed")
    e_ic, m_ic = answer[:32], answer[32:]
    if not hmac.compare_digest(retail_mac(keys.k_mac, pad(e_ic)), m_ic):
        raise SecureMessagingError("the chip's BAC answer has a bad MAC")
    r = des3_cbc(keys.k_enc, e_ic, decrypt=True)
    if not hmac.compare_digest(r[:8], rnd_ic) or not hmac.compare_digest(r[8:16], rnd_ifd):
        raise SecureMessagingError("the chip's BAC answer does not echo the challenges")
    return _session(k_ifd, r[16:32], rnd_ic, rnd_ifd)


def card_authenticate(keys: BacKeys, rnd_ic: bytes, cmd_data: bytes, *,
                      k_ic: bytes) -> tuple[bytes, Session] | None:
    """The chip's half: check EXTERNAL AUTHENTICATE data; None means answer 6300."""
    if len(cmd_data) != 40:
        return None
    e_ifd, m_ifd = cmd_data[:32], cmd_data[32:]
    if not hmac.compare_digest(retail_mac(keys.k_mac, pad(e_ifd)), m_ifd):
        return None
    s = des3_cbc(keys.k_enc, e_ifd, decrypt=True)
    rnd_ifd, echoed, k_ifd = s[:8], s[8:16], s[16:32]
    if not hmac.compare_digest(echoed, rnd_ic):
        return None
    e_ic = des3_cbc(keys.k_enc, rnd_ic + rnd_ifd + k_ic)
    return e_ic + retail_mac(keys.k_mac, pad(e_ic)), _session(k_ifd, k_ic, rnd_ic, rnd_ifd)
