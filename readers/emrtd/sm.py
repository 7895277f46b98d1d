"""Secure messaging (ICAO 9303-11 §9.8), both directions, with 3DES session keys (BAC, Chip
Authentication with 3DES) or AES session keys (PACE, Chip Authentication with AES), and the key
derivation function that makes them (§9.7.1).

The terminal side wraps commands (DO87/DO97/DO8E) and unwraps answers (DO87/DO99/DO8E); the
virtual card uses the mirror image. The MAC is checked in constant time *before* anything is
decrypted, and the send sequence counter is advanced in exactly one place (:meth:`_step`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from readers.emrtd.apdu import (
    SW,
    CardPort,
    Command,
    encode_command,
    encode_tlv,
    parse_command,
    parse_tlv,
)
from readers.errors import SecureMessagingError, TlvError

TAG_DO85 = 0x85
TAG_DO87 = 0x87
TAG_DO8E = 0x8E
TAG_DO97 = 0x97
TAG_DO99 = 0x99


def pad(data: bytes, block: int = 8) -> bytes:
    """ISO/IEC 9797-1 padding method 2: 0x80 then zeros to the block size."""
    data += b"\x80"
    return data + b"\x00" * (-len(data) % block)


def unpad(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80:
        raise SecureMessagingError("bad padding in decrypted data")
    return stripped[:-1]


def _des_key(key: bytes) -> TripleDES:
    """8 bytes: single DES (K1 = K2 = K3); 16 bytes: two-key 3DES (K3 = K1)."""
    if len(key) == 8:
        return TripleDES(key * 3)
    if len(key) == 16:
        return TripleDES(key + key[:8])
    raise ValueError("DES keys are 8 or 16 bytes here")


def des3_cbc(key: bytes, data: bytes, *, decrypt: bool = False, iv: bytes = bytes(8)) -> bytes:
    """Two-key 3DES in CBC mode (the 16-byte key is K1 || K2, K3 = K1)."""
    cipher = Cipher(_des_key(key), modes.CBC(iv))
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()


def retail_mac(key: bytes, padded: bytes) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 with DES (retail MAC) over data already padded."""
    if not padded or len(padded) % 8:
        raise ValueError("retail MAC input must be padded to whole blocks")
    ka, kb = key[:8], key[8:16]
    chain = des3_cbc(ka, padded)[-8:]  # single DES CBC: 8-byte key means K1 = K2 = K3
    # One-block steps of MAC algorithm 3: ECB on a single block is the definition, not a mode.
    single = Cipher(_des_key(kb), modes.ECB()).decryptor()  # noqa: S305
    step = single.update(chain) + single.finalize()
    final = Cipher(_des_key(ka), modes.ECB()).encryptor()  # noqa: S305
    return final.update(step) + final.finalize()


