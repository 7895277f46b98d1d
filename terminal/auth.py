"""Staff login: who may use the terminal when it is reachable from elsewhere (a LAN address,
or ``auth.required`` behind a reverse proxy).

Per-user scrypt password hashes in a TOML users file (re-read when it changes, so ``tiepdon
user`` commands take effect at once); server-side sessions behind a random cookie, revoked by
logout, by a password change or reset, by disabling the user, and by a restart; a CSRF token
derived from the session for every state-changing request; bearer tokens (stored as SHA-256)
for the HIS, limited to the routes an HIS needs. Failed logins are counted per account and per
address *before* the slow hash runs, so concurrent guesses cannot outrun the lockout. The
logged-in user's officer identity is the one sent to the registry. The kiosk is public and
read-only: its stream carries no identifiers.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import tomllib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)
# OWASP Password Storage Cheat Sheet (2023-): scrypt N=2^17, r=8, p=1 — 128 MiB and ~0.3 s
# here. Hashes keep their own parameters, so older ones (N=2^14) still verify.
SCRYPT = {"n": 2**17, "r": 8, "p": 1}
SCRYPT_MAXMEM = 256 * 1024 * 1024
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
PUBLIC_PATHS = frozenset({"/login", "/kiosk", "/api/v1/kiosk/events", "/api/v1/health"})
PUBLIC_PREFIXES = ("/static/",)
# What an HIS bearer token may do: verify, read the last answer and its check-in record, and
# listen to the feed — never chip reads, photos, metrics or the API docs.
HIS_ROUTES = frozenset({("POST", "/api/v1/verify"), ("GET", "/api/v1/last"),
                        ("GET", "/api/v1/last/checkin"), ("GET", "/api/v1/last/checkin.xml"),
                        ("GET", "/api/v1/last/history"), ("GET", "/api/v1/events"),
                        ("GET", "/api/v1/rechecks"), ("GET", "/api/v1/health")})
COOKIE = "tiepdon_session"
SECURE_COOKIE = "__Host-tiepdon_session"  # behind TLS: Secure, Path=/, no Domain
MAX_SESSIONS = 256


def is_loopback(host: str) -> bool:
    return host in LOOPBACK


def is_public(path: str) -> bool:
    """Paths matched exactly (``/kioskx`` is not ``/kiosk``), static files by prefix."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT, maxmem=SCRYPT_MAXMEM,
                            dklen=32)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${digest.hex()}"


# Checked when the user does not exist, so that an unknown name costs what a known one does.
DUMMY_HASH = ("scrypt$131072$8$1$" + "00" * 16 + "$" + "00" * 32)


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt" or not (2**10 <= int(n) <= 2**20 and 1 <= int(r) <= 32
                                    and 1 <= int(p) <= 4):
            return False
        got = hashlib.scrypt(password.encode("utf-8", "surrogatepass"),
                             salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=SCRYPT_MAXMEM, dklen=32)
    except (ValueError, TypeError, MemoryError):
        return False
    return hmac.compare_digest(got.hex(), digest)


@dataclass(frozen=True, slots=True)
class User:
    username: str
    name: str
    officer_id: str
    password: str  # the scrypt hash
    disabled: bool = False


def load_users(path: Path) -> dict[str, User]:
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    users = {}
    for row in doc.get("user", []):
        user = User(str(row["username"]), str(row["name"]), str(row["officer_id"]),
                    str(row["password"]), bool(row.get("disabled", False)))
        users[user.username] = user
    return users


def user_entry(user: User) -> str:
    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    disabled = "disabled = true\n" if user.disabled else ""
    return (f"\n[[user]]\nusername = {q(user.username)}\nname = {q(user.name)}\n"
            f"officer_id = {q(user.officer_id)}\npassword = {q(user.password)}\n{disabled}")


def users_text(users: dict[str, User]) -> str:
    return "# tiepdon staff users (tiepdon user add|passwd|disable|enable)\n" + "".join(
        user_entry(u) for u in users.values())


