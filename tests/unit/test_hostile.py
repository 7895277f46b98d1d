"""Hostile bytes: the outside fuzzer's reproducers (issue 14), each a clear error — never a
stray exception, a 500, or a hang — plus property-based tests (hypothesis, bounded) for every
pure parser. `bench/fuzz.py` runs the long campaigns."""

from __future__ import annotations

import contextlib
import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readers.emrtd import aa, apdu, atr, ca, lds, mrz, pace
from readers.errors import ReaderError
from readers.scan.framing import LineFramer
from terminal.server import BackgroundServer
from terminal.settings import SettingsError, load_settings
from tests.helpers.cache import Publisher as CachePublisher
from tests.helpers.cli import run
from verify import qr, registry, snapshot
from verify.errors import InputFormatError, VerifyError
from verify.fingerprint import fingerprint

LONE = "\udca5"
BOUNDED = settings(max_examples=300, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])


# -- the reproducers -----------------------------------------------------------------------------
def test_a_lone_surrogate_never_breaks_the_fingerprint() -> None:
    assert len(fingerprint(b"k" * 32, "001088004321" + LONE)) == 12


@pytest.mark.parametrize("text", [f"001088004321||Nguy{LONE}n|29031988|Nam|Hà Nội|01072021",
                                  "001088004321||Nguyễn|29031988|Nam|Hà Nội|01072021" + LONE])
def test_a_lone_surrogate_in_a_qr_is_a_format_error(text: str) -> None:
    with pytest.raises(InputFormatError, match="Unicode"):
        qr.parse_qr(text)


@pytest.mark.parametrize("bad", ["①", "²", "٣", "０"])
def test_non_ascii_digits_in_the_mrz_are_refused(bad: str) -> None:
    with pytest.raises(ReaderError):
        mrz.check_digit("12345" + bad)
    with pytest.raises(ReaderError):
        mrz.AccessKey("12345678" + bad, "880329", "280329")


