"""``tiepdon cache …`` as IT staff run it: real processes, real files."""

from __future__ import annotations

import functools
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers.cache import CSV
from tests.helpers.cli import assert_one_line_error, run
from tests.helpers.paths import ROOT
from tests.helpers.rawserver import raw_server


def setup_publisher(tmp_path: Path) -> tuple[dict[str, str], Path]:
    p = run("cache", "keygen", "--key-id", "pub-a", "--private", str(tmp_path / "sign.pem"),
            "--reading-key", str(tmp_path / "reading.key"))
    assert p.returncode == 0, p.stderr
    trusted = json.loads(p.stdout)["trusted_key"]
    assert (tmp_path / "sign.pem").stat().st_mode & 0o777 == 0o600
    (tmp_path / "export.csv").write_text(CSV, encoding="utf-8")
    env = {"TIEPDON_CACHE_TRUSTED_KEYS": trusted, "TIEPDON_DATA_DIR": str(tmp_path / "data"),
           "TIEPDON_CACHE_READING_KEY_FILE": str(tmp_path / "reading.key"),
           "TIEPDON_FACILITY_CODE": "01C54"}
    return env, tmp_path


def build(tmp_path: Path, out: str, version: int, *extra: str) -> None:
    p = run("cache", "build", "--csv", str(tmp_path / "export.csv"), "--out",
            str(tmp_path / out), "--signing-key", str(tmp_path / "sign.pem"), "--key-id",
            "pub-a", "--reading-key", str(tmp_path / "reading.key"), "--version", str(version),
            *extra)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["record_count"] == 3