class CipherSuite(Protocol):
    @property
    def block_size(self) -> int: ...
    @property
    def ssc_size(self) -> int: ...

    def encrypt(self, ssc: bytes, data: bytes) -> bytes: ...
    def decrypt(self, ssc: bytes, data: bytes) -> bytes: ...
    def mac(self, data: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Des3Suite:
    """BAC's suite: 3DES-CBC with a zero IV, retail MAC, 8-byte SSC (ICAO 9303-11 §9.8.6.1)."""

    ks_enc: bytes
    ks_mac: bytes
    block_size: int = 8
    ssc_size: int = 8

    def encrypt(self, ssc: bytes, data: bytes) -> bytes:
        return des3_cbc(self.ks_enc, data)

    def decrypt(self, ssc: bytes, data: bytes) -> bytes:
        return des3_cbc(self.ks_enc, data, decrypt=True)

    def mac(self, data: bytes) -> bytes:
        return retail_mac(self.ks_mac, data)


def aes_cbc(key: bytes, data: bytes, *, decrypt: bool = False, iv: bytes = bytes(16)) -> bytes:
    c = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = c.decryptor() if decrypt else c.encryptor()
    return op.update(data) + op.finalize()


def cmac(key: bytes, data: bytes) -> bytes:
    c = CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


@dataclass(frozen=True, slots=True)
class AesSuite:
    """AES-CBC with IV = E(KS_enc, SSC), AES-CMAC cut to 8 bytes, 16-byte SSC (ICAO 9303-11
    §9.8.6.2); keys of 16, 24 or 32 bytes."""

    ks_enc: bytes
    ks_mac: bytes
    block_size: int = 16
    ssc_size: int = 16

    def _iv(self, ssc: bytes) -> bytes:
        e = Cipher(algorithms.AES(self.ks_enc), modes.ECB()).encryptor()  # noqa: S305
        return e.update(ssc) + e.finalize()

    def encrypt(self, ssc: bytes, data: bytes) -> bytes:
        return aes_cbc(self.ks_enc, data, iv=self._iv(ssc))

    def decrypt(self, ssc: bytes, data: bytes) -> bytes:
        return aes_cbc(self.ks_enc, data, decrypt=True, iv=self._iv(ssc))

    def mac(self, data: bytes) -> bytes:
        return cmac(self.ks_mac, data)[:8]


# -- key derivation (ICAO 9303-11 §9.7.1) ------------------------------------------------------
KDF_ENC, KDF_MAC, KDF_PI = 1, 2, 3
DES3, AES = "3des", "aes"


def adjust_parity(key: bytes) -> bytes:
    """DES keys carry odd parity in the low bit of each byte."""
    out = bytearray()
    for b in key:
        high = b & 0xFE
        out.append(high | (bin(high).count("1") + 1) % 2)
    return bytes(out)


def kdf(secret: bytes, counter: int, *, cipher: str = DES3, key_bytes: int = 16) -> bytes:
    """3DES: SHA-1(secret || counter)[:16] with DES parity; AES-128: SHA-1(…)[:16];
    AES-192 and AES-256: SHA-256(…) cut to the key size."""
    data = secret + counter.to_bytes(4, "big")
    if cipher == DES3 and key_bytes == 16:
        return adjust_parity(hashlib.sha1(data).digest()[:16])
    if cipher == AES and key_bytes == 16:
        return hashlib.sha1(data).digest()[:16]
    if cipher == AES and key_bytes in (24, 32):
        return hashlib.sha256(data).digest()[:key_bytes]
    raise ValueError(f"no key derivation for {cipher}-{key_bytes * 8}")


def session_suite(secret: bytes, *, cipher: str, key_bytes: int) -> CipherSuite:
    """The session keys for a shared secret, as the suite that uses them."""
    enc = kdf(secret, KDF_ENC, cipher=cipher, key_bytes=key_bytes)
    mac = kdf(secret, KDF_MAC, cipher=cipher, key_bytes=key_bytes)
    return Des3Suite(enc, mac) if cipher == DES3 else AesSuite(enc, mac)


class _Channel:
    """State shared by both ends: the suite and the send sequence counter."""

    def __init__(self, suite: CipherSuite, ssc: bytes) -> None:
        if len(ssc) != suite.ssc_size:
            raise ValueError("SSC has the wrong size")
        self.suite = suite
        self._ssc = int.from_bytes(ssc, "big")

    @property
    def ssc(self) -> bytes:
        return self._ssc.to_bytes(self.suite.ssc_size, "big")

    def _step(self) -> bytes:
        """The only place the SSC moves: +1 before each protected command and answer."""
        self._ssc = (self._ssc + 1) % (1 << (8 * self.suite.ssc_size))
        return self.ssc

    def _mac_input(self, ssc: bytes, data: bytes) -> bytes:
        return pad(ssc + data, self.suite.block_size)

    def _cryptogram(self, ssc: bytes, plain: bytes, *, odd_ins: bool = False) -> bytes:
        enc = self.suite.encrypt(ssc, pad(plain, self.suite.block_size))
        # DO87 carries a padding-content indicator (01); odd INS would use DO85 (no indicator).
        return encode_tlv(TAG_DO85, enc) if odd_ins else encode_tlv(TAG_DO87, b"\x01" + enc)

    def _read_cryptogram(self, ssc: bytes, tag: int, value: bytes) -> bytes:
        if tag == TAG_DO87:
            if not value or value[0] != 0x01:
                raise SecureMessagingError("DO87 without padding indicator 01")
            value = value[1:]
        if not value or len(value) % self.suite.block_size:
            raise SecureMessagingError("cryptogram is not whole blocks")
        return unpad(self.suite.decrypt(ssc, value))


def _le_object(le: int | None, extended: bool) -> bytes:
    if le is None:
        return b""
    raw = (le & 65535).to_bytes(2, "big") if extended or le > 256 else bytes([le & 255])
    return encode_tlv(TAG_DO97, raw)


class TerminalChannel(_Channel):
    """Terminal end: wrap commands, unwrap answers."""

    def wrap(self, c: Command) -> bytes:
        if c.cla & 0x0C:
            raise ValueError("command is already protected")
        ssc = self._step()
        header = bytes([c.cla | 0x0C, c.ins, c.p1, c.p2])
        body = self._cryptogram(ssc, c.data, odd_ins=bool(c.ins & 1)) if c.data else b""
        body += _le_object(c.le, c.extended)
        cc = self.suite.mac(self._mac_input(ssc, pad(header, self.suite.block_size) + body))
        body += encode_tlv(TAG_DO8E, cc)
        extended = c.extended or len(body) > 255
        return encode_command(Command(header[0], c.ins, c.p1, c.p2, body,
                                      le=65536 if extended else 256, extended=extended))

    def unwrap(self, data: bytes, sw: int) -> tuple[bytes, int]:
        """Check DO8E over DO87/DO99, then decrypt; raises on any deviation."""
        ssc = self._step()
        if sw != SW.OK and not data:
            # ICAO 9303-11 §9.8.7: errors like 6987/6988 come back unprotected.
            return b"", sw
        objects: list[tuple[int, bytes, bytes]] = []
        offset = 0
        try:
            while offset < len(data):
                start = offset
                tag, value, offset = parse_tlv(data, offset)
                objects.append((tag, value, data[start:offset]))
        except TlvError as e:
            raise SecureMessagingError("protected answer is not TLV") from e
        tags = [t for t, _, _ in objects]
        if not tags or tags[-1] != TAG_DO8E or tags.count(TAG_DO8E) != 1:
            raise SecureMessagingError("protected answer without a final DO8E")
        if TAG_DO99 not in tags:
            raise SecureMessagingError("protected answer without DO99")
        macced = b"".join(raw for t, _, raw in objects[:-1])
        expected = self.suite.mac(self._mac_input(ssc, macced))
        if not hmac.compare_digest(expected, objects[-1][1]):
            raise SecureMessagingError("answer MAC does not verify")
        by_tag = {t: v for t, v, _ in objects[:-1]}
        status = by_tag[TAG_DO99]
        if len(status) != 2:
            raise SecureMessagingError("DO99 is not two bytes")
        inner_sw = int.from_bytes(status, "big")
        if inner_sw != sw:
            raise SecureMessagingError("DO99 disagrees with the status word")
        plain = b""
        for tag in (TAG_DO87, TAG_DO85):
            if tag in by_tag:
                plain = self._read_cryptogram(ssc, tag, by_tag[tag])
        return plain, inner_sw


class CardChannel(_Channel):
    """Card end (the virtual card): unwrap commands, wrap answers."""

    def unwrap_command(self, apdu: bytes) -> Command:
        ssc = self._step()
        c = parse_command(apdu)
        if c.cla & 0x0C != 0x0C:
            raise SecureMessagingError("command is not protected")
        objects: list[tuple[int, bytes, bytes]] = []
        offset = 0
        try:
            while offset < len(c.data):
                start = offset
                tag, value, offset = parse_tlv(c.data, offset)
                objects.append((tag, value, c.data[start:offset]))
        except TlvError as e:
            raise SecureMessagingError("protected command is not TLV") from e
        if not objects or objects[-1][0] != TAG_DO8E:
            raise SecureMessagingError("protected command without a final DO8E")
        header = pad(bytes([c.cla, c.ins, c.p1, c.p2]), self.suite.block_size)
        macced = header + b"".join(raw for _, _, raw in objects[:-1])
        if not hmac.compare_digest(self.suite.mac(self._mac_input(ssc, macced)),
                                   objects[-1][1]):
            raise SecureMessagingError("command MAC does not verify")
        by_tag = {t: v for t, v, _ in objects[:-1]}
        data = b""
        for tag in (TAG_DO87, TAG_DO85):
            if tag in by_tag:
                data = self._read_cryptogram(ssc, tag, by_tag[tag])
        le = None
        if TAG_DO97 in by_tag:
            le = int.from_bytes(by_tag[TAG_DO97], "big") or (
                65536 if len(by_tag[TAG_DO97]) == 2 else 256)
        return Command(c.cla & ~0x0C & 0xFF, c.ins, c.p1, c.p2, data, le, c.extended)

    def wrap_answer(self, data: bytes, sw: int) -> bytes:
        ssc = self._step()
        body = self._cryptogram(ssc, data) if data else b""
        body += encode_tlv(TAG_DO99, sw.to_bytes(2, "big"))
        body += encode_tlv(TAG_DO8E, self.suite.mac(self._mac_input(ssc, body)))
        return body + sw.to_bytes(2, "big")


class SecurePort:
    """A :class:`CardPort` processor: plain commands in, protected commands to the delegate."""

    def __init__(self, delegate: CardPort, channel: TerminalChannel) -> None:
        self.delegate = delegate
        self.channel = channel

    def transmit(self, c: Command) -> tuple[bytes, int]:
        data, sw = self.delegate.send_and_receive(self.channel.wrap(c))
        return self.channel.unwrap(data, sw)


# Largest READ BINARY Le with 3DES secure messaging in short APDUs: the protected answer (DO87
# with padding to whole blocks, DO99, DO8E) must fit in 256 bytes; 0xDF is the value every
# public eMRTD reader uses and DOMAIN.md §4 prescribes (0xE7 would fit, with no margin).
SHORT_READ_MAX = 0xDF
# Extended length: keep the protected answer well under 64 KiB.
EXTENDED_READ_MAX = 0xFF00
