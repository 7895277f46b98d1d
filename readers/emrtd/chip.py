"""Reading a Vietnamese chip ID (ICAO 9303 eMRTD) through any card port: the strategy.

Identity first — EF.COM, DG1, DG13, EF.SOD, passive authentication over them — handed to
``on_identity`` so eligibility checking starts at once; then the photo (DG2), after which
passive authentication is repeated over everything read. A card that leaves the field raises
:class:`CardRemoved`; :func:`read_with_retries` reconnects and starts again from SELECT (the
session keys are gone) within a bounded budget. Nothing half-read is ever returned.

Pure: randomness (``rnd``), time (``now``) and the trust store are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from readers.emrtd.aa import (
    FAILED,
    NOT_SUPPORTED,
    PASSED,
    internal_authenticate,
    public_key_from_dg15,
    verify_answer,
)
from readers.emrtd.apdu import (
    INS_READ_BINARY,
    INS_SELECT,
    SW,
    CardPort,
    Command,
    encode_command,
    tlv_total_length,
)
from readers.emrtd.bac import BacKeys, authenticate
from readers.emrtd.lds import (
    AID_ICAO,
    FID,
    SFI,
    Dg13,
    EfCom,
    Photo,
    parse_dg1,
    parse_dg2,
    parse_dg13,
    parse_ef_com,
    parse_sod,
)
from readers.emrtd.mrz import AccessKey, CanKey, Td1
from readers.emrtd.pa import PassiveAuth, PaStatus, passive_authentication
from readers.emrtd.pace import authenticate as pace_authenticate
from readers.emrtd.pace import has_pace
from readers.emrtd.sm import EXTENDED_READ_MAX, SHORT_READ_MAX, SecurePort, TerminalChannel
from readers.errors import (
    AccessDenied,
    ApduError,
    CardRemoved,
    MrzError,
    PassiveAuthError,
    ReaderError,
    TlvError,
)

FileKey = int | str
MAX_FILE_BYTES = 0x7FFF + 1  # READ BINARY (B0) addresses offsets up to 0x7FFF


class CountingPort:
    """Counts command APDUs and bytes each way (the benchmark's and the JSON's ``apdus``)."""

    def __init__(self, delegate: CardPort) -> None:
        self.delegate = delegate
        self.apdus = 0
        self.bytes_out = 0
        self.bytes_in = 0

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        self.apdus += 1
        self.bytes_out += len(apdu)
        data, sw = self.delegate.send_and_receive(apdu)
        self.bytes_in += len(data) + 2
        return data, sw


@dataclass(frozen=True, slots=True)
class ChipIdentity:
    com: EfCom
    mrz: Td1
    dg13: Dg13
    passive_auth: PassiveAuth
    access: str


@dataclass(frozen=True, slots=True)
class ChipRead:
    identity: ChipIdentity
    photo: Photo | None
    passive_auth: PassiveAuth      # over every data group read, the photo included
    active_auth: str               # passed | failed | not_supported
    apdus: int
    bytes_in: int
    bytes_out: int
    # Chip Authentication (ICAO 9303-11 §6.2) is not implemented yet: DG14 is not read, so a
    # clone with a copied DG14 is only caught by Active Authentication (DG15).
    chip_auth: str = NOT_SUPPORTED


class ChipSession:
    """One contact with the card: application selected, BAC done, files read under SM."""

    def __init__(self, port: CardPort, *, rnd: Callable[[int], bytes], extended: bool) -> None:
        self.port = port
        self.rnd = rnd
        self.extended = extended
        self.chunk = EXTENDED_READ_MAX if extended else SHORT_READ_MAX
        self.secure: SecurePort | None = None

    def select_application(self) -> None:
        # DOMAIN.md §4: selecting the MF fails on these cards; select the eMRTD AID directly.
        _, sw = self.port.send_and_receive(encode_command(Command(0x00, INS_SELECT, 0x04, 0x0C,
                                                                  AID_ICAO)))
        if sw != SW.OK:
            raise ApduError(sw, "the card has no ICAO eMRTD application")

    def card_access(self) -> bytes | None:
        """EF.CardAccess (read by short file identifier, before any application is
        selected): None when the card has none — then it does not offer PACE."""
        data, sw = self.port.send_and_receive(encode_command(Command(
            0x00, INS_READ_BINARY, 0x80 | SFI["cardaccess"], 0x00, le=256)))
        return data if sw in (SW.OK, SW.END_OF_FILE) and data else None

    def open(self, keys: Sequence[AccessKey | CanKey]) -> str:
        """PACE for a CAN when the chip offers it, else BAC with each candidate in order,
        stopping at the first key accepted. The eMRTD application ends up selected."""
        if not keys:
            raise AccessDenied("no access key to try")
        offers_pace = False
        if any(isinstance(k, CanKey) for k in keys):
            access = self.card_access()
            offers_pace = access is not None and has_pace(access)
        selected = False
        for key in keys:
            if isinstance(key, CanKey):
                if not offers_pace:
                    continue
                try:
                    suite = pace_authenticate(self.port, key.can, rnd=self.rnd)
                except AccessDenied:
                    continue
                self.secure = SecurePort(self.port, TerminalChannel(suite, bytes(16)))
                _, sw = self._transmit(Command(0x00, INS_SELECT, 0x04, 0x0C, AID_ICAO))
                if sw != SW.OK:
                    raise ApduError(sw, "the card has no ICAO eMRTD application")
                return "pace"
            if not selected:
                self.select_application()
                selected = True
            try:
                session = authenticate(self.port, BacKeys.from_access_key(key),
                                       rnd_ifd=self.rnd(8), k_ifd=self.rnd(16))
            except AccessDenied:
                continue
            self.secure = SecurePort(self.port, TerminalChannel(session.suite, session.ssc))
            return "bac"
        raise AccessDenied("the chip refused every access key")

    def transmit(self, c: Command) -> tuple[bytes, int]:
        return self._transmit(c)

    def _transmit(self, c: Command) -> tuple[bytes, int]:
        if self.secure is None:
            raise AccessDenied("no secure session")
        return self.secure.transmit(c)

    def read_file(self, key: FileKey) -> bytes:
        """The whole file: first chunk by short file identifier (falling back to SELECT),
        the rest by offset. The TLV header sizes the file."""
        first = Command(0x00, INS_READ_BINARY, 0x80 | SFI[key], 0x00, le=self.chunk,
                        extended=self.extended)
        data, sw = self._transmit(first)
        if sw not in (SW.OK, SW.END_OF_FILE):
            if sw in (SW.FILE_NOT_FOUND, SW.SECURITY_NOT_SATISFIED):
                raise ApduError(sw, "file not readable")
            _, sw = self._transmit(Command(0x00, INS_SELECT, 0x02, 0x0C,
                                           FID[key].to_bytes(2, "big")))
            if sw != SW.OK:
                raise ApduError(sw, "file not found")
            data, sw = self._transmit(Command(0x00, INS_READ_BINARY, 0, 0, le=self.chunk,
                                              extended=self.extended))
            if sw not in (SW.OK, SW.END_OF_FILE):
                raise ApduError(sw, "READ BINARY failed")
        total = tlv_total_length(data)
        if total > MAX_FILE_BYTES:
            raise TlvError("file larger than READ BINARY can address")
        buf = bytearray(data)
        while len(buf) < total:
            if sw == SW.END_OF_FILE:
                raise TlvError("file shorter than its TLV length")
            offset = len(buf)
            data, sw = self._transmit(Command(
                0x00, INS_READ_BINARY, offset >> 8, offset & 0xFF,
                le=min(self.chunk, total - offset), extended=self.extended))
            if sw not in (SW.OK, SW.END_OF_FILE) or not data:
                raise ApduError(sw, "READ BINARY failed")
            buf += data
        if len(buf) != total:
            raise TlvError("trailing bytes after the file's TLV")
        return bytes(buf)


def read_chip(port: CardPort, keys: Sequence[AccessKey | CanKey], *, rnd: Callable[[int], bytes],
              extended: bool, trust: Sequence[x509.Certificate], now: datetime,
              on_identity: Callable[[ChipIdentity], None] | None = None,
              want_photo: bool = True) -> ChipRead:
    counter = CountingPort(port)
    s = ChipSession(counter, rnd=rnd, extended=extended)
    access = s.open(keys)
    com = parse_ef_com(s.read_file("com"))
    sod = parse_sod(s.read_file("sod"))
    # Which data groups exist comes from the signed SOD, never from the unsigned EF.COM: a
    # chip that hides DG15 from EF.COM must not skip Active Authentication (ICAO 9303-10 §4.6.2).
    present = set(sod.hashes)
    groups: dict[int, bytes] = {1: s.read_file(1)}
    if 13 in present:
        groups[13] = s.read_file(13)
    # Check the signature before trusting the parsers with the content: a tampered file that
    # no longer parses is reported as the tampering it is.
    pa = passive_authentication(sod, groups, trust, now=now)
    try:
        mrz = parse_dg1(groups[1])
        dg13 = parse_dg13(groups[13]) if 13 in groups else Dg13()
    except (TlvError, MrzError) as e:
        if pa.status is PaStatus.FAILED:
            raise PassiveAuthError(pa.reason or "failed") from e
        raise
    identity = ChipIdentity(com, mrz, dg13, pa, access)
    if on_identity is not None:
        on_identity(identity)
    identity_groups = set(groups)
    photo = None
    if want_photo and 2 in present:
        groups[2] = s.read_file(2)
        photo = parse_dg2(groups[2])
    active = NOT_SUPPORTED
    if 15 in present:
        # A signed DG15 means the chip has an AA key: it must prove it holds it. A key we
        # cannot use or an answer that does not verify is a failure, never "not supported".
        groups[15] = s.read_file(15)
        challenge = rnd(8)
        answer, sw = s.transmit(internal_authenticate(challenge))
        try:
            active = verify_answer(public_key_from_dg15(groups[15]), challenge, answer, sw)
        except (TlvError, ValueError):
            active = FAILED
        if active != PASSED:
            active = FAILED
    if set(groups) != identity_groups:
        pa = passive_authentication(sod, groups, trust, now=now)  # DG2 and DG15 included
    return ChipRead(identity, photo, pa, active, counter.apdus, counter.bytes_in,
                    counter.bytes_out)


STALE_RECONNECTS = 100  # connections that answered nothing (the reader has not noticed yet)


class _Answered:
    """Counts the APDUs a connection answered: a tear before the first answer is a stale
    connection to a card already gone, not a read that made progress."""

    def __init__(self, port: CardPort) -> None:
        self.port = port
        self.count = 0

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        answer = self.port.send_and_receive(apdu)
        self.count += 1
        return answer


def read_with_retries(connect: Callable[[], CardPort], keys: Sequence[AccessKey | CanKey], *,
                      retries: int = 2, **kwargs: Any) -> ChipRead:
    """Tag lost mid-read: reconnect and restart from SELECT, at most ``retries`` more times.

    ``connect`` gives a freshly reset card (waiting for it to come back, and pausing between
    calls, if the caller wants) or raises a ReaderError when none is there. A connection that
    is torn before it answered anything does not use up a retry (at most STALE_RECONNECTS).
    """
    attempt = stale = 0
    while True:
        try:
            port = _Answered(connect())
        except ReaderError as e:
            if attempt == 0 and stale == 0:
                raise
            # It was there and left mid-read: say so, not "no card".
            raise CardRemoved("the card did not come back") from e
        try:
            return read_chip(port, keys, **kwargs)
        except CardRemoved:
            if port.count == 0 and stale < STALE_RECONNECTS:
                stale += 1
                continue
            if attempt >= retries:
                raise
            attempt += 1