def test_a_deeply_nested_registry_answer_is_a_protocol_error() -> None:
    from verify.adapters.registry_client import parse_json_answer

    with pytest.raises(VerifyError):
        parse_json_answer(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(VerifyError):
        parse_json_answer(b'{"maKetQua": NaN}')


def test_a_lone_surrogate_in_a_registry_answer_is_a_protocol_error() -> None:
    answer = {"maKetQua": "000", "maThe": "HS4010120878811", "hoTen": "Nguy\udca5n",
              "ngaySinh": "29/03/1988", "gioiTinh": "Nam", "maDKBD": "01C54",
              "gtTheTu": "01/01/2026", "gtTheDen": "31/12/2026"}
    with pytest.raises(VerifyError):
        registry.parse_check_answer(answer)


@pytest.mark.parametrize("text", ["a = " + "[" * 5000 + "]" * 5000,
                                  "a = " + "{b = " * 5000 + "1" + "}" * 5000,
                                  "[http]\nport = 99999999999999999999999999"])
def test_a_hostile_config_is_one_line_refusal(tmp_path: Path, text: str) -> None:
    path = tmp_path / "tiepdon.toml"
    path.write_text(text)
    with pytest.raises(SettingsError) as e:
        load_settings(path, environ={})
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("field,value", [("records_size", "Infinity"), ("created", "x" * 10),
                                         ("record_count", "1e999"), ("key_id", "khóa")])
def test_a_hostile_manifest_is_an_integrity_error(field: str, value: str) -> None:
    doc: dict[str, Any] = {"format": 1, "snapshot_version": 3,
                           "created": "2026-11-20T00:00:00+00:00",
                           "expires": "2026-11-27T00:00:00+00:00", "record_count": 10,
                           "content_hash": "sha256:" + "0" * 64, "records_size": 4096,
                           "key_id": "demo", "index_salt": "00" * 16, "signature": "AAAA"}
    raw = json.dumps(doc).replace(json.dumps(doc[field]), value if value[0] in "I1" else
                                  json.dumps(value), 1)
    with pytest.raises(snapshot.CacheIntegrityError):
        snapshot.parse_manifest(raw.encode(), {})
    nested = b'{"format": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    with pytest.raises(snapshot.CacheIntegrityError):
        snapshot.parse_manifest(nested, {})


def test_a_csv_field_over_the_csv_limit_is_a_cache_error() -> None:
    header = ",".join(snapshot.CSV_COLUMNS)
    with pytest.raises(snapshot.CacheError):
        list(snapshot.records_from_csv([header + "\n", "x" * 200_000 + "\n"]))


def test_the_api_answers_hostile_bodies_with_4xx(daemon: BackgroundServer) -> None:
    bodies = [b'{"qr": "\xff\xfe"}', b'{"qr": "\\udca5"}', b'{"qr": NaN}',
              b'{"qr": Infinity}', b'{"card_code": "HS4010120878811", "full_name": "A",'
              b' "date_of_birth": "\\ud800"}', b"[" * 10_000]
    for body in bodies:
        r = httpx.post(f"{daemon.url}/api/v1/verify", content=body,
                       headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500, (body[:40], r.status_code, r.text[:200])
    r = httpx.post(f"{daemon.url}/api/v1/chip/read",
                   json={"doc": "088004321", "dob": "88032²", "expiry": "280329"})
    assert 400 <= r.status_code < 500, r.text
    assert httpx.get(f"{daemon.url}/api/v1/health").status_code == 200


# -- properties: any bytes in, an answer or the parser's own error out ---------------------------
@BOUNDED
@given(st.binary(max_size=2048))
def test_tlv_and_lds_parsers_raise_only_their_own_errors(data: bytes) -> None:
    for parse in (apdu.parse_tlvs, lds.parse_dg1, lds.parse_dg2, lds.parse_dg13,
                  lds.parse_ef_com, lds.parse_sod, aa.public_key_from_dg15, ca.parse_dg14,
                  atr.supports_extended_length, lds.check_der_nesting):
        with contextlib.suppress(ReaderError):
            parse(data)
    assert pace.pace_curve(data) is None or data.startswith(b"\x31")  # never raises
    framer = LineFramer()
    lines = [line for i in range(0, len(data), 7) for line in framer.feed(data[i:i + 7])]
    assert all(line is None or not ({"\r", "\n"} & set(line)) for line in lines)


@BOUNDED
@given(st.text(max_size=300))
def test_text_parsers_raise_only_their_own_errors(text: str) -> None:
    for parse in (qr.parse_qr, mrz.parse_td1):
        with contextlib.suppress(VerifyError, ReaderError):
            parse(text)
    assert len(fingerprint(b"k" * 32, text)) == 12


@BOUNDED
@given(st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                    max_leaves=40))
def test_registry_answers_raise_only_protocol_errors(obj: object) -> None:
    for parse in (registry.parse_check_answer, registry.parse_login_answer):
        with contextlib.suppress(VerifyError):
            parse(obj)


@BOUNDED
@given(st.text(max_size=500))
def test_configs_raise_only_settings_errors(text: str) -> None:
    from terminal.settings import parse_settings

    try:
        doc = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError):
        return
    with contextlib.suppress(SettingsError):
        parse_settings(doc, environ={})


