"""The HN212-compatible HIS feed with a real client, python-socketio's, as an HIS written for the
HN212 service uses it (the JavaScript client in Chromium: tests/system/test_hn212_page.py). The
daemon runs over real HTTP on loopback with the in-process virtual CCCD and the registry
simulator."""

from __future__ import annotations

import base64
import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from readers.doubles.vcard import DEMO_PERSON, DemoSource, Faults, demo_card
from readers.emrtd.aa import public_key_from_dg15, verify_answer
from terminal.server import BackgroundServer
from tests.helpers.chip import pki
from tests.helpers.hn212 import Feed, His, connect, serve_feed
from tests.helpers.samples import NOW

QR = "001088004321||Nguyễn Tiến Đạt|29031988|Nam|Hà Nội|01072021"
TEXT_FIELDS = ("idCode", "oldIdCode", "personName", "dateOfBirth", "gender", "nationality",
               "race", "religion", "originPlace", "residencePlace", "personalIdentification",
               "issueDate", "expiryDate", "fatherName", "motherName", "wifeName", "qr")


@pytest.fixture
def feed(sim: BackgroundServer, tmp_path: Path) -> Iterator[Feed]:
    f = serve_feed(sim, tmp_path, Faults(aa="ec"))  # a chip with DG15: AA on request too
    yield f
    f.daemon.stop()


@pytest.fixture
def his(feed: Feed) -> Iterator[His]:
    h = connect(feed.url, transports=["websocket"])
    yield h
    h.client.disconnect()


def test_chip_read_gives_ids_1_2_4_5_in_order(feed: Feed, his: His) -> None:
    deadline = time.monotonic() + 10
    while not his.info and time.monotonic() < deadline:
        time.sleep(0.02)
    info = his.info[0]
    assert set(info) == {"version", "serial_nfc", "serial_device", "date"}
    assert info["version"].startswith("tiepdon") and info["date"].endswith("Z")
    r = httpx.post(f"{feed.daemon.url}/api/v1/chip/demo", timeout=30)
    assert r.status_code == 200
    placed, text, raw, auth = his.wait_for([1, 2, 4, 5])
    data = text["data"]
    assert text["message"] == "read card successfully!"
    assert all(isinstance(data[k], str) for k in TEXT_FIELDS)  # C# clients GetString() each
    assert data["idCode"] == DEMO_PERSON.id_number
    assert data["personName"] == DEMO_PERSON.full_name
    assert data["dateOfBirth"] == "29031988" and data["gender"] == "Nam"
    assert data["fatherName"] == "Nguyễn Văn Hải" and data["nationality"] == "Việt Nam"
    assert len(data["expiryDate"]) == 8
    # The seven CCCD QR fields rebuilt from the chip, as the QR path gives them.
    fields = data["qr"].split("|")
    assert fields == [data["idCode"], data["oldIdCode"], data["personName"], "29031988", "Nam",
                      data["residencePlace"], data["issueDate"]]
    assert all(fields[i] for i in (0, 2, 3, 4, 6))
    assert raw["message"] == "Read raw data successfully!"
    # id 2 comes before Active Authentication: provisional, never "eligible" yet; id 5 settles
    assert data["eligibility"]["status"] == "needs_review"
    assert data["eligibility"]["provisional"] is True
    files = {k: base64.b64decode(v) for k, v in raw["data"].items()}
    assert files["img_data"][:3] == b"\xff\xd8\xff"
    assert files["dg1"][:1] == b"\x61" and files["sod"][:1] == b"\x77"
    pa = auth["data"]["PA"]
    for name in ("dg1", "dg2", "dg13", "dg14"):  # the SOD's hashes are of the files sent
        assert base64.b64decode(pa[f"hash_{name}"]) == hashlib.sha256(files[name]).digest()
    assert pa["status"] == "authentic" and pa["cert"] and pa["sod"] == raw["data"]["sod"]
    assert auth["data"]["CA"] == "1" and auth["data"]["verdict"] == "verified"
    assert auth["data"]["AA"]["status"] == "passed" and auth["data"]["AA"]["aa_signature"]
    assert auth["data"]["eligibility"]["status"] == "eligible"
    assert placed == {"id": 1, "message": "new card!"}  # the vendor's words


