"""The HN212 feed's port as an attacker uses it before any token (issue 23, items 2–4 and 6):
Engine.IO sessions opened with query tricks, one host filling the sessions, sessions that never
authenticate, JSONP, binary attachments, malformed packets, token guesses. Real sockets on
loopback; every loop bounded in count, every wait in time."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import socketio

from terminal.server import BackgroundServer
from tests.helpers.hn212 import (
    Feed,
    closed_by_server,
    connect,
    connect_from,
    metric,
    namespace_connect,
    raw_socket,
    serve_feed,
)

TOKEN = "Hn212-feed-token-7f3a9c1e5b"
POLLING = "/socket.io/?EIO=4&transport=polling"


def users_file(tmp_path: Path) -> Path:
    from terminal.auth import User, hash_password, users_text

    path = tmp_path / "users.toml"
    user = User("staff", "Nhân viên", "001099000001", hash_password("x" * 12))
    path.write_text(users_text({"staff": user}), encoding="utf-8")
    return path


def with_token(sim: BackgroundServer, tmp_path: Path, **overrides: object) -> Feed:
    entry = "his1:" + hashlib.sha256(TOKEN.encode()).hexdigest()
    return serve_feed(sim, tmp_path, None, auth__required=True, auth__api_tokens=[entry],
                      auth__users_file=str(users_file(tmp_path)), **overrides)


@pytest.fixture
def feed(sim: BackgroundServer, tmp_path: Path) -> Iterator[Feed]:
    f = serve_feed(sim, tmp_path)
    yield f
    f.daemon.stop()


@pytest.mark.parametrize("trick", ["&xsid=1", "&sid=", "&sid", "&SID=abc"])
def test_a_sid_that_names_no_session_is_a_new_session_and_counted(sim: BackgroundServer,
                                                                  tmp_path: Path,
                                                                  trick: str) -> None:
    """Item 2: the cap once looked for the text ``sid=``; Engine.IO parses the query."""
    f = serve_feed(sim, tmp_path, http__max_streams=4)
    try:
        codes = [httpx.get(f"{f.url}{POLLING}{trick}").status_code for _ in range(12)]
        assert codes.count(200) <= 4 and 503 in codes, codes
    finally:
        f.daemon.stop()


def test_one_host_without_a_token_leaves_room_for_the_his(sim: BackgroundServer,
                                                          tmp_path: Path) -> None:
    """Item 3: one address fills what it may, not the feed: the HIS on another address (its
    token in Socket.IO's auth, checked after the handshake) still gets in."""
    f = with_token(sim, tmp_path, http__max_streams=16, http__max_streams_per_client=4)
    try:
        codes = [httpx.get(f"{f.url}{POLLING}").status_code for _ in range(24)]
        assert codes.count(200) == 4, codes
        his = connect_from("127.0.0.2", f.url, auth={"token": TOKEN})
        assert his.client.connected
        his.client.disconnect()
    finally:
        f.daemon.stop()


def test_many_hosts_without_a_token_use_half_and_the_his_still_gets_in(
        sim: BackgroundServer, tmp_path: Path) -> None:
    """Item 3: unauthenticated sessions get half the total; an HIS whose token comes with the
    handshake (Authorization header) is not one of them."""
    f = with_token(sim, tmp_path, http__max_streams=8, http__max_streams_per_client=2)
    opened = 0
    try:
        for source in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):
            with httpx.Client(transport=httpx.HTTPTransport(local_address=source)) as c:
                opened += sum(c.get(f"{f.url}{POLLING}").status_code == 200 for _ in range(3))
        assert opened == 4  # half of 8, though three addresses could hold 6
        his = connect_from("127.0.0.2", f.url, headers={"Authorization": f"Bearer {TOKEN}"})
        assert his.client.connected
        his.client.disconnect()
    finally:
        f.daemon.stop()


def test_a_session_that_never_authenticates_is_closed(sim: BackgroundServer,
                                                     tmp_path: Path) -> None:
    """Item 3: an Engine.IO session without a Socket.IO connect is ended within seconds (its
    pending poll answered with a close), and its place given back."""
    f = with_token(sim, tmp_path, http__max_streams=4, http__max_streams_per_client=2)
    try:
        sids = [json.loads(httpx.get(f"{f.url}{POLLING}").text[1:])["sid"] for _ in range(2)]
        assert httpx.get(f"{f.url}{POLLING}").status_code == 503
        poll = httpx.get(f"{f.url}{POLLING}&sid={sids[0]}", timeout=15)
        assert poll.status_code == 400 or poll.text.startswith("1"), poll.text
        assert httpx.get(f"{f.url}{POLLING}").status_code == 200
    finally:
        f.daemon.stop()


def test_jsonp_polling_is_refused(feed: Feed) -> None:
    """Item 3: JSONP would make the handshake readable by any page through a script tag."""
    for query in ("&j=0", "&j=", "&xsid=1&j=1"):
        r = httpx.get(f"{feed.url}{POLLING}{query}")
        assert r.status_code == 400 and "___eio" not in r.text, query