class UserStore:
    """The users file, re-read when it changes (checked at most once a second)."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._stamp: tuple[int, int] | None = None
        self._checked = -1.0
        self._users: dict[str, User] = {}
        self._refresh(force=True)

    def _refresh(self, *, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._checked < 1.0:
            return
        self._checked = now
        try:
            st = self.path.stat()
        except OSError:
            self._users, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._users, self._stamp = load_users(self.path), stamp

    def get(self, username: str) -> User | None:
        self._refresh()
        user = self._users.get(username)
        return user if user is not None and not user.disabled else None

    def __len__(self) -> int:
        return len(self._users)


@dataclass
class _Session:
    username: str
    password: str  # the hash at login: a changed password ends the session
    expires: float


class Sessions:
    """Server-side sessions: the cookie is a random handle, nothing in it can be forged."""

    def __init__(self, users: UserStore, hours: float, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.users = users
        self.seconds = hours * 3600
        self._clock = clock
        self._live: OrderedDict[str, _Session] = OrderedDict()

    def open(self, user: User) -> str:
        token = secrets.token_urlsafe(32)
        self._live[token] = _Session(user.username, user.password, self._clock() + self.seconds)
        while len(self._live) > MAX_SESSIONS:
            self._live.popitem(last=False)
        return token

    def user(self, token: str) -> User | None:
        s = self._live.get(token)
        if s is None:
            return None
        user = self.users.get(s.username)
        if (user is None or self._clock() >= s.expires
                or not hmac.compare_digest(user.password, s.password)):
            self._live.pop(token, None)  # expired, disabled, or the password changed
            return None
        return user

    def close(self, token: str) -> None:
        self._live.pop(token, None)


@dataclass
class LoginLimiter:
    """Failed logins per account and per address within a window. An attempt is counted when
    it starts (before the slow hash), and forgiven only when it succeeds: so 200 concurrent
    guesses find the door shut after the fifth, whatever they race."""

    max_failures: int = 5
    window: float = 300.0
    clock: Callable[[], float] = time.monotonic
    # A cap of its own for a kind of key (the part before ":"), e.g. {"user": 20}.
    caps: dict[str, int] = field(default_factory=dict)
    _seen: dict[str, list[float]] = field(default_factory=dict)

    def _cap(self, key: str) -> int:
        return self.caps.get(key.partition(":")[0], self.max_failures)

    def _recent(self, key: str) -> list[float]:
        now = self.clock()
        kept = [t for t in self._seen.get(key, []) if now - t < self.window]
        if kept:
            self._seen[key] = kept
        else:
            self._seen.pop(key, None)
        return kept

    def begin(self, *keys: str) -> float | None:
        """Reserve an attempt (synchronously: no await between check and count); None when
        any key is locked out."""
        if any(len(self._recent(k)) >= self._cap(k) for k in keys):
            return None
        stamp = self.clock()
        for k in keys:
            self._seen.setdefault(k, []).append(stamp)
        if len(self._seen) > 10_000:  # bounded memory under a spray of names and addresses
            for k in list(self._seen)[:5_000]:
                del self._seen[k]
        return stamp

    def succeeded(self, stamp: float, *keys: str) -> None:
        for k in keys:
            self._seen.pop(k, None)

    def forgive(self, stamp: float, *keys: str) -> None:
        """The attempt reserved at ``stamp`` was never made (the server was busy): it does
        not count toward a lockout."""
        for k in keys:
            seen = self._seen.get(k)
            if seen is not None and stamp in seen:
                seen.remove(stamp)


def csrf_token(key: bytes, session: str) -> str:
    return hmac.new(key, b"csrf|" + session.encode(), hashlib.sha256).hexdigest()[:32]


MIN_TOKEN_LENGTH = 24
# Tokens an operator might copy from an example or type by hand: refused at start by their
# SHA-256 (settings), since a stored hash cannot show its token's length.
WELL_KNOWN_TOKENS = ("", "changeme", "change-me", "CHANGE_ME", "token", "secret", "password",
                     "his", "hn212", "tiepdon", "test", "admin", "123456", "12345678",
                     "1234567890", "000000000000", "his-token")


def is_strong_token(token: str) -> bool:
    """At least 24 characters, of at least two kinds (lower case, upper case, digits, other),
    at least 10 different: ``secrets.token_urlsafe(32)`` always is; a word, a date or a run
    of one key never is."""
    kinds = {"lower" if c.islower() else "upper" if c.isupper() else
             "digit" if c.isdigit() else "other" for c in token}
    return len(token) >= MIN_TOKEN_LENGTH and len(kinds) >= 2 and len(set(token)) >= 10


def check_bearer(tokens: list[str], presented: str) -> str | None:
    """``name:sha256hex`` entries; returns the token's name when ``presented`` matches and is
    strong enough to be a secret (``is_strong_token``)."""
    digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).hexdigest()
    for entry in tokens:
        name, _, expected = entry.partition(":")
        if expected and hmac.compare_digest(expected, digest):
            if is_strong_token(presented):
                return name
            log.warning("auth.api_tokens entry %r matches a weak token (under %d characters or "
                        "of one kind): refused; replace it", name, MIN_TOKEN_LENGTH)
            return None
    return None