def test_a_cloned_chip_is_never_success_on_the_feed(sim: BackgroundServer,
                                                    tmp_path: Path) -> None:
    f = serve_feed(sim, tmp_path, Faults(ca="clone"))
    h = connect(f.url)
    try:
        httpx.post(f"{f.daemon.url}/api/v1/chip/demo", timeout=30)
        _, _, _, auth = h.wait_for([1, 2, 4, 5])
        assert auth["data"]["CA"] == "0"
        assert auth["data"]["verdict"] == "copy_suspected"
        assert auth["data"]["eligibility"]["status"] == "needs_review"
    finally:
        h.client.disconnect()
        f.daemon.stop()


def test_strict_clients_find_only_strings_inside_data(sim: BackgroundServer,
                                                     tmp_path: Path) -> None:
    """[his] hn212_strict: vendor-faithful clients read every member of data as a string."""
    f = serve_feed(sim, tmp_path, his__hn212_strict=True)
    h = connect(f.url)
    try:
        httpx.post(f"{f.daemon.url}/api/v1/chip/demo", timeout=30).raise_for_status()
        _, text, _, auth = h.wait_for([1, 2, 4, 5])
        assert all(isinstance(v, str) for v in text["data"].values()), text["data"]
        assert text["eligibility"]["status"] == "needs_review"  # beside data, not inside
        assert text["eligibility"]["provisional"] is True  # AA still to come at id 2
        assert "eligibility" not in auth["data"]
        assert auth["eligibility"]["status"] == "eligible"
        assert auth["data"]["eligibilityStatus"] == "eligible"
    finally:
        h.client.disconnect()
        f.daemon.stop()


def test_qr_and_typed_checks_give_id_2_with_what_the_credential_has(feed: Feed,
                                                                    his: His) -> None:
    httpx.post(f"{feed.daemon.url}/api/v1/verify", json={"qr": QR}).raise_for_status()
    (text,) = his.wait_for([2])
    data = text["data"]
    assert data["personName"] == "Nguyễn Tiến Đạt" and data["idCode"] == "001088004321"
    assert data["qr"] == QR  # the CCCD QR's own fields: nothing the other fields lack
    assert data["fatherName"] == "" and data["eligibility"]["status"] in (
        "eligible", "not_eligible", "needs_review")


def test_input_data_rereads_and_get_aa_signs_the_his_challenge(feed: Feed, his: His) -> None:
    his.client.emit("/get_aa", {"clientId": "1", "challenge": base64.b64encode(b"12345678")
                                .decode()})
    (no_card,) = his.wait_for([3])
    assert no_card["code"] == "chip_no_card"
    his.events.clear()
    his.client.emit("/input_data", {"idCode": "001088004321", "dateOfBirth": "32011988",
                                    "expiryDate": "29032048", "clientId": "1"})
    (bad,) = his.wait_for([3])
    assert bad["code"] == "his_request" and "ddmmyyyy" in bad["message"]
    his.events.clear()
    his.client.emit("/input_data", {"idCode": DEMO_PERSON.id_number,
                                    "dateOfBirth": "29031988", "expiryDate": "29032048",
                                    "clientId": "1"})
    events = his.wait_for([1, 2, 4, 5])
    dg15 = base64.b64decode(events[2]["data"]["dg15"])
    his.events.clear()
    challenge = bytes(range(8))
    his.client.emit("/get_aa", {"clientId": "1", "challenge": base64.b64encode(challenge)
                                .decode()})
    (answer,) = his.wait_for([7])
    assert base64.b64decode(answer["data"]["aa_challege"]) == challenge
    signature = base64.b64decode(answer["data"]["aa_signature"])
    assert verify_answer(public_key_from_dg15(dg15), challenge, signature, 0x9000) == "passed"


