"""Staff login for a daemon bound to a LAN address (loopback needs none: the HIS and the page
run on the reception PC itself).

Per-user scrypt password hashes in a TOML users file; a signed session cookie (HttpOnly,
SameSite=Strict); a CSRF token derived from the session for every state-changing request;
bearer tokens (stored as SHA-256) for the HIS. The logged-in user's officer identity is the
one sent to the registry. The kiosk is public and read-only: its stream carries no identifiers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

SCRYPT = {"n": 2**14, "r": 8, "p": 1}
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
PUBLIC_PATHS = ("/login", "/static/", "/kiosk", "/api/v1/kiosk/events", "/api/v1/health")
COOKIE = "tiepdon_session"


def is_loopback(host: str) -> bool:
    return host in LOOPBACK


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT, dklen=32)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                             p=int(p), dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


@dataclass(frozen=True, slots=True)
class User:
    username: str
    name: str
    officer_id: str
    password: str  # the scrypt hash


def load_users(path: Path) -> dict[str, User]:
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    users = {}
    for row in doc.get("user", []):
        user = User(str(row["username"]), str(row["name"]), str(row["officer_id"]),
                    str(row["password"]))
        users[user.username] = user
    return users


def user_entry(user: User) -> str:
    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return (f"\n[[user]]\nusername = {q(user.username)}\nname = {q(user.name)}\n"
            f"officer_id = {q(user.officer_id)}\npassword = {q(user.password)}\n")


def make_session(key: bytes, username: str, hours: float, now: float | None = None) -> str:
    expires = int((now or time.time()) + hours * 3600)
    body = f"{username}|{expires}".encode()
    mac = hmac.new(key, body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(body + b"|" + mac).decode()


def read_session(key: bytes, token: str, now: float | None = None) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(token.encode())
        body, mac = raw[:-33], raw[-32:]
        if raw[-33:-32] != b"|" or not hmac.compare_digest(
                hmac.new(key, body, hashlib.sha256).digest(), mac):
            return None
        username, expires = body.decode().rsplit("|", 1)
    except (ValueError, UnicodeDecodeError):
        return None
    return username if int(expires) > (now or time.time()) else None


def csrf_token(key: bytes, session: str) -> str:
    return hmac.new(key, b"csrf|" + session.encode(), hashlib.sha256).hexdigest()[:32]


def check_bearer(tokens: list[str], presented: str) -> str | None:
    """``name:sha256hex`` entries; returns the token's name when ``presented`` matches."""
    digest = hashlib.sha256(presented.encode()).hexdigest()
    for entry in tokens:
        name, _, expected = entry.partition(":")
        if expected and hmac.compare_digest(expected, digest):
            return name
    return None
