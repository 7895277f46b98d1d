"""Key offers (terminal/flow/offers.py): a CCCD QR's chip keys wait for the next card."""

from __future__ import annotations

from terminal.flow.offers import KeyOffers
from tests.helpers.samples import BHYT_NEW_EXAMPLE, CCCD_EXAMPLE
from verify.credentials import chip_keys_from_qr
from verify.qr import parse_cccd_qr, parse_qr


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_cccd_qr_offers_its_keys_once() -> None:
    clock = Clock()
    offers = KeyOffers(seconds=120, clock=clock)
    credential = parse_cccd_qr(CCCD_EXAMPLE)
    offers.offer_from(credential)
    assert offers.take() == chip_keys_from_qr(credential)
    assert offers.take() is None  # taken once


def test_an_offer_expires_and_is_purged() -> None:
    clock = Clock()
    offers = KeyOffers(seconds=120, clock=clock)
    offers.offer_from(parse_cccd_qr(CCCD_EXAMPLE))
    clock.t += 121
    offers.purge()
    clock.t -= 121
    assert offers.take() is None  # purged, not merely hidden


def test_other_credentials_offer_nothing_and_keep_an_earlier_offer() -> None:
    offers = KeyOffers(clock=Clock())
    offers.offer_from(parse_cccd_qr(CCCD_EXAMPLE))
    bhyt = parse_qr(BHYT_NEW_EXAMPLE)
    offers.offer_from(bhyt)
    assert offers.take() is not None