def test_get_aa_on_a_card_without_aa_says_so(sim: BackgroundServer, tmp_path: Path) -> None:
    f = serve_feed(sim, tmp_path)  # the plain demo card: no DG15, no Active Authentication
    h = connect(f.url)
    try:
        httpx.post(f"{f.daemon.url}/api/v1/chip/demo", timeout=30).raise_for_status()
        h.wait_for([1, 2, 4, 5])
        h.events.clear()
        h.client.emit("/get_aa", {"clientId": "1",
                                  "challenge": base64.b64encode(bytes(8)).decode()})
        (answer,) = h.wait_for([3])
        assert answer["code"] == "chip_no_aa"
        assert "Active Authentication" in answer["message"]
    finally:
        h.client.disconnect()
        f.daemon.stop()


def get_aa(h: His, expect: int) -> dict[str, Any]:
    h.events.clear()
    h.client.emit("/get_aa", {"clientId": "1", "challenge": base64.b64encode(bytes(8)).decode()})
    try:
        (answer,) = h.wait_for([expect])
    except AssertionError:
        raise AssertionError(f"expected id {expect}, got {h.events}") from None
    return answer


@pytest.mark.parametrize("swap", [False, True], ids=["aa-failed", "another-card-after"])
def test_get_aa_never_hands_on_a_signature_that_does_not_verify(
        sim: BackgroundServer, tmp_path: Path, swap: bool) -> None:
    """A card that failed AA (a copy) gets no id 7 — it used to, an unchecked signature; and
    a card placed after a genuine read, opening with the same keys but another AA key, is
    caught by checking each signature against the DG15 of the read."""
    f = serve_feed(sim, tmp_path, Faults(aa="ec" if swap else "ec_wrong"))
    h = connect(f.url)
    try:
        httpx.post(f"{f.daemon.url}/api/v1/chip/demo", timeout=30).raise_for_status()
        *_, auth = h.wait_for([1, 2, 4, 5])
        assert auth["data"]["AA"]["status"] == ("passed" if swap else "failed")
        if swap:
            get_aa(h, 7)  # the genuine card signs
            app: Any = f.daemon.server.config.app
            copy = demo_card(now=NOW, faults=Faults(aa="ec_wrong"), pki=pki())[0]
            app.state.services.chip.source = DemoSource(copy)
        answer = get_aa(h, 3)
        assert answer["code"] == "chip_aa_failed", answer
        assert "BẢN SAO" in answer["message"]
    finally:
        h.client.disconnect()
        f.daemon.stop()


def test_a_busy_reader_refuses_rather_than_queues(feed: Feed, his: His) -> None:
    request = {"idCode": DEMO_PERSON.id_number, "dateOfBirth": "29031988",
               "expiryDate": "29032028", "clientId": "1"}
    for _ in range(5):  # a retry-happy HIS: only one read runs, the rest are told at once
        his.client.emit("/input_data", request)
    his.wait_for([1, 2, 4, 5], skip=frozenset({3}))
    time.sleep(0.5)
    busy = [e for e in his.events if e["id"] == 3]
    assert busy and all(e["code"] == "chip_busy" for e in busy)
    assert [e["id"] for e in his.events].count(2) + len(busy) == 5


def test_an_unfinished_read_proves_nothing_on_the_feed(sim: BackgroundServer,
                                                        tmp_path: Path) -> None:
    f = serve_feed(sim, tmp_path, Faults(torn_after=30, extended=False, aa="ec"))
    h = connect(f.url)
    try:
        httpx.post(f"{f.daemon.url}/api/v1/chip/demo", timeout=30)
        _, text, removed, error, auth = h.wait_for([1, 2, 3, 3, 5], timeout=40)
        assert text["data"]["eligibilityFinal"] == "0"  # the identity came before AA/CA
        assert (removed["code"], error["code"]) == ("chip_card_removed", "chip_incomplete")
        data = auth["data"]
        assert data["verdict"] == "incomplete" and data["CA"] == ""
        assert data["AA"] == {"aa_signature": "", "status": "not_verified"}
        assert data["PA"]["status"] == "incomplete"
        assert data["eligibility"]["status"] == "needs_review"
    finally:
        h.client.disconnect()
        f.daemon.stop()


