"""Reading a Vietnamese chip ID (ICAO 9303 eMRTD) through any card port: the strategy.

Access (PACE or BAC), then EF.SOD and — when the SOD lists it — DG14 with Chip Authentication,
so the rest is read under keys only the genuine chip can share; then EF.COM, DG1, DG13 and
passive authentication, handed to ``on_identity`` so eligibility checking starts at once; then
the photo (DG2) and Active Authentication (DG15), after which passive authentication is
repeated over everything read.

A card that leaves the field raises :class:`CardRemoved`; :func:`read_with_retries` reconnects
and *resumes*: access again (and CA), a one-APDU check that it is the same card, then the
interrupted file from its offset — files already read are kept in :class:`ReadProgress`.
Nothing half-read is ever returned, and data of two cards are never mixed.

Pure: randomness (``rnd``), time (``now``) and the trust store are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509

from readers.emrtd.aa import (
    FAILED,
    NOT_SUPPORTED,
    NOT_VERIFIED,
    PASSED,
    aa_hash,
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
from readers.emrtd.ca import ChipAuthOffer, parse_dg14
from readers.emrtd.ca import authenticate as ca_authenticate
from readers.emrtd.lds import (
    AID_ICAO,
    FID,
    SFI,
    Dg13,
    EfCom,
    Photo,
    Sod,
    dg_hash,
    parse_dg1,
    parse_dg2,
    parse_dg13,
    parse_ef_com,
    parse_sod,
)
from readers.emrtd.mrz import AccessKey, CanKey, Td1
from readers.emrtd.pa import PassiveAuth, PaStatus, passive_authentication
from readers.emrtd.pace import authenticate as pace_authenticate
from readers.emrtd.pace import pace_curve
from readers.emrtd.sm import EXTENDED_READ_MAX, SHORT_READ_MAX, SecurePort, TerminalChannel
from readers.errors import (
    AccessDenied,
    ApduError,
    CardRemoved,
    CardSwapped,
    MrzError,
    NoCard,
    PassiveAuthError,
    ReaderError,
    SecureMessagingError,
    TlvError,
)

FileKey = int | str
MAX_FILE_BYTES = 0x7FFF + 1  # READ BINARY (B0) addresses offsets up to 0x7FFF


class CountingPort:
    """Counts command APDUs and bytes each way (the benchmark's and the JSON's ``apdus``),
    into a :class:`ReadProgress` so the count covers every connection of one read."""

    def __init__(self, delegate: CardPort, totals: ReadProgress) -> None:
        self.delegate = delegate
        self.totals = totals

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        self.totals.apdus += 1
        self.totals.bytes_out += len(apdu)
        data, sw = self.delegate.send_and_receive(apdu)
        self.totals.bytes_in += len(data) + 2
        return data, sw


@dataclass(frozen=True, slots=True)
class ChipIdentity:
    com: EfCom
    mrz: Td1
    dg13: Dg13
    passive_auth: PassiveAuth
    access: str
    # Chip Authentication runs before the identity is read: its outcome is known here and
    # goes with the identity, so a copy is never shown as provisionally fine (ChipRead's
    # fields below say the same once the read ends).
    chip_auth: str = NOT_SUPPORTED
    chip_auth_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ChipRead:
    identity: ChipIdentity
    photo: Photo | None
    passive_auth: PassiveAuth      # over every data group read, the photo included
    active_auth: str               # passed | failed | not_supported
    apdus: int                     # over every connection, reconnects included
    bytes_in: int
    bytes_out: int
    # passed | failed (the chip could not prove its key: a copy) | not_verified (the signed
    # DG14 offers CA this terminal cannot run; why in chip_auth_reason) | not_supported
    chip_auth: str = NOT_SUPPORTED
    chip_auth_reason: str | None = None
    reconnects: int = 0
    # The files as read ("sod", "dg1", "dg2", "dg13", "dg14", "dg15") and the chip's answer to
    # the AA challenge: what an HN212-class HIS feed hands on (terminal/feeds/hn212.py).
    files: dict[str, bytes] = field(default_factory=dict)
    aa_signature: bytes | None = None


@dataclass
class ReadProgress:
    """What one read has learnt, kept across tears: whole files, the file being read and how
    far, the read length the chip accepts, and how Chip Authentication went."""

    files: dict[FileKey, bytes] = field(default_factory=dict)
    partial: dict[FileKey, bytes] = field(default_factory=dict)
    chunk: int | None = None
    chip_auth: str = NOT_SUPPORTED
    chip_auth_reason: str | None = None
    chip_auth_tries: int = 0  # Chip Authentications that broke the channel (CA_TRIES at most)
    identity_sent: bool = False
    reconnects: int = 0
    apdus: int = 0
    bytes_in: int = 0
    bytes_out: int = 0

    @property
    def started(self) -> bool:
        return bool(self.files or self.partial)

    def start_over(self) -> None:
        self.files.clear()
        self.partial.clear()
        self.chip_auth, self.chip_auth_reason = NOT_SUPPORTED, None
        self.chip_auth_tries = 0


# A genuine chip whose answer was corrupted once (a bad MAC under the old keys, a lost
# response) proves its key on a second try; a copy never does. One failure is not a verdict.
CA_TRIES = 2


class ChipAuthBroken(SecureMessagingError):
    """Chip Authentication failed and took the secure channel with it: reconnect, and try
    it again or, after CA_TRIES, read on without it (the failure recorded in
    :class:`ReadProgress`)."""


SM_ABORTED = (SW.SM_DATA_MISSING, SW.SM_DATA_INCORRECT)  # 6987, 6988: the chip dropped SM
MIN_CHUNK = 0x20


class ChipSession:
    """One contact with the card: application selected, access done, files read under SM."""

    def __init__(self, port: CardPort, *, rnd: Callable[[int], bytes], extended: bool,
                 progress: ReadProgress | None = None) -> None:
        self.port = port
        self.rnd = rnd
        self.extended = extended
        self.progress = progress or ReadProgress()
        default = EXTENDED_READ_MAX if extended else SHORT_READ_MAX
        self.chunk = min(default, self.progress.chunk or default)
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
        curve = None
        if any(isinstance(k, CanKey) for k in keys):
            access = self.card_access()
            curve = pace_curve(access) if access is not None else None
        selected = False
        for key in keys:
            if isinstance(key, CanKey):
                if curve is None:
                    continue
                try:
                    suite = pace_authenticate(self.port, key, rnd=self.rnd, curve=curve)
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
        data, sw = self.secure.transmit(c)
        if sw in SM_ABORTED:
            raise SecureMessagingError(f"the chip ended secure messaging ({sw:04X})")
        return data, sw

    def chip_authenticate(self, offer: ChipAuthOffer) -> None:
        """CA under the current keys, then switch; the next protected answer proves the chip."""
        suite = ca_authenticate(self._transmit, offer, rnd=self.rnd)
        self.secure = SecurePort(self.port, TerminalChannel(suite, bytes(suite.ssc_size)))

    def same_card(self) -> bool:
        """After a reconnect: does the card start its EF.SOD as the one read before? The
        first bytes of EF.SOD hold the data-group hashes, which no two cards share."""
        kept = self.progress.files.get("sod") or self.progress.partial.get("sod") or b""
        if not kept:
            return not self.progress.started
        want = min(len(kept), self.chunk)
        data, sw = self._transmit(Command(0x00, INS_READ_BINARY, 0x80 | SFI["sod"], 0x00,
                                          le=want, extended=self.extended))
        return sw in (SW.OK, SW.END_OF_FILE) and data == kept[:want]

    def _read(self, key: FileKey, offset: int, le: int) -> tuple[bytes, int]:
        """READ BINARY at ``offset``; by short file identifier while the offset fits in P2
        (that also selects the file), else with the file selected by its identifier."""
        if offset <= 0xFF:
            return self._transmit(Command(0x00, INS_READ_BINARY, 0x80 | SFI[key], offset,
                                          le=le, extended=self.extended))
        return self._transmit(Command(0x00, INS_READ_BINARY, offset >> 8, offset & 0xFF,
                                      le=le, extended=self.extended))

    def _select(self, key: FileKey) -> None:
        _, sw = self._transmit(Command(0x00, INS_SELECT, 0x02, 0x0C,
                                       FID[key].to_bytes(2, "big")))
        if sw != SW.OK:
            raise ApduError(sw, "file not found")

    def _step_down(self, sw: int, le: int) -> bool:
        """A short read the chip refused for its length: remember a length it takes."""
        if self.extended or not (sw == SW.WRONG_LENGTH or sw >> 8 == 0x6C):
            return False
        smaller = (sw & 0xFF or 256) if sw >> 8 == 0x6C else le // 2
        if smaller >= le or smaller < MIN_CHUNK:
            return False
        self.chunk = self.progress.chunk = smaller
        return True

    def _chunk(self, key: FileKey, offset: int, want: int) -> tuple[bytes, int]:
        while True:
            le = min(self.chunk, want)
            data, sw = self._read(key, offset, le)
            if not self._step_down(sw, le):
                return data, sw

    def read_file(self, key: FileKey) -> bytes:
        """The whole file, resuming where a torn read stopped. The TLV header sizes it."""
        progress = self.progress
        if key in progress.files:
            return progress.files[key]
        buf = bytearray(progress.partial.get(key, b""))
        sw: int = SW.OK
        if not buf:
            data, sw = self._chunk(key, 0, self.chunk)
            if sw not in (SW.OK, SW.END_OF_FILE):
                if sw in (SW.FILE_NOT_FOUND, SW.SECURITY_NOT_SATISFIED):
                    raise ApduError(sw, "file not readable")
                self._select(key)  # a chip without short file identifiers
                data, sw = self._transmit(Command(0x00, INS_READ_BINARY, 0, 0, le=self.chunk,
                                                  extended=self.extended))
                if sw not in (SW.OK, SW.END_OF_FILE):
                    raise ApduError(sw, "READ BINARY failed")
            buf += data
        elif len(buf) > 0xFF:
            self._select(key)  # resuming past what a short file identifier can address
        total = tlv_total_length(bytes(buf))
        if total > MAX_FILE_BYTES:
            raise TlvError("file larger than READ BINARY can address")
        progress.partial[key] = bytes(buf)
        while len(buf) < total:
            if sw == SW.END_OF_FILE:
                raise TlvError("file shorter than its TLV length")
            offset = len(buf)
            data, sw = self._chunk(key, offset, total - offset)
            if sw not in (SW.OK, SW.END_OF_FILE) or not data:
                raise ApduError(sw, "READ BINARY failed")
            buf += data
            progress.partial[key] = bytes(buf)
        if len(buf) != total:
            raise TlvError("trailing bytes after the file's TLV")
        del progress.partial[key]
        progress.files[key] = bytes(buf)
        return progress.files[key]


def _chip_authentication(s: ChipSession, sod: Sod, present: set[int]) -> None:
    """CA when the signed SOD lists DG14 and it has not failed on this card already.

    Two outcomes other than ``passed``, never confused (issue 22):
    ``failed`` — the chip did not prove the key (a refusal, or no answer under the new keys),
    or DG14 is not the file the SOD signed: the chip may be a copy.
    ``not_verified`` — DG14 is the signed one, but this terminal cannot use it (a curve,
    parameter id, protocol or encoding it does not know, or one it cannot parse). A copy
    cannot cause this: the signed DG14 is the genuine chip's, so only passive authentication
    failing could make it anything else — and that is reported on its own."""
    progress = s.progress
    if 14 not in present or progress.chip_auth == FAILED:
        return
    dg14 = s.read_file(14)
    if dg_hash(sod.hash_algorithm, dg14) != sod.hashes[14]:
        progress.chip_auth, progress.chip_auth_reason = FAILED, "dg14_hash"
        return
    try:
        offers = parse_dg14(dg14)
    except TlvError:
        progress.chip_auth, progress.chip_auth_reason = NOT_VERIFIED, "dg14_malformed"
        return
    if not offers.offers:
        if offers.offers_ca:
            progress.chip_auth = NOT_VERIFIED
            progress.chip_auth_reason = "unsupported: " + "; ".join(offers.unsupported)
        return
    passed_before = progress.chip_auth == PASSED
    try:
        s.chip_authenticate(offers.offers[0])
        # The proof: the chip answers under the new keys (EF.COM is small and needed anyway).
        progress.files.pop("com", None)
        s.read_file("com")
    except (ApduError, SecureMessagingError) as e:
        if passed_before:
            # It proved this key before the tear and cannot now: another chip was placed.
            raise CardSwapped("Chip Authentication failed after the card came back") from e
        progress.chip_auth_tries += 1
        if progress.chip_auth_tries >= CA_TRIES:
            progress.chip_auth, progress.chip_auth_reason = FAILED, type(e).__name__
        raise ChipAuthBroken("Chip Authentication failed") from e
    progress.chip_auth, progress.chip_auth_reason = PASSED, None


def read_chip(port: CardPort, keys: Sequence[AccessKey | CanKey], *, rnd: Callable[[int], bytes],
              extended: bool, trust: Sequence[x509.Certificate], now: datetime,
              on_identity: Callable[[ChipIdentity], None] | None = None,
              want_photo: bool = True, progress: ReadProgress | None = None) -> ChipRead:
    progress = progress if progress is not None else ReadProgress()
    s = ChipSession(CountingPort(port, progress), rnd=rnd, extended=extended,
                    progress=progress)
    access = s.open(keys)
    if progress.started and not s.same_card():
        if progress.identity_sent:
            raise CardSwapped("another card was placed after the tear")
        progress.start_over()  # nothing shown yet: read the card that is there
    sod = parse_sod(s.read_file("sod"))
    # Which data groups exist comes from the signed SOD, never from the unsigned EF.COM: a
    # chip that hides DG14 or DG15 from EF.COM must not skip CA or AA (ICAO 9303-10 §4.6.2).
    present = set(sod.hashes)
    _chip_authentication(s, sod, present)
    com = parse_ef_com(s.read_file("com"))
    groups: dict[int, bytes] = {n: s.read_file(n) for n in (1, 13, 14) if n in present | {1}}
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
    identity = ChipIdentity(com, mrz, dg13, pa, access, progress.chip_auth,
                            progress.chip_auth_reason)
    if on_identity is not None and not progress.identity_sent:
        on_identity(identity)
    progress.identity_sent = True
    identity_groups = set(groups)
    photo = None
    if want_photo and 2 in present:
        groups[2] = s.read_file(2)
        photo = parse_dg2(groups[2])
    active = NOT_SUPPORTED
    aa_signature = None
    if 15 in present:
        # A signed DG15 means the chip has an AA key: it must prove it holds it. A key we
        # cannot use or an answer that does not verify is a failure, never "not supported".
        groups[15] = s.read_file(15)
        challenge = rnd(8)
        answer, sw = s.transmit(internal_authenticate(challenge))
        aa_signature = answer if sw == SW.OK else None
        try:
            active = verify_answer(public_key_from_dg15(groups[15]), challenge, answer, sw,
                                   hash_name=aa_hash(_aa_algorithm(groups.get(14))))
        except (TlvError, ValueError):
            active = FAILED
        if active not in (PASSED, NOT_VERIFIED):
            active = FAILED
    if set(groups) != identity_groups:
        pa = passive_authentication(sod, groups, trust, now=now)  # DG2 and DG15 included
    files = {(f"dg{k}" if isinstance(k, int) else k): v for k, v in progress.files.items()
             if isinstance(k, int) or k == "sod"}
    return ChipRead(identity, photo, pa, active, progress.apdus, progress.bytes_in,
                    progress.bytes_out, progress.chip_auth, progress.chip_auth_reason,
                    progress.reconnects, files, aa_signature)


def _aa_algorithm(dg14: bytes | None) -> str | None:
    """DG14's ActiveAuthenticationInfo signature algorithm; None without one (or when DG14
    does not parse: Chip Authentication reports that on its own)."""
    if dg14 is None:
        return None
    try:
        return parse_dg14(dg14).aa_algorithm
    except TlvError:
        return None


def sign_challenge(port: CardPort, keys: Sequence[AccessKey | CanKey], challenge: bytes, *,
                   rnd: Callable[[int], bytes], extended: bool = False) -> bytes:
    """Active Authentication on request (an HIS's own 8-byte challenge): access, then
    INTERNAL AUTHENTICATE under secure messaging; the chip's signature, unverified (the
    caller holds DG15). A refusal raises ApduError."""
    if len(challenge) != 8:
        raise ValueError("the AA challenge is 8 bytes")
    s = ChipSession(CountingPort(port, ReadProgress()), rnd=rnd, extended=extended)
    s.open(keys)
    answer, sw = s.transmit(internal_authenticate(challenge))
    if sw != SW.OK or not answer:
        raise ApduError(sw, "INTERNAL AUTHENTICATE refused")
    return answer


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
    """Tag lost mid-read: reconnect and resume, at most ``retries`` more times.

    ``connect`` gives a freshly reset card (waiting for it to come back, and pausing between
    calls, if the caller wants) or raises a ReaderError when none is there. A connection that
    is torn before it answered anything does not use up a retry (at most STALE_RECONNECTS);
    neither does the one reconnect after a failed Chip Authentication.
    """
    progress = ReadProgress()
    attempt = stale = 0
    while True:
        try:
            port = _Answered(connect())
        except ReaderError as e:
            if attempt == 0 and stale == 0 and not progress.started:
                raise
            if not isinstance(e, NoCard | CardRemoved):
                raise  # the reader itself went away (unplugged, pcscd stopped): say that
            # It was there and left mid-read: say so, not "no card".
            raise CardRemoved("the card did not come back") from e
        try:
            return read_chip(port, keys, progress=progress, **kwargs)
        except ChipAuthBroken:
            progress.reconnects += 1
            continue  # at most CA_TRIES times: then the failure is recorded, CA not tried
        except CardRemoved:
            if port.count == 0 and stale < STALE_RECONNECTS:
                stale += 1
                progress.reconnects += 1
                continue
            if attempt >= retries:
                raise
            attempt += 1
            progress.reconnects += 1
