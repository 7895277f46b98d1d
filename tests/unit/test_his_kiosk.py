"""HIS check-in export, the shift list and dashboard, the kiosk's redacted stream (HTTP)."""

from __future__ import annotations

import threading
from xml.etree import ElementTree

import httpx
import pytest
import xmlschema

from terminal.routes.kiosk import kiosk_view, mask_name
from terminal.server import BackgroundServer
from tests.helpers.paths import DATA
from tests.helpers.samples import BHYT_NEW_EXAMPLE, CCCD_EXAMPLE
from verify.his import XML0_FIELDS


def test_checkin_record_for_the_his(daemon: BackgroundServer) -> None:
    assert httpx.get(f"{daemon.url}/api/v1/last/checkin").status_code == 404
    httpx.post(f"{daemon.url}/api/v1/verify", json={"qr": CCCD_EXAMPLE}, timeout=10)
    rec = httpx.get(f"{daemon.url}/api/v1/last/checkin").json()
    assert rec["ho_ten"] == "Nguyễn Văn B" and rec["so_cccd"] == "001098012345"
    assert rec["ngay_sinh"] == "200001010000" and rec["gioi_tinh"] == 2
    assert rec["ma_the_bhyt"] == "SV4010123456789" and rec["ma_dkbd"] == "01C54"
    assert rec["gt_the_tu"] == "20260101" and rec["gt_the_den"] == "20261231"
    assert rec["status"] == "eligible" and rec["format"].startswith("QĐ 130")


SCHEMA = DATA / "qd4750_xml0.xsd"


@pytest.mark.parametrize("payload", [CCCD_EXAMPLE, BHYT_NEW_EXAMPLE])
def test_checkin_xml_passes_the_published_field_list(daemon: BackgroundServer,
                                                     payload: str) -> None:
    assert httpx.get(f"{daemon.url}/api/v1/last/checkin.xml").status_code == 404
    httpx.post(f"{daemon.url}/api/v1/verify", json={"qr": payload}, timeout=10)
    r = httpx.get(f"{daemon.url}/api/v1/last/checkin.xml")
    assert r.headers["content-type"] == "application/xml; charset=utf-8"
    assert r.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert r.headers["x-tiepdon-status"] == "eligible"
    xmlschema.XMLSchema(SCHEMA).validate(r.text)  # raises on any departure from the list
    row = ElementTree.fromstring(r.content).find("DSACH_TRANG_THAI_KCB/TRANG_THAI_KCB")
    assert row is not None
    assert [e.tag for e in row] == list(XML0_FIELDS)  # the decision's order
    rec = httpx.get(f"{daemon.url}/api/v1/last/checkin").json()
    for tag, key in (("HO_TEN", "ho_ten"), ("NGAY_SINH", "ngay_sinh"),
                     ("MA_THE_BHYT", "ma_the_bhyt"), ("GT_THE_DEN", "gt_the_den")):
        assert (row.findtext(tag) or None) == rec[key]  # the JSON form says the same
    assert row.findtext("MA_CSKCB") == "01C54" and len(row.findtext("NGAY_VAO") or "") == 12
    assert row.findtext("MA_BN") == "" and row.findtext("STT") == "1"


def test_the_schema_is_not_a_rubber_stamp() -> None:
    """The schema refuses what the decision does not allow (so passing it means something)."""
    schema = xmlschema.XMLSchema(SCHEMA)
    good = ("<CHI_TIEU_TRANG_THAI_KCB><DSACH_TRANG_THAI_KCB><TRANG_THAI_KCB>"
            + "".join(f"<{t}>{'1' if t in ('MA_LK', 'STT', 'GIOI_TINH') else ''}</{t}>"
                      for t in XML0_FIELDS)
            + "</TRANG_THAI_KCB></DSACH_TRANG_THAI_KCB></CHI_TIEU_TRANG_THAI_KCB>")
    schema.validate(good)
    for bad in (good.replace("<NGAY_SINH></NGAY_SINH>", "<NGAY_SINH>20000101</NGAY_SINH>"),
                good.replace("<GIOI_TINH>1</GIOI_TINH>", "<GIOI_TINH>Nam</GIOI_TINH>"),
                good.replace("<STT>1</STT><MA_BN></MA_BN>", "<MA_BN></MA_BN><STT>1</STT>")):
        with pytest.raises(xmlschema.XMLSchemaValidationError):
            schema.validate(bad)


