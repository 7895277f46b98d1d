"""The pyscard adapter: the only module that imports ``smartcard``. It turns pyscard's
``list[int]`` and ``sw1, sw2`` into bytes and one status word, and its exceptions into ours.

Blocking: callers run it in a worker thread, never on the event loop.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

from smartcard import scard
from smartcard.CardConnection import CardConnection
from smartcard.Exceptions import (
    CardConnectionException,
    NoCardException,
    SmartcardException,
)
from smartcard.pcsc.PCSCExceptions import EstablishContextException, ListReadersException
from smartcard.System import readers as _readers

from readers.errors import CardRemoved, NoCard, NoReader


def list_readers() -> list[str]:
    """Reader names; an unreachable pcscd is "no readers" (it may be restarting)."""
    try:
        return [str(r) for r in _readers()]
    except (EstablishContextException, ListReadersException, SmartcardException):
        return []


@dataclass
class PcscPort:
    """A connected card: ``send_and_receive`` as the core's card port."""

    connection: CardConnection
    reader: str
    atr: bytes

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        try:
            data, sw1, sw2 = self.connection.transmit(list(apdu))
        except CardConnectionException as e:
            raise CardRemoved(f"transmit failed: {type(e).__name__}") from e
        except SmartcardException as e:
            raise CardRemoved(f"reader error: {type(e).__name__}") from e
        return bytes(data), (sw1 << 8) | sw2

    def close(self) -> None:
        with contextlib.suppress(SmartcardException):
            self.connection.disconnect()


def connect(reader_name: str | None = None) -> PcscPort:
    """Connect (T=1) to the card on ``reader_name``, or on the first reader with a card."""
    names = list_readers()
    if not names:
        raise NoReader("no PC/SC reader")
    candidates = [r for r in _safe_readers() if reader_name is None or str(r) == reader_name]
    if not candidates:
        raise NoReader("the named reader is not connected")
    for reader in candidates:
        connection = reader.createConnection()
        try:
            # Leave the card powered when this handle closes: closing a stale or probing handle
            # must not reset the card under another one (pyscard's default unpowers it).
            connection.connect(CardConnection.T1_protocol, disposition=scard.SCARD_LEAVE_CARD)
        except NoCardException:
            continue
        except CardConnectionException:
            continue
        return PcscPort(connection, str(reader), bytes(connection.getATR()))
    raise NoCard("no card on the reader")


def _safe_readers() -> list[Any]:
    try:
        return list(_readers())
    except SmartcardException:
        return []


def card_present(reader_name: str) -> bool:
    """Asks pcscd for the reader's state; never connects, so it disturbs no session."""
    hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hr != scard.SCARD_S_SUCCESS:
        return False
    try:
        hr, states = scard.SCardGetStatusChange(ctx, 0, [(reader_name,
                                                          scard.SCARD_STATE_UNAWARE)])
        return hr == scard.SCARD_S_SUCCESS and bool(states[0][1] & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(ctx)


class ReaderWatcher:
    """Reader hot-plug and card presence through ``SCardGetStatusChange``.

    ``poll`` blocks up to ``timeout_ms`` waiting for a change and returns
    ``{reader: card present}``, or None while pcscd is unreachable; a pcscd restart costs a
    new context, nothing more.
    """

    def __init__(self) -> None:
        self._ctx: int | None = None
        self._states: dict[str, int] = {}

    def _reset(self) -> None:
        if self._ctx is not None:
            with contextlib.suppress(Exception):
                scard.SCardReleaseContext(self._ctx)
        self._ctx = None
        self._states = {}

    def poll(self, timeout_ms: int = 500) -> dict[str, bool] | None:
        if self._ctx is None:
            hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hr != scard.SCARD_S_SUCCESS:
                time.sleep(timeout_ms / 1000)
                return None
            self._ctx = ctx
        hr, names = scard.SCardListReaders(self._ctx, [])
        if hr == scard.SCARD_E_NO_READERS_AVAILABLE:
            self._states = {}
            time.sleep(timeout_ms / 1000)
            return {}
        if hr != scard.SCARD_S_SUCCESS:
            self._reset()
            return None
        query = [(n, self._states.get(n, scard.SCARD_STATE_UNAWARE)) for n in names]
        hr, new = scard.SCardGetStatusChange(self._ctx, timeout_ms, query)
        if hr == scard.SCARD_E_TIMEOUT:
            return {n: bool(self._states.get(n, 0) & scard.SCARD_STATE_PRESENT) for n in names}
        if hr != scard.SCARD_S_SUCCESS:  # pcscd stopped, reader unplugged mid-call, …
            self._reset()
            return None
        self._states = {n: state & ~scard.SCARD_STATE_CHANGED for n, state, _ in new}
        return {n: bool(state & scard.SCARD_STATE_PRESENT) for n, state, _ in new}

    def close(self) -> None:
        self._reset()
