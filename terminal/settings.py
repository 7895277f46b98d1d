"""Settings: one TOML file plus ``TIEPDON_<SECTION>_<KEY>`` environment overrides.

``config/tiepdon.example.toml`` documents every key. Invalid settings raise
:class:`SettingsError` with one line naming the key (and its environment variable), which the
CLI prints before exiting 2. No module-level settings object: callers load and pass them.

Every settings rule lives here: field validators refuse a bad value at load, whatever the
command; the rules that depend on what is about to run (``serve`` needs the registry, a LAN
address needs login, a webhook needs its secret) are methods of :class:`Settings` that the
command or the app factory calls at that moment. The key files the settings name (reading key,
terminal key) and ``TIEPDON_CLOCK`` are checked here too.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from terminal.auth import UserStore

ENV_PREFIX = "TIEPDON_"
CONFIG_ENV = "TIEPDON_CONFIG"
CLOCK_ENV = "TIEPDON_CLOCK"
# Values copied from the example file that must never reach production (template style).
PLACEHOLDERS = frozenset({"changeme", "change-me", "CHANGE_ME", "00000", "000000000000"})


class SettingsError(Exception):
    """Start-up refused: the message is one line that names the key."""


def http_url(v: str) -> str:
    v = v.strip()
    if v and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", v):
        raise ValueError("must be an http:// or https:// URL")
    return v


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FacilitySettings(_Section):
    code: str = Field(default="", description="mã CSKCB, 5 characters")
    name: str = ""

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        v = v.strip().upper()
        if v and not re.fullmatch(r"[0-9A-Z]{5}", v):
            raise ValueError("must be the 5-character facility code (mã CSKCB), e.g. 01C54")
        return v


class RegistrySettings(_Section):
    url: str = ""
    username: str = ""
    password: SecretStr = SecretStr("")
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    verify_tls: bool = True
    # Ask the gateway for the patient's visit history (Lskcb2025) after each online check:
    # dates, facilities and visit types on the staff page, a warning for a visit today.
    visit_history: bool = True
    # Seconds between the daemon's probes of the gateway (tiepdon_registry_up, re-checks of
    # offline answers, a new snapshot noticed).
    probe_seconds: float = Field(default=60, ge=1, le=3600)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return http_url(v).rstrip("/")


class OfficerSettings(_Section):
    name: str = ""
    id: str = ""

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        v = v.strip()
        if v and not re.fullmatch(r"[0-9]{12}", v):
            raise ValueError("must be the officer's 12-digit CCCD number")
        return v


class DataSettings(_Section):
    dir: Path = Path("/var/lib/tiepdon")
    tables_dir: Path | None = None  # None: the tables shipped in the package (verify/data)


class ChipSettings(_Section):
    reader: str = ""
    csca_dir: str = ""
    extended_length: Literal["auto", "on", "off"] = "auto"
    retries: int = Field(default=2, ge=0, le=5)
    card_return_seconds: float = Field(default=10.0, ge=0, le=120)


class CacheSettings(_Section):
    dir: str = ""
    url: str = ""
    trusted_keys: list[str] = Field(default_factory=list)
    reading_key_file: str = ""
    max_age_days: float = Field(default=30, gt=0, le=3650)
    budget_seconds: float = Field(default=3.0, gt=0, le=60)
    journal_hours: float = Field(default=24, ge=0, le=24 * 31)
    breaker_failures: int = Field(default=3, ge=1, le=100)
    breaker_cooldown_seconds: float = Field(default=30, gt=0, le=3600)


class CameraSettings(_Section):
    source: str = ""
    fps: float = Field(default=15, gt=0, le=60)
    repeat_seconds: float = Field(default=30, gt=0, le=3600)
    # A printed card resting in view with no QR is read by OCR, once per presentation
    # (README "Printed cards (OCR)"); off: the camera reads QR codes only.
    read_cards: bool = True


class ScannerSettings(_Section):
    port: str = ""
    baud: int = Field(default=9600, ge=1200, le=921600)


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)  # 0: any free port (tests)
    # Names a browser may use for this terminal (the Host header); empty: the loopback names,
    # plus http.host when it is a specific address. Anything else is refused (DNS rebinding).
    allowed_hosts: list[str] = Field(default_factory=list)
    # Reverse proxies whose X-Forwarded-For / -Proto are believed; empty: none are.
    trusted_proxies: list[str] = Field(default_factory=list)
    behind_tls: bool = False  # a TLS proxy fronts the daemon: Secure, __Host- cookies
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    max_connections: int = Field(default=256, ge=8, le=4096)
    max_connections_per_client: int = Field(default=48, ge=4, le=4096)
    max_streams: int = Field(default=128, ge=2, le=4096)
    max_streams_per_client: int = Field(default=16, ge=2, le=4096)
    # The public kiosk's own pool (one screen, no login): never the HIS's or staff's places.
    max_kiosk_streams: int = Field(default=4, ge=1, le=256)
    max_kiosk_streams_per_client: int = Field(default=2, ge=1, le=256)
    header_timeout_seconds: float = Field(default=10, gt=0, le=120)


class PrivacySettings(_Section):
    last_result_minutes: float = Field(default=15, gt=0, le=24 * 60)
    recent_hours: float = Field(default=8, ge=0, le=24)


class AuditSettings(_Section):
    dir: str = ""
    retention_days: float = Field(default=365, gt=0, le=3650)
    # This desk's name in every audit record and journal line: unique in the facility (the
    # central log server tells desks apart by it); ``serve`` refuses an empty one.
    desk: str = ""
    # The facility-wide subject key (or the systemd credential ``audit.subject_key``): the same
    # patient gets the same fingerprint at every desk that shares it. Empty: this terminal's
    # own key (fingerprints match on this desk only).
    subject_key_file: str = ""
    # Minutes between the daemon's own checks of the audit chain (tiepdon_audit_chain_ok).
    check_minutes: float = Field(default=10, gt=0, le=24 * 60)

    @field_validator("desk")
    @classmethod
    def _desk(cls, v: str) -> str:
        v = v.strip()
        if v and not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z._-]{0,62}", v):
            raise ValueError("must be a short name of letters, digits, '.', '_' or '-' "
                             "(e.g. 01C54-quay-3)")
        return v


class MetricsSettings(_Section):
    # A second listener for a central Prometheus, "HOST:PORT" (e.g. "10.20.1.31:9765"):
    # only GET /metrics and GET /api/v1/health, only with the bearer token. Empty: off.
    listen: str = ""
    # The token's file (or the systemd credential ``metrics.token``), at least 32 characters.
    token_file: str = ""

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        v = v.strip()
        if v:
            parse_listen(v)
        return v

    def address(self) -> tuple[str, int] | None:
        """``(host, port)`` of the metrics listener; None when it is off."""
        return parse_listen(self.listen) if self.listen else None


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9765`` for IPv6) → ``(host, port)``; ValueError when not."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or int(port) > 65535 or any(
            c.isspace() or c in "/[]" for c in host):
        raise ValueError('must be "HOST:PORT", e.g. "10.20.1.31:9765"')
    return host, int(port)


class AuthSettings(_Section):
    # Staff login: None (auto) means required when http.host is not loopback; true also on
    # loopback (a reverse proxy on this PC makes it reachable from elsewhere). false with a
    # LAN address is refused at start.
    required: bool | None = None
    users_file: str = ""
    api_tokens: list[str] = Field(default_factory=list)
    session_hours: float = Field(default=12, gt=0, le=24 * 7)

    @field_validator("api_tokens")
    @classmethod
    def _api_tokens(cls, v: list[str]) -> list[str]:
        """``name:sha256-hex`` each, no name twice, no well-known word's hash. A stored hash
        cannot show its token's length: a short or one-kind token is refused when it is
        presented (``terminal.auth.is_strong_token``)."""
        import hashlib

        from terminal.auth import WELL_KNOWN_TOKENS

        known = {hashlib.sha256(t.encode()).hexdigest() for t in WELL_KNOWN_TOKENS}
        names: set[str] = set()
        for entry in v:
            name, _, digest = entry.strip().partition(":")
            if not (re.fullmatch(r"[A-Za-z0-9._-]{1,64}", name)
                    and re.fullmatch(r"[0-9a-f]{64}", digest.lower())):
                raise ValueError("each entry must be name:sha256-hex of the token (the token "
                                 "itself is never stored)")
            if digest.lower() in known:
                raise ValueError(f"the token of {name!r} is a well-known word; make one with "
                                 "secrets.token_urlsafe(32)")
            if name in names:
                raise ValueError(f"the name {name!r} is there twice")
            names.add(name)
        return [e.strip() for e in v]


class HisSettings(_Section):
    # The HN212-compatible Socket.IO feed's port on http.host (0: off). The vendor's service
    # listens on 8000, which is what HIS code expects.
    hn212_port: int = Field(default=0, ge=0, le=65535)
    # Web pages (origins, "http://his.example:8080") allowed to open the feed from a browser;
    # the same origin always is, and clients that are not browsers send no origin.
    hn212_origins: list[str] = Field(default_factory=list)
    # true: every value inside the feed's "data" is a flat string, as the vendor's own service
    # sends (for HIS code that reads each member as one); the added "eligibility" object then
    # travels beside "data" instead of inside it.
    hn212_strict: bool = False
    # The portrait (HN212 img_data / dg2, the webhook's id_img) goes to the HIS: false keeps it
    # on the desk.
    send_photo: bool = True
    # The webhook: every decided verification POSTed here as JSON from a durable outbox.
    webhook_url: str = ""
    webhook_secret: SecretStr = SecretStr("")
    webhook_timeout_seconds: float = Field(default=10, gt=0, le=120)
    # Undelivered entries are dropped (and counted) after this long: the privacy window.
    webhook_keep_hours: float = Field(default=24, gt=0, le=24 * 7)

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, v: str) -> str:
        return http_url(v)


class KioskSettings(_Section):
    clear_seconds: float = Field(default=20, gt=0, le=600)


class UiSettings(_Section):
    language: Literal["vi", "en"] = "vi"


class Settings(_Section):
    facility: FacilitySettings = FacilitySettings()
    registry: RegistrySettings = RegistrySettings()
    officer: OfficerSettings = OfficerSettings()
    data: DataSettings = DataSettings()
    chip: ChipSettings = ChipSettings()
    cache: CacheSettings = CacheSettings()
    camera: CameraSettings = CameraSettings()
    scanner: ScannerSettings = ScannerSettings()
    http: HttpSettings = HttpSettings()
    privacy: PrivacySettings = PrivacySettings()
    ui: UiSettings = UiSettings()
    kiosk: KioskSettings = KioskSettings()
    audit: AuditSettings = AuditSettings()
    auth: AuthSettings = AuthSettings()
    his: HisSettings = HisSettings()
    metrics: MetricsSettings = MetricsSettings()

    # -- rules that apply when a part is used ----------------------------------------------
    # The validators above refuse a value at load, whatever the command. The rules below
    # depend on what is about to run (``qr parse`` works with no registry, ``check`` without
    # a webhook secret), so the command or the factory calls them at that moment. Each raises
    # SettingsError with one line naming the key.

    def require(self, section: str, key: str, reason: str = "required") -> Any:
        """The value of ``section.key``; refused when it is empty."""
        value = getattr(getattr(self, section), key)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not value:
            raise refused(section, key, reason)
        return value

    def check_online(self) -> None:
        """A daemon or an online check: every registry and officer key set, none still the
        example file's placeholder (template style)."""
        for section, key in (("facility", "code"), ("registry", "url"),
                             ("registry", "username"), ("registry", "password"),
                             ("officer", "name"), ("officer", "id")):
            if self.require(section, key) in PLACEHOLDERS:
                raise refused(section, key, "still the example's placeholder")

    def check_desk(self) -> str:
        """A daemon's desk name: required, since the central log server and the fleet's
        metrics tell desks apart by it (never the facility code, which all desks share)."""
        desk = self.require("audit", "desk", "every desk needs its own name, unique in the "
                                             "facility (e.g. 01C54-quay-3)")
        if desk in PLACEHOLDERS:
            raise refused("audit", "desk", "still the example's placeholder")
        return str(desk)

    def metrics_token(self, environ: Mapping[str, str] | None = None) -> bytes | None:
        """The metrics listener's bearer token: the systemd credential ``metrics.token``,
        else ``metrics.token_file``; None when the listener is off. Too short: refused."""
        if not self.metrics.listen:
            return None
        env = os.environ if environ is None else environ
        creds = env.get("CREDENTIALS_DIRECTORY")
        path = Path(creds) / METRICS_TOKEN if creds else None
        if path is None or not path.is_file():
            if not self.metrics.token_file:
                raise refused("metrics", "token_file", "the metrics listener needs a token "
                                                       "(file or credential metrics.token)")
            path = Path(self.metrics.token_file)
        try:
            token = path.read_bytes().strip()
        except OSError as e:
            raise refused("metrics", "token_file", f"unreadable: {type(e).__name__}") from None
        if len(token) < MIN_TOKEN_CHARS:
            raise refused("metrics", "token_file", f"{len(token)} characters, at least "
                                                   f"{MIN_TOKEN_CHARS} needed (make one: "
                                                   "openssl rand -hex 32)")
        return token

    def subject_key(self, environ: Mapping[str, str] | None = None) -> bytes | None:
        """The facility-wide subject key: the systemd credential ``audit.subject_key``, else
        ``audit.subject_key_file``; None when neither is set. At least 32 bytes."""
        env = os.environ if environ is None else environ
        creds = env.get("CREDENTIALS_DIRECTORY")
        path = Path(creds) / SUBJECT_KEY if creds else None
        if path is None or not path.is_file():
            if not self.audit.subject_key_file:
                return None
            path = Path(self.audit.subject_key_file)
        try:
            key = path.read_bytes()
        except OSError as e:
            raise refused("audit", "subject_key_file", f"unreadable: {type(e).__name__}"
                          ) from None
        if len(key.strip()) < MIN_KEY_BYTES:
            raise refused("audit", "subject_key_file", f"{len(key.strip())} bytes, at least "
                                                       f"{MIN_KEY_BYTES} needed")
        return key.strip()

    def check_listeners(self) -> None:
        """The metrics listener shares no port with the page or the HIS feed (one server
        routes requests to an app by the port they came in on)."""
        address = self.metrics.address()
        if address is None or not address[1]:
            return
        if address[1] in (self.http.port, self.his.hn212_port):
            raise refused("metrics", "listen", "its port is the page's or the HIS feed's")

    def login_required(self) -> bool:
        """Staff login is required whenever the daemon is reachable from elsewhere; switching
        it off on a LAN address is refused (the app factory asks when it builds the gate)."""
        from terminal.auth import is_loopback

        loopback = is_loopback(self.http.host)
        if self.auth.required is False and not loopback:
            raise refused("auth", "required", "a daemon on a LAN address always requires "
                                              "staff login")
        return self.auth.required if self.auth.required is not None else not loopback

    def webhook_secret_bytes(self) -> bytes:
        """The daemon's webhook signing secret: at least 16 characters."""
        secret = self.his.webhook_secret.get_secret_value().encode()
        if len(secret) < 16:
            raise refused("his", "webhook_secret", "a webhook needs a secret of at least 16 "
                                                   "characters")
        return secret

    def staff_users(self) -> UserStore:
        """The users file of a daemon that requires login: readable, with at least one user."""
        from terminal.auth import UserStore

        path = self.auth.users_file
        try:
            users = UserStore(Path(path)) if path else None
        except (OSError, ValueError, KeyError) as e:
            raise refused("auth", "users_file", type(e).__name__) from None
        if users is None or not len(users):
            raise refused("auth", "users_file", "a daemon that requires login needs staff users "
                                                "(tiepdon user add)")
        return users

    def snapshot_keys(self) -> dict[str, Ed25519PublicKey]:
        """The publishers' keys the offline store trusts (``key_id:base64`` each)."""
        from verify.errors import VerifyError
        from verify.snapshot import parse_trusted_keys

        try:
            return parse_trusted_keys(self.cache.trusted_keys)
        except VerifyError as e:
            raise refused("cache", "trusted_keys", e.detail) from None