def test_year_only_birth_and_unknown_sex() -> None:
    from datetime import UTC, datetime

    from verify.eligibility import Eligibility, Person, Source
    from verify.his import checkin_record
    from verify.model import BirthDate, Credential, CredentialKind
    from verify.tables import Status

    e = Eligibility(Status.NEEDS_REVIEW, Source.NONE, datetime.now(UTC), None, (),
                    person=Person("A", BirthDate(1965), None))
    rec = checkin_record(Credential(kind=CredentialKind.MANUAL), e)
    assert (rec["ngay_sinh"], rec["gioi_tinh"], rec["ma_the_bhyt"]) == ("196500000000", 3, None)


def test_recent_list_and_dashboard(daemon: BackgroundServer) -> None:
    for body in ({"qr": CCCD_EXAMPLE}, {"qr": BHYT_NEW_EXAMPLE}):
        httpx.post(f"{daemon.url}/api/v1/verify", json=body, timeout=10)
    recent = httpx.get(f"{daemon.url}/api/v1/recent").json()
    assert [r["full_name"] for r in recent] == ["Nguyễn Tiến Đạt", "Nguyễn Văn B"]
    stats = httpx.get(f"{daemon.url}/api/v1/stats").json()
    assert stats["total"] == 2 and stats["sources"] == {"registry": 2}
    assert stats["registry_codes"] == {"000": 2}
    page = httpx.get(f"{daemon.url}/dashboard").text
    assert "<svg" in page and "Cổng BHXH" in page
    for private in ("Nguyễn", "001098012345", "SV4010123456789"):
        assert private not in page


def test_mask_name() -> None:
    assert mask_name("Nguyễn Văn An") == "NGUYỄN V. A."
    assert mask_name("Y Bhăm Niê") == "Y B. N."
    assert mask_name(None) is None


def test_kiosk_view_carries_no_identifiers() -> None:
    event = {"status": "eligible", "source": "registry", "card_code": "SV4010123456789",
             "person": {"full_name": "Nguyễn Văn B", "date_of_birth": "2000-01-01"},
             "credential": {"id_number": "001098012345"}}
    view = kiosk_view(event)
    assert view is not None and set(view) == {"status", "name", "vi", "en", "offline"}
    assert view["name"] == "NGUYỄN V. B."
    assert kiosk_view({**event, "recheck": {"changed": True}}) is None


def test_kiosk_stream(daemon: BackgroundServer) -> None:
    ready = threading.Event()
    lines: list[str] = []

    def read() -> None:
        with httpx.stream("GET", f"{daemon.url}/api/v1/kiosk/events", timeout=10) as r:
            for line in r.iter_lines():
                lines.append(line)
                if line.startswith(": connected"):
                    ready.set()
                if line.startswith("data: ") and "event: result" in lines[-2:-1]:
                    return

    t = threading.Thread(target=read)
    t.start()
    assert ready.wait(10)
    httpx.post(f"{daemon.url}/api/v1/verify", json={"qr": CCCD_EXAMPLE}, timeout=10)
    t.join(10)
    raw = "\n".join(lines)
    assert "event: reading" in raw and "NGUYỄN V. B." in raw
    for private in ("001098012345", "SV4010123456789", "Nguyễn Văn B", "2000-01-01"):
        assert private not in raw


def test_checkin_xml_is_well_formed_whatever_the_card_held() -> None:
    from datetime import UTC, datetime

    from verify.eligibility import Eligibility, Source
    from verify.his import checkin_xml
    from verify.model import Credential, CredentialKind
    from verify.tables import Status

    e = Eligibility(Status.NEEDS_REVIEW, Source.NONE, datetime(2026, 3, 16, 2, 30, tzinfo=UTC),
                    None, ())
    c = Credential(kind=CredentialKind.MANUAL, full_name="Lê\x01 Văn\x1b A <b>&\ufffe")
    row = ElementTree.fromstring(checkin_xml(c, e, "01C54")).find(
        "DSACH_TRANG_THAI_KCB/TRANG_THAI_KCB")
    assert row is not None and row.findtext("HO_TEN") == "Lê Văn A <b>&"
    xmlschema.XMLSchema(SCHEMA).validate(checkin_xml(c, e, "01C54").decode())