@pytest.mark.parametrize("transports", [["websocket"], ["polling"], None])
def test_a_quiet_connection_outlives_the_header_deadline(sim: BackgroundServer, tmp_path: Path,
                                                         transports: Any) -> None:
    """The slow-header guard (issue 12) once armed itself on a connection that had become a
    websocket and closed it after 10 s: an HIS feed that went quiet for a while lost messages."""
    f = serve_feed(sim, tmp_path, http__header_timeout_seconds=1)
    h = connect(f.url, transports=transports) if transports else connect(f.url)
    try:
        time.sleep(2.5)
        httpx.post(f"{f.daemon.url}/api/v1/verify", json={"qr": QR}).raise_for_status()
        assert h.wait_for([2])[0]["data"]["idCode"] == "001088004321"
        assert h.client.connected
    finally:
        h.client.disconnect()
        f.daemon.stop()


def test_every_client_gets_the_broadcast(feed: Feed, his: His) -> None:
    other = connect(feed.url, transports=["polling"])  # the long-polling transport too
    try:
        httpx.post(f"{feed.daemon.url}/api/v1/verify", json={"qr": QR}).raise_for_status()
        assert his.wait_for([2])[0] == other.wait_for([2])[0]
    finally:
        other.client.disconnect()


# -- the security rules of the daemon, on the feed's port -----------------------------------
def test_foreign_host_and_origin_and_old_protocol_are_refused(feed: Feed) -> None:
    polling = f"{feed.url}/socket.io/?EIO=4&transport=polling"
    assert httpx.get(polling).status_code == 200
    assert httpx.get(polling, headers={"Host": "evil.example:8000"}).status_code == 421
    assert httpx.get(polling, headers={"Origin": "http://evil.example"}).status_code == 400
    old = httpx.get(f"{feed.url}/socket.io/?EIO=3&transport=polling")
    assert old.status_code == 400  # socket.io 1.x/2.x clients: a clear refusal
    with socket.create_connection(("127.0.0.1", feed.port)) as s:  # DNS rebinding, websocket
        s.sendall(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                  b"Host: rebind.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        answer = s.recv(1024)
    assert b" 101 " not in answer.split(b"\r\n")[0]


def test_sessions_before_the_token_are_capped(sim: BackgroundServer, tmp_path: Path) -> None:
    """Engine.IO makes a session before Socket.IO's connect checks the token: a client that
    only opens handshakes gets as far as the unauthenticated half of the cap, then 503."""
    f = serve_feed(sim, tmp_path, http__max_streams=6)
    try:
        handshake = f"{f.url}/socket.io/?EIO=4&transport=polling"
        assert [httpx.get(handshake).status_code for _ in range(3)] == [200] * 3
        assert httpx.get(handshake).status_code == 503
    finally:
        f.daemon.stop()


def test_a_token_is_required_when_login_is(sim: BackgroundServer, tmp_path: Path) -> None:
    token = "s3cret-his-token-000000000000"
    entry = "his1:" + hashlib.sha256(token.encode()).hexdigest()
    f = serve_feed(sim, tmp_path, auth__required=True, auth__api_tokens=[entry],
                   auth__users_file=str(users_file(tmp_path)))
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            connect(f.url)
        for kwargs in ({"auth": {"token": token}},
                       {"headers": {"Authorization": f"Bearer {token}"}}):
            h = connect(f.url, **kwargs)
            h.client.disconnect()
    finally:
        f.daemon.stop()


def users_file(tmp_path: Path) -> Path:
    from terminal.auth import User, hash_password, users_text

    path = tmp_path / "users.toml"
    user = User("staff", "Nhân viên", "001099000001", hash_password("x" * 12))
    path.write_text(users_text({"staff": user}), encoding="utf-8")
    return path


def test_clients_per_address_are_capped(sim: BackgroundServer, tmp_path: Path) -> None:
    f = serve_feed(sim, tmp_path, http__max_streams_per_client=2)
    open_ = [connect(f.url), connect(f.url)]
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            connect(f.url)
        open_.pop().client.disconnect()
        time.sleep(0.3)
        open_.append(connect(f.url))  # a place given back is a place again
    finally:
        for h in open_:
            h.client.disconnect()
        f.daemon.stop()