def test_forwarded_for_does_not_move_a_client_on_the_feed(sim: BackgroundServer,
                                                          tmp_path: Path) -> None:
    """Decided (README): the feed's port is never behind the proxy; its per-address limits
    count the socket's peer, whatever http.trusted_proxies believes on the main port."""
    f = serve_feed(sim, tmp_path, http__trusted_proxies=["127.0.0.1"],
                   http__max_streams_per_client=2)
    try:
        codes = [httpx.get(f"{f.url}{POLLING}",
                           headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code
                 for i in range(6)]
        assert codes.count(200) == 2, codes
    finally:
        f.daemon.stop()


def test_binary_packets_are_refused_and_end_the_session(feed: Feed) -> None:
    """Item 4: the feed takes no binary input; a packet announcing attachments, or a bare
    binary message, ends that session instead of collecting what follows."""
    ws = raw_socket(feed, connect_namespace=True)
    try:
        ws.send('45999999-["/input_data",{"_placeholder":true,"num":0}]')
        for _ in range(20):
            try:
                ws.send_binary(b"\0" * 60_000)
            except (ConnectionError, OSError):
                break
        assert closed_by_server(ws)
    finally:
        ws.close()
    ws = raw_socket(feed)  # before any Socket.IO connect: a bare binary message
    try:
        ws.send_binary(b"\x01\x02")
        assert closed_by_server(ws)
    finally:
        ws.close()
    his = connect(feed.url)  # the feed goes on
    assert his.client.connected
    his.client.disconnect()


def test_malformed_packets_log_one_line_per_client_and_are_counted(
        feed: Feed, caplog: pytest.LogCaptureFixture) -> None:
    """Item 6: 1 000 two-byte malformed packets once logged 1 000 tracebacks, twice."""
    caplog.set_level(logging.INFO)
    ws = raw_socket(feed)
    try:
        for _ in range(1000):
            ws.send("4x")
        namespace_connect(ws)  # handled after the packets before it: they were all seen
    finally:
        ws.close()
    sid = json.loads(httpx.get(f"{feed.url}{POLLING}").text[1:])["sid"]
    for _ in range(20):  # a polling body that is not Engine.IO at all
        httpx.post(f"{feed.url}{POLLING}&sid={sid}", content=b"x\x1e\xff")
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(noisy) <= 3, [r.getMessage() for r in noisy[:5]]
    assert not any(r.exc_info for r in caplog.records)
    assert (metric(feed.daemon, "tiepdon_his_feed_bad_packets_total") or 0) >= 1020


def test_token_guesses_are_limited_like_logins(sim: BackgroundServer, tmp_path: Path) -> None:
    """Decided (README): five wrong tokens from one address in five minutes shut the feed to
    that address, the right token included; another address is not affected."""
    f = with_token(sim, tmp_path)
    try:
        for i in range(5):
            with pytest.raises(socketio.exceptions.ConnectionError):
                connect(f.url, auth={"token": f"wrong-{i}"})
        with pytest.raises(socketio.exceptions.ConnectionError):
            connect(f.url, auth={"token": TOKEN})
        his = connect_from("127.0.0.2", f.url, auth={"token": TOKEN})
        assert his.client.connected
        his.client.disconnect()
    finally:
        f.daemon.stop()


@pytest.mark.parametrize("weak", ["his-secret-token", "a" * 40, "0123456789" * 3,
                                  "correcthorsebatterystaple"])
def test_a_weak_token_opens_nothing_even_when_configured(sim: BackgroundServer,
                                                         tmp_path: Path, weak: str) -> None:
    """Decided (README): under 24 characters or of one kind (all letters, all digits) a token
    is refused when presented, whatever its stored hash says: its hash alone cannot show it."""
    entry = "weak:" + hashlib.sha256(weak.encode()).hexdigest()
    f = serve_feed(sim, tmp_path, None, auth__required=True, auth__api_tokens=[entry],
                   auth__users_file=str(users_file(tmp_path)))
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            connect(f.url, auth={"token": weak})
        r = httpx.get(f"{f.daemon.url}/api/v1/last", headers={"Authorization": f"Bearer {weak}"})
        assert r.status_code == 401
    finally:
        f.daemon.stop()


def test_a_client_that_never_reads_is_ended_not_queued_for(feed: Feed) -> None:
    """Decided (issue 23): a client that connected and then never takes its packets (here a
    polling client that stops polling) is ended once 64 wait for it — python-engineio's own
    queue per client has no bound. A client that reads loses nothing meanwhile."""
    with httpx.Client(base_url=f"http://127.0.0.1:{feed.port}", timeout=10) as c:
        opened = json.loads(c.get(POLLING).text[1:])
        sid = opened["sid"]
        assert c.post(f"{POLLING}&sid={sid}", content=b"40").status_code == 200
        c.get(f"{POLLING}&sid={sid}")  # the connect answer (and /info); then never again
    reader = connect(feed.url)
    try:
        for n in range(90):
            r = httpx.post(f"{feed.daemon.url}/api/v1/verify",
                           json={"card_code": "GD4010111077012", "full_name": "Nguyễn Văn A",
                                 "date_of_birth": "01/01/1990", "reader": "manual"},
                           timeout=30)
            assert r.status_code == 200, (n, r.text)
        assert len(reader.wait_for([2] * 90)) == 90  # the reading client got every one
        assert (metric(feed.daemon, "tiepdon_his_feed_sessions_refused_total") or 0) >= 1
        with httpx.Client(base_url=f"http://127.0.0.1:{feed.port}", timeout=10) as c:
            gone = c.get(f"{POLLING}&sid={sid}")
        assert gone.status_code == 400  # the session is no more
    finally:
        reader.client.disconnect()