def env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section}_{key}".upper()


def refused(section: str, key: str, reason: str) -> SettingsError:
    """The one line every settings rule ends in: the key, its environment variable, why."""
    return SettingsError(f"invalid setting {section}.{key} ({env_name(section, key)}): {reason}")


def _overlay_env(doc: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Apply ``TIEPDON_<SECTION>_<KEY>`` for every key the schema knows."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in doc.items()}
    for section, info in Settings.model_fields.items():
        model = info.annotation
        is_section = isinstance(model, type) and issubclass(model, BaseModel)
        keys = model.model_fields if is_section else {}  # type: ignore[union-attr]
        for key in keys:
            value: Any = environ.get(env_name(section, key))
            if value is not None and keys[key].annotation == list[str]:
                value = [v for v in value.split(",") if v.strip()]
            if value is not None:
                target = out.setdefault(section, {})
                if not isinstance(target, dict):
                    raise SettingsError(f"invalid setting {section}: must be a table")
                target[key] = value
    return out


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = [str(p) for p in first["loc"]]
    key = ".".join(loc)
    where = f" ({env_name(loc[0], loc[1])})" if len(loc) == 2 else ""
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    return f"invalid setting {key}{where}: {msg}"


def parse_settings(doc: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    merged = _overlay_env(dict(doc), os.environ if environ is None else environ)
    try:
        return Settings.model_validate(merged)
    except ValidationError as e:
        raise SettingsError(_describe(e)) from None


# systemd credentials read into the settings, by credential name.
CREDENTIALS = {"registry.password": "TIEPDON_REGISTRY_PASSWORD",
               "his.webhook_secret": "TIEPDON_HIS_WEBHOOK_SECRET"}


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (or ``$TIEPDON_CONFIG``; none at all means defaults) and the environment."""
    env = dict(os.environ if environ is None else environ)
    creds = env.get("CREDENTIALS_DIRECTORY")
    for name, variable in CREDENTIALS.items():
        secret = Path(creds) / name if creds else None
        if secret is not None and secret.is_file() and not env.get(variable):
            # systemd credential (LoadCredential=registry.password:…): never in the config file
            env[variable] = secret.read_text(encoding="utf-8").strip()
    if path is None and env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV])
    doc: dict[str, Any] = {}
    if path is not None:
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"config file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise SettingsError(f"config file unreadable: {path}: {type(e).__name__}") from None
        except tomllib.TOMLDecodeError as e:
            reason = str(e).splitlines()[0] if str(e) else "syntax"
            raise SettingsError(f"config file {path} is not valid TOML: {reason}") from None
        except (RecursionError, ValueError, OverflowError) as e:
            raise SettingsError(f"config file {path} is not valid TOML: {type(e).__name__}"
                                ) from None
    return parse_settings(doc, env)


def require_online(settings: Settings) -> None:
    """What a daemon or an online check needs (:meth:`Settings.check_online`)."""
    settings.check_online()


def read_reading_key(path: str) -> bytes | None:
    """The snapshot reading key (``cache.reading_key_file``, or ``cache build --reading-key``):
    64 hex digits or at least 32 raw bytes; None when not configured."""
    if not path:
        return None
    raw = Path(path).read_bytes()
    text = raw.strip()
    try:
        if len(text) == 64:
            return bytes.fromhex(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        pass
    if len(raw) < 32:
        raise refused("cache", "reading_key_file", "not a 32-byte key")
    return raw


MIN_KEY_BYTES = 32
MIN_TOKEN_CHARS = 32
# systemd credential names (the names, not the secrets)
METRICS_TOKEN = "metrics.token"  # noqa: S105
SUBJECT_KEY = "audit.subject_key"


def check_terminal_key(key: bytes, where: str) -> bytes:
    """Every session, CSRF, journal and fingerprint key is derived from the terminal key: a
    short key makes them guessable offline, so refuse to start — never replace it silently
    (the journal and the audit chain were made with it)."""
    if len(key) < MIN_KEY_BYTES:
        raise SettingsError(f"invalid terminal key {where}: {len(key)} bytes, at least "
                            f"{MIN_KEY_BYTES} needed (make one: head -c 32 /dev/urandom)")
    return key


def clock_start(environ: Mapping[str, str], *, serving: bool = False) -> datetime | None:
    """``TIEPDON_CLOCK=2027-01-31T08:00:00+07:00``: where the terminal's "now" starts (tests
    and benchmarks: a frozen or rolled-back snapshot seen from outside); None when unset.
    Refused by a daemon under systemd (``$INVOCATION_ID``): a desk's clock is the system's."""
    text = environ.get(CLOCK_ENV)
    if not text:
        return None
    if serving and environ.get("INVOCATION_ID"):
        raise SettingsError(f"{CLOCK_ENV} is for tests; refused by a daemon under systemd")
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        raise SettingsError(f"{CLOCK_ENV}: not an ISO date and time with an offset") from None
    if start.tzinfo is None:
        raise SettingsError(f"{CLOCK_ENV}: needs a UTC offset")
    return start