def counting_mirror(folder: Path) -> tuple[http.server.ThreadingHTTPServer, Counter[str]]:
    """A static mirror of ``folder`` on loopback, counting the requests for each path."""
    hits: Counter[str] = Counter()

    class Mirror(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            hits[self.path] += 1
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Mirror, directory=str(folder)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, hits


def fetch_from(folder: Path, env: dict[str, str]
               ) -> tuple[subprocess.CompletedProcess[str], Counter[str]]:
    """``cache fetch`` from a mirror serving ``folder``; the mirror's requests counted."""
    httpd, hits = counting_mirror(folder)
    try:
        return run("cache", "fetch", f"http://127.0.0.1:{httpd.server_address[1]}/",
                   env=env), hits
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_publish_install_and_use(tmp_path: Path) -> None:
    env, _ = setup_publisher(tmp_path)
    build(tmp_path, "snap2", 2)
    verify = run("cache", "verify", str(tmp_path / "snap2"), env=env)
    assert verify.returncode == 0 and json.loads(verify.stdout)["snapshot_version"] == 2
    install = run("cache", "install", str(tmp_path / "snap2"), env=env)
    assert install.returncode == 0, install.stderr
    info = json.loads(run("cache", "info", env=env).stdout)
    assert info["snapshot_version"] == 2 and info["usable"] is True
    found = run("cache", "lookup", "--card", "GD4010111077012", env=env)
    assert found.returncode == 0 and json.loads(found.stdout)["full_name"] == "Nguyễn Tiến Đạt"
    missing = run("cache", "lookup", "--id", "001000000000", env=env)
    assert missing.returncode == 1
    check = run("check", "--offline", "--card", "GD4010111077012", "--name", "Nguyễn Tiến Đạt",
                "--dob", "29/03/1988", env=env)
    e = json.loads(check.stdout)
    assert e["source"] == "cache" and e["messages"][0]["code"] == "offline_snapshot"
    # An older snapshot is refused, in one line, and the installed one stays.
    build(tmp_path, "snap1", 1)
    rollback = run("cache", "install", str(tmp_path / "snap1"), env=env)
    assert rollback.returncode == 1
    assert "rollback refused" in rollback.stderr and len(rollback.stderr.splitlines()) == 1
    assert json.loads(run("cache", "info", env=env).stdout)["snapshot_version"] == 2


def test_a_facilitys_subset_serves_that_facilitys_desks_only(tmp_path: Path) -> None:
    """A hospital group publishes one subset per facility, all signed with the group's key
    (README: ``/snapshots/01C54/``). A desk pointed at the wrong folder, or a mirror serving
    another facility's newer subset, installed it (a higher version wins): its own patients
    then read "not in the snapshot", another facility's patients sat on its disk. The subset's
    facility is signed; desks of other facilities (or with no code set) refuse it at verify,
    install and fetch (before records.db is asked for), and an installed subset stops being
    used when the desk's code no longer matches."""
    import shutil

    env, _ = setup_publisher(tmp_path)  # this desk: 01C54
    build(tmp_path, "ours", 2, "--facility", "01c54")
    build(tmp_path, "theirs", 3, "--facility", "79012")
    build(tmp_path, "everyone", 1)
    assert "facility" not in json.loads((tmp_path / "everyone" / "manifest.json").read_text())
    verify = run("cache", "verify", str(tmp_path / "theirs"), env=env)
    assert verify.returncode == 1 and "for facility 79012" in verify.stderr, verify.stderr
    assert run("cache", "install", str(tmp_path / "everyone"), env=env).returncode == 0
    refused = run("cache", "install", str(tmp_path / "theirs"), env=env)
    assert refused.returncode == 1 and "for facility 79012" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    assert json.loads(run("cache", "info", env=env).stdout)["snapshot_version"] == 1
    ours = run("cache", "install", str(tmp_path / "ours"), env=env)
    assert ours.returncode == 0, ours.stderr
    info = json.loads(run("cache", "info", env=env).stdout)
    assert info["facility"] == "01C54" and info["usable"] is True
    # A desk with no facility code takes no facility's subset.
    no_code = {**env, "TIEPDON_FACILITY_CODE": "", "TIEPDON_DATA_DIR": str(tmp_path / "d2")}
    p = run("cache", "install", str(tmp_path / "ours"), env=no_code)
    assert p.returncode == 1 and "not set (facility.code)" in p.stderr
    # The mirror serves another facility's newer subset: refused on its manifest.
    mirror = tmp_path / "mirror"
    shutil.copytree(tmp_path / "theirs", mirror)
    fetched, hits = fetch_from(mirror, env)
    assert fetched.returncode == 1 and "for facility 79012" in fetched.stderr
    assert hits["/manifest.json"] == 1 and hits["/records.db"] == 0
    assert json.loads(run("cache", "info", env=env).stdout)["snapshot_version"] == 2
    # The desk is re-coded (moved to the other facility): its installed subset is not used.
    moved = {**env, "TIEPDON_FACILITY_CODE": "79012"}
    info = json.loads(run("cache", "info", env=moved).stdout)
    assert info["usable"] is False and "for facility 01C54" in info["reason"]
    lookup = run("cache", "lookup", "--card", "GD4010111077012", env=moved)
    assert lookup.returncode != 0 and "for facility 01C54" in lookup.stderr
    assert "Nguyễn" not in lookup.stdout
    check = run("check", "--offline", "--card", "GD4010111077012", "--name",
                "Nguyễn Tiến Đạt", "--dob", "29/03/1988", env=moved)
    assert json.loads(check.stdout)["source"] != "cache"
    check = run("check", "--offline", "--card", "GD4010111077012", "--name",
                "Nguyễn Tiến Đạt", "--dob", "29/03/1988", env=env)
    assert json.loads(check.stdout)["source"] == "cache"


def test_tampered_snapshot_is_refused(tmp_path: Path) -> None:
    env, _ = setup_publisher(tmp_path)
    build(tmp_path, "snap", 1)
    records = tmp_path / "snap" / "records.db"
    data = bytearray(records.read_bytes())
    data[3000] ^= 1
    records.write_bytes(bytes(data))
    p = run("cache", "verify", str(tmp_path / "snap"), env=env)
    assert p.returncode == 1 and "content hash" in p.stderr


def test_cache_commands_need_trusted_keys(tmp_path: Path) -> None:
    assert_one_line_error(run("cache", "info"), "cache.trusted_keys")
    assert_one_line_error(run("cache", "build", "--csv", "/nonexistent.csv", "--out",
                              str(tmp_path / "o"), "--signing-key", "/nonexistent.pem",
                              "--key-id", "a", "--reading-key", "/nonexistent", "--version",
                              "1"), "tiepdon:")


def test_fetch_skips_records_it_has_and_leaves_its_status_for_the_daemon(tmp_path: Path
                                                                        ) -> None:
    """``cache fetch`` twice: records.db is downloaded once; a rolled-back mirror is refused
    before records.db is asked for; each outcome is left in the data folder."""
    import shutil

    from terminal.offline import FETCH_STATUS, read_fetch_status

    env, _ = setup_publisher(tmp_path)
    build(tmp_path, "snap2", 2)
    build(tmp_path, "snap1", 1)
    mirror = tmp_path / "mirror"
    shutil.copytree(tmp_path / "snap2", mirror)
    httpd, hits = counting_mirror(mirror)
    env = {**env, "TIEPDON_CACHE_URL": f"http://127.0.0.1:{httpd.server_address[1]}/"}
    status_file = tmp_path / "data" / FETCH_STATUS
    try:
        first = run("cache", "fetch", env=env)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["downloaded"] is True
        assert hits["/records.db"] == 1
        again = run("cache", "fetch", env=env)
        assert again.returncode == 0, again.stderr
        out = json.loads(again.stdout)
        assert out["downloaded"] is False and out["snapshot_version"] == 2
        assert hits["/records.db"] == 1 and hits["/manifest.json"] == 2
        status = read_fetch_status(status_file)
        assert status is not None and status["ok"] is True and status["version"] == 2
        assert status["downloaded"] is False
        # The mirror rolls back: refused on the manifest alone, the status says so.
        for name in ("manifest.json", "records.db"):
            shutil.copy(tmp_path / "snap1" / name, mirror / name)
        back = run("cache", "fetch", env=env)
        assert back.returncode == 1 and "older than the installed" in back.stderr
        assert hits["/records.db"] == 1
        status = read_fetch_status(status_file)
        assert status is not None and status["ok"] is False
        assert "older than the installed" in status["reason"]
        assert json.loads(run("cache", "info", env=env).stdout)["snapshot_version"] == 2
        # The mirror gone: a failed download is a failed fetch too.
        httpd.shutdown()
        httpd.server_close()
        gone = run("cache", "fetch", env=env)
        assert gone.returncode == 2
        status = read_fetch_status(status_file)
        assert status is not None and status["ok"] is False
        assert status["reason"].startswith("download failed")
    finally:
        httpd.shutdown()
        httpd.server_close()


def _fetch_with_short_deadlines(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`tiepdon cache fetch` with the download's deadlines shortened to a few seconds."""
    code = ("import sys, verify.adapters.cache as c; c.MANIFEST_DEADLINE_SECONDS = 1; "
            "c.FETCH_DEADLINE_SECONDS = 2; from terminal.cli import main; "
            "sys.exit(main(['cache', 'fetch']))")
    base = {k: v for k, v in os.environ.items() if not k.startswith("TIEPDON_")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=90, env={**base, **env}, cwd=ROOT, check=False)


@pytest.mark.parametrize("answer", ["drip_headers", "garbage_status"])
def test_a_mirror_that_never_finishes_or_speaks_nonsense_is_a_failed_fetch(
        tmp_path: Path, answer: str) -> None:
    """A header line dripped a byte at a time never lets a read return (the pace checks run
    between reads): the fetch hung forever. A garbage status line was 'internal error' with
    the status file still saying ok. Both: a failed fetch, said, within the deadline."""
    from terminal.offline import FETCH_STATUS, read_fetch_status

    def drip(conn: socket.socket) -> None:
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(600):
            conn.sendall(b"a")
            time.sleep(0.2)

    def garbage(conn: socket.socket) -> None:
        conn.recv(4096)
        conn.sendall(b"HELLO THERE\r\n\r\n")

    env, _ = setup_publisher(tmp_path)
    url, close = raw_server(drip if answer == "drip_headers" else garbage)
    status_file = tmp_path / "data" / FETCH_STATUS
    status_file.parent.mkdir(parents=True, exist_ok=True)
    status_file.write_text(json.dumps({"ok": True, "at": "2026-01-01T00:00:00+00:00"}))
    try:
        p = _fetch_with_short_deadlines({**env, "TIEPDON_CACHE_URL": url + "/"})
    finally:
        close()
    assert p.returncode == 2, p.stderr
    assert "snapshot download failed" in p.stderr and "internal error" not in p.stderr
    status = read_fetch_status(status_file)
    assert status is not None and status["ok"] is False


def _flip_a_byte(path: Path, at: int = 3000) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 1
    path.write_bytes(bytes(data))


def test_a_damaged_install_is_said_by_info_and_mended_by_the_next_fetch(tmp_path: Path) -> None:
    """A byte of the installed records.db flipped (a disk error, a hand): the daemon refuses
    it, but ``cache info`` said usable (it checked the manifest only) and every daily fetch
    said "already installed" with the status ok — the desk stayed without offline data while
    its fetch metric said fine. Now info judges as the daemon does, and the fetch downloads
    the snapshot again."""
    import shutil

    from terminal.offline import FETCH_STATUS, read_fetch_status

    env, _ = setup_publisher(tmp_path)
    build(tmp_path, "snap2", 2)
    assert run("cache", "install", str(tmp_path / "snap2"), env=env).returncode == 0
    _flip_a_byte(tmp_path / "data" / "cache" / "current" / "records.db")
    info = json.loads(run("cache", "info", env=env).stdout)
    assert info["usable"] is False and "content hash" in info["reason"], info
    mirror = tmp_path / "mirror"
    shutil.copytree(tmp_path / "snap2", mirror)
    fetched, hits = fetch_from(mirror, env)
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout)["downloaded"] is True and hits["/records.db"] == 1
    status = read_fetch_status(tmp_path / "data" / FETCH_STATUS)
    assert status is not None and status["ok"] is True and status["downloaded"] is True
    info = json.loads(run("cache", "info", env=env).stdout)
    assert info["usable"] is True and info["snapshot_version"] == 2
    # The data folder the fetch made, and the installed files: the owner's only.
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    current = tmp_path / "data" / "cache" / "current"
    for name in ("records.db", "manifest.json"):
        assert (current / name).stat().st_mode & 0o777 == 0o600, name


def test_a_desk_recoded_takes_its_own_facilitys_subset_whatever_its_version(
        tmp_path: Path) -> None:
    """Installed while the desk was 79012, another facility's v5 kept 01C54's own v5 out as
    "a version reused" and its v3 out as "a rollback": the desk had no usable snapshot until
    its facility's numbers passed the other's. What another facility's snapshot says is not
    this desk's high-water mark."""
    env, _ = setup_publisher(tmp_path)
    build(tmp_path, "theirs", 5, "--facility", "79012")
    build(tmp_path, "ours5", 5, "--facility", "01C54")
    build(tmp_path, "ours3", 3, "--facility", "01C54")
    before = {**env, "TIEPDON_FACILITY_CODE": "79012"}
    assert run("cache", "install", str(tmp_path / "theirs"), env=before).returncode == 0
    for snap in ("ours3", "ours5"):
        verify = run("cache", "verify", str(tmp_path / snap), env=env)
        assert verify.returncode == 0, verify.stderr
    p = run("cache", "install", str(tmp_path / "ours3"), env=env)
    assert p.returncode == 0, p.stderr
    info = json.loads(run("cache", "info", env=env).stdout)
    assert info["facility"] == "01C54" and info["snapshot_version"] == 3 and info["usable"]
    # …and from then on its own versions count: back to nothing older than 3.
    build(tmp_path, "ours2", 2, "--facility", "01C54")
    back = run("cache", "install", str(tmp_path / "ours2"), env=env)
    assert back.returncode == 1 and "rollback refused" in back.stderr


def test_a_mirror_cannot_fill_the_fetch_status_with_an_unsigned_key_id(tmp_path: Path) -> None:
    """An unsigned manifest whose key id is 6000 characters: the refusal quoted it into the
    status file, which grew past what the daemon reads, and tiepdon_snapshot_fetch_ok vanished
    instead of going to 0."""
    from terminal.offline import FETCH_STATUS, read_fetch_status

    env, _ = setup_publisher(tmp_path)
    build(tmp_path, "snap", 1)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    doc = json.loads((tmp_path / "snap" / "manifest.json").read_text())
    doc["key_id"] = "k" * 6000
    (mirror / "manifest.json").write_text(json.dumps(doc))
    p, _hits = fetch_from(mirror, env)
    assert p.returncode == 1 and len(p.stderr) < 300 and "key id" in p.stderr, p.stderr
    status = read_fetch_status(tmp_path / "data" / FETCH_STATUS)
    assert status is not None and status["ok"] is False and "key id" in status["reason"]