# -- an attacker's mirror and files (TUF's attack list) -----------------------------------------
class Publisher(CachePublisher):
    """tests/test_cache.py's publisher, with a mirror that misbehaves on request."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.mode = "normal"

    def make(self, version: int, *, created: datetime | None = None) -> Path:
        return self.build(self.root / f"v{version}", version,
                          created=created or datetime.now(UTC))

    def serve(self, folder: Path) -> tuple[Any, str]:
        import http.server
        import threading
        import time as _time

        publisher = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                body = (folder / name).read_bytes()
                self.send_response(200)
                self.end_headers()
                try:
                    if publisher.mode == "endless" and name == "records.db":
                        self.wfile.write(body)
                        while True:
                            self.wfile.write(b"\0" * 65536)
                    elif publisher.mode == "huge-manifest" and name == "manifest.json":
                        for _ in range(800):
                            self.wfile.write(b" " * 65536)
                    elif (publisher.mode, name) in (("slow-manifest", "manifest.json"),
                                                    ("slow", "records.db")):
                        for byte in body:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            _time.sleep(0.3)
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


@pytest.fixture
def publisher(tmp_path: Path) -> Publisher:
    return Publisher(tmp_path / "publisher")


@pytest.mark.parametrize("mode", ["endless", "huge-manifest"])
def test_endless_data_is_cut_at_what_the_manifest_signed(publisher: Publisher, tmp_path: Path,
                                                          mode: str) -> None:
    from verify.adapters.cache import fetch

    httpd, url = publisher.serve(publisher.make(1))
    publisher.mode = mode
    try:
        with pytest.raises(snapshot.CacheIntegrityError):
            fetch(url, tmp_path / "dl", publisher.trusted, deadline_seconds=60)
        written = sum(p.stat().st_size for p in (tmp_path / "dl").iterdir())
        signed = json.loads((publisher.root / "v1" / "manifest.json").read_text())
        assert written <= signed["records_size"] + 64 * 1024 + 1  # never past the limits
    finally:
        httpd.shutdown()


def test_slow_retrieval_meets_a_deadline(publisher: Publisher, tmp_path: Path) -> None:
    import time as _time

    from verify.adapters.cache import fetch

    httpd, url = publisher.serve(publisher.make(1))
    publisher.mode = "slow"
    t0 = _time.monotonic()
    try:
        with pytest.raises(snapshot.CacheIntegrityError, match="too long"):
            fetch(url, tmp_path / "dl", publisher.trusted, deadline_seconds=2, timeout=1)
    finally:
        httpd.shutdown()
    assert _time.monotonic() - t0 < 10


def test_a_trickled_manifest_meets_its_own_short_deadline(publisher: Publisher,
                                                          tmp_path: Path) -> None:
    """The whole fetch may take 15 minutes, the 64 KiB manifest not: its own deadline."""
    from verify.adapters.cache import MANIFEST_DEADLINE_SECONDS, fetch

    assert MANIFEST_DEADLINE_SECONDS <= 60
    httpd, url = publisher.serve(publisher.make(1))
    publisher.mode = "slow-manifest"
    try:
        with pytest.raises(snapshot.CacheIntegrityError, match="too long"):
            fetch(url, tmp_path / "dl", publisher.trusted, manifest_seconds=2, timeout=1)
    finally:
        httpd.shutdown()
    assert not (tmp_path / "dl" / "records.db").exists()


def test_a_trickling_records_download_is_refused_for_its_rate(publisher: Publisher,
                                                               tmp_path: Path) -> None:
    """Under the whole deadline, but far below the minimum average rate: refused."""
    from verify.adapters.cache import fetch

    httpd, url = publisher.serve(publisher.make(1))
    publisher.mode = "slow"
    try:
        with pytest.raises(snapshot.CacheIntegrityError, match="too slow"):
            fetch(url, tmp_path / "dl", publisher.trusted, min_rate=1024, grace_seconds=1,
                  timeout=5)
    finally:
        httpd.shutdown()


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "50-mb"])
def test_hostile_files_in_a_snapshot_folder_are_refused_unread(publisher: Publisher,
                                                               tmp_path: Path,
                                                               kind: str) -> None:
    import os

    from verify.adapters.cache import install, verify_dir

    folder = publisher.make(1)
    manifest = folder / "manifest.json"
    manifest.unlink()
    if kind == "dev-zero":
        manifest.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(manifest)
    else:
        manifest.write_bytes(b" " * 50_000_000)
    with pytest.raises(snapshot.CacheIntegrityError):
        verify_dir(folder, publisher.trusted)
    with pytest.raises(snapshot.CacheIntegrityError):
        install(folder, tmp_path / "data" / "cache", publisher.trusted)


def test_a_key_id_cannot_forge_a_second_line(publisher: Publisher) -> None:
    evil = CachePublisher(key_id="pub\n\x1b[2Ktiepdon: snapshot version 99 installed")
    folder = evil.build(publisher.root / "evil")
    with pytest.raises(snapshot.CacheIntegrityError) as e:
        snapshot.parse_manifest((folder / "manifest.json").read_bytes(), evil.trusted)
    assert "\n" not in str(e.value) and "\x1b" not in str(e.value)


def test_verify_refuses_a_rollback_and_install_makes_a_private_data_folder(
        publisher: Publisher, tmp_path: Path) -> None:
    from verify.snapshot import public_key_text

    data = tmp_path / "data"
    env = {"TIEPDON_DATA_DIR": str(data),
           "TIEPDON_CACHE_TRUSTED_KEYS":
               f"{publisher.key_id}:{public_key_text(publisher.key.public_key())}"}
    newer, older = publisher.make(5), publisher.make(4)
    assert run("cache", "install", str(newer), env=env).returncode == 0
    assert (data.stat().st_mode & 0o777) == 0o700
    refused = run("cache", "verify", str(older), env=env)
    assert (refused.returncode == 1 and "older" in refused.stderr.lower()) or \
        "rollback" in refused.stderr.lower(), refused.stderr


def _desk_env(publisher: Publisher, tmp_path: Path) -> dict[str, str]:
    from tests.helpers.cache import READING
    from verify.snapshot import public_key_text

    (tmp_path / "reading.key").write_text(READING.hex())
    return {"TIEPDON_DATA_DIR": str(tmp_path / "data"),
            "TIEPDON_CACHE_READING_KEY_FILE": str(tmp_path / "reading.key"),
            "TIEPDON_CACHE_TRUSTED_KEYS":
                f"{publisher.key_id}:{public_key_text(publisher.key.public_key())}"}


def test_a_snapshot_from_the_future_is_not_usable(publisher: Publisher, tmp_path: Path) -> None:
    """Signed as made a month ahead (a publisher's clock running fast): install, verify and
    fetch refuse it — installed, it replaced a working snapshot with one the daemon refuses.
    Installed while the desk's clock read later, ``cache info`` says, as the daemon does,
    that it is not used."""
    from datetime import timedelta

    env = _desk_env(publisher, tmp_path)
    future = publisher.make(1, created=datetime.now(UTC) + timedelta(days=30))
    for command in ("install", "verify"):
        p = run("cache", command, str(future), env=env)
        assert p.returncode == 1 and "made in the future" in p.stderr, p.stderr
    ahead = {**env, "TIEPDON_CLOCK": (datetime.now(UTC) + timedelta(days=31)).isoformat()}
    assert run("cache", "install", str(future), env=ahead).returncode == 0
    assert json.loads(run("cache", "info", env=ahead).stdout)["usable"] is True
    info = json.loads(run("cache", "info", env=env).stdout)
    assert info["usable"] is False and "made in the future" in info["reason"], info


def test_a_frozen_snapshot_seen_from_outside_with_the_test_clock(publisher: Publisher,
                                                                tmp_path: Path) -> None:
    """Freeze: the mirror keeps serving the same signed snapshot for months. With the test
    clock set months ahead, the CLI says it is expired and not usable."""
    env = _desk_env(publisher, tmp_path)
    assert run("cache", "install", str(publisher.make(1)), env=env).returncode == 0
    assert json.loads(run("cache", "info", env=env).stdout)["usable"] is True
    later = {**env, "TIEPDON_CLOCK": "2099-01-01T08:00:00+07:00"}
    info = json.loads(run("cache", "info", env=later).stdout)
    assert info["expired"] is True and info["usable"] is False and info["age_days"] > 1000
    assert "too old" in info["reason"]
    bad = run("cache", "info", env={**env, "TIEPDON_CLOCK": "tomorrow"})
    assert bad.returncode == 2 and "TIEPDON_CLOCK" in bad.stderr


def test_the_test_clock_is_refused_by_a_daemon_under_systemd(tmp_path: Path) -> None:
    from terminal.demo import demo_environment
    env = {**demo_environment("http://127.0.0.1:9", tmp_path), "TIEPDON_HTTP_PORT": "0",
           "TIEPDON_CLOCK": "2099-01-01T08:00:00+07:00", "INVOCATION_ID": "0" * 32}
    p = run("serve", env=env)
    assert p.returncode == 2 and "TIEPDON_CLOCK" in p.stderr, p.stderr


# -- issue 22: hostile input left over ------------------------------------------------------------
@pytest.mark.parametrize("text", [LONE, "Nam" + LONE, "N\ud800am", "\udfff1", "Nữ\ud83d"])
def test_parse_sex_never_raises_and_a_lone_surrogate_is_no_sex(text: str) -> None:
    """Documented as "else None": a word with a lone surrogate is not one of the words."""
    from verify.model import parse_sex

    assert parse_sex(text) is None


@pytest.mark.parametrize(("text", "kept"), [
    ("Nguy\udca5n  Văn\t", "Nguyn Văn"), (LONE, ""), ("\ud83d\ude00 A", "A"),
    ("Nguye\u0302\u0303n", "Nguyễn")])
def test_normalize_text_never_raises_and_drops_a_lone_surrogate(text: str, kept: str) -> None:
    from verify.model import normalize_text

    assert normalize_text(text) == kept
    kept.encode("utf-8")  # what comes out can always be stored and sent


def test_the_boundaries_still_refuse_a_lone_surrogate() -> None:
    """normalize_text no longer refuses: the entry points that must, check first."""
    from verify.credentials import manual_credential

    with pytest.raises(InputFormatError, match="Unicode"):
        manual_credential(card_code=None, id_number="001088004321", full_name="Nguy\ud800n",
                          date_of_birth=None)


@pytest.mark.parametrize("content_hash", ["sha256:" + "é" * 64, "sha256:" + "0" * 63 + "\u0660",
                                          "sha256:" + "Z" * 64, "sha256:" + "A" * 64,
                                          "sha256:" + "0" * 63 + LONE])
def test_a_signed_manifest_with_a_non_hex_content_hash_is_refused(content_hash: str) -> None:
    """Validly signed, but no SHA-256 hex digest: refused in parse_manifest, never a
    TypeError later in check_hash (issue 22)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    manifest = snapshot.Manifest(
        format=snapshot.FORMAT, snapshot_version=3,
        created=datetime(2026, 11, 20, tzinfo=UTC), expires=datetime(2026, 11, 27, tzinfo=UTC),
        record_count=10, content_hash=content_hash, records_size=4096, key_id="demo",
        index_salt="00" * 16)
    signed = snapshot.sign_manifest(manifest, key)  # JSON escapes: "\\u00e9", "\\udca5"
    with pytest.raises(snapshot.CacheIntegrityError, match="content hash"):
        snapshot.parse_manifest(signed, {"demo": key.public_key()})


def _sod_with(extra_attrs: bytes) -> tuple[bytes, Any]:
    """A SOD over the demo card's files whose signed attributes carry ``extra_attrs`` — and
    are validly signed: only a bound can refuse it."""
    from readers.doubles.vcard import build_sod, demo_card
    from tests.helpers.chip import NOW, pki

    card = demo_card(now=NOW, pki=pki())[0]
    return build_sod({n: card.files[n] for n in (1, 2, 13, 14)}, pki(),
                     extra_attrs=extra_attrs), card


def _attribute(value: bytes) -> bytes:
    return apdu.encode_tlv(0x30, bytes.fromhex("06032a0304") + apdu.encode_tlv(0x31, value))


def _nested(depth: int) -> bytes:
    inner = b"\x05\x00"
    for _ in range(depth):
        inner = apdu.encode_tlv(0x30, inner)
    return inner


@pytest.mark.parametrize(("depth", "refusal"), [(40, "nests deeper"),
                                               (20_000, "larger than a chip")])
def test_deeply_nested_signed_attributes_are_refused_before_asn1crypto_walks_them(
        depth: int, refusal: str) -> None:
    """Issue 22: nested signed attributes (an 86 KB SOD took asn1crypto over a second). The
    raw bytes are measured first: too large or too deep is a TlvError, whatever the
    signature says — and it is the bound that refuses: the same attribute nested a little
    is read and verifies."""
    from readers.emrtd.pa import passive_authentication
    from tests.helpers.chip import NOW, trust

    sod, card = _sod_with(_attribute(_nested(depth)))
    with pytest.raises(ReaderError, match=refusal):
        lds.parse_sod(sod)
    if len(sod) <= lds.MAX_SOD_BYTES:  # well formed: only the depth limit stands in the way
        lds.check_der_nesting(apdu.unwrap_tlv(sod, lds.TAG_SOD), limit=depth + 20)
    shallow, card = _sod_with(_attribute(_nested(5)))
    result = passive_authentication(lds.parse_sod(shallow), {1: card.files[1]}, trust(),
                                    now=NOW)
    assert result.status.value == "authentic"


def test_signed_attributes_padded_with_many_attributes_are_refused_unread() -> None:
    from readers.emrtd.pa import MAX_SIGNED_ATTRS_BYTES, passive_authentication
    from tests.helpers.chip import NOW, trust

    one = _attribute(apdu.encode_tlv(0x04, bytes(90)))
    many, card = _sod_with(one * (MAX_SIGNED_ATTRS_BYTES // len(one) + 1))
    result = passive_authentication(lds.parse_sod(many), {1: card.files[1]}, trust(), now=NOW)
    assert (result.status.value, result.reason) == ("failed", "sod_signed_attributes_oversized")
    few, card = _sod_with(one * 4)
    result = passive_authentication(lds.parse_sod(few), {1: card.files[1]}, trust(), now=NOW)
    assert result.status.value == "authentic"


def test_the_der_nesting_walker_takes_indefinite_lengths_and_refuses_overlaps() -> None:
    lds.check_der_nesting(bytes.fromhex("3080 3080 020101 0000 0000"))
    lds.check_der_nesting(bytes.fromhex("3080 020101 0000"), limit=1)
    for bad in ["30", "3005020101", "3080020101", "04800000", "3003300500", "3084ffffffff",
                "3080" * 30 + "0000" * 30]:
        with pytest.raises(ReaderError):
            lds.check_der_nesting(bytes.fromhex(bad))
