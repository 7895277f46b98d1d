"""A daemon bound to a LAN address (login required) on loopback, its staff users, a signed-in
client and the HIS's bearer token: what tests of sessions and streams share.

``127.0.0.2`` is loopback on Linux, but the daemon treats it as a LAN address, so login is
required while the traffic stays on this machine.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx

from terminal.app import create_app
from terminal.server import BackgroundServer, start_background
from tests.helpers.cli import run
from tests.helpers.daemon import daemon_services, terminal_settings
from verify.simulator.registry_sim import DEMO_OFFICER_ID, DEMO_OFFICER_NAME

LAN = "127.0.0.2"
TOKEN = "his-secret-token-4b7e1d9a2c"  # 24+ characters of more than one kind (issue 23)
HIS = {"Authorization": f"Bearer {TOKEN}"}
PASSWORD = "mat-khau-lan"


def add_user(users: Path, name: str = "lan", password: str = PASSWORD) -> None:
    """``tiepdon user add`` as IT staff run it (a real process)."""
    p = run("user", "add", name, "--name", DEMO_OFFICER_NAME, "--officer-id", DEMO_OFFICER_ID,
            "--users-file", str(users), stdin=password + "\n")
    assert p.returncode == 0, p.stderr


def lan_server(registry_url: str, data_dir: Path, users: Path,
               **overrides: object) -> BackgroundServer:
    """The daemon on ``LAN`` with ``users`` and the HIS token; ``section__key`` overrides."""
    settings = terminal_settings(
        registry_url, data_dir, http__host=LAN, auth__users_file=str(users),
        auth__api_tokens=[f"his:{hashlib.sha256(TOKEN.encode()).hexdigest()}"], **overrides)
    return start_background(create_app(settings, daemon_services(settings)), host=LAN)


def login(server: BackgroundServer, user: str = "lan",
          password: str = PASSWORD) -> tuple[httpx.Client, str]:
    """A client signed in as ``user``, and the CSRF token its page carries."""
    client = httpx.Client(base_url=server.url, timeout=20)
    r = client.post("/login", data={"username": user, "password": password})
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    found = re.search(r'"csrf": "([0-9a-f]{32})"', client.get("/").text)
    assert found, "the staff page carries its CSRF token"
    return client, found.group(1)
