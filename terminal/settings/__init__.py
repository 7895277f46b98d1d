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
import tomllib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr, ValidationError

from terminal.settings.sections import (
    AuditSettings,
    AuthSettings,
    CacheSettings,
    CameraSettings,
    ChipSettings,
    DataSettings,
    FacilitySettings,
    HisSettings,
    KioskSettings,
    MetricsSettings,
    OfficerSettings,
    PrivacySettings,
    RegistrySettings,
    ScannerSettings,
    UiSettings,
    _Section,
)
from terminal.settings.sections import (
    HttpSettings as HttpSettings,
)
from terminal.settings.sections import (
    SettingsError as SettingsError,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from terminal.auth import UserStore

ENV_PREFIX = "TIEPDON_"
CONFIG_ENV = "TIEPDON_CONFIG"
CLOCK_ENV = "TIEPDON_CLOCK"
# Values copied from the example file that must never reach production (template style).
PLACEHOLDERS = frozenset({"changeme", "change-me", "CHANGE_ME", "00000", "000000000000"})


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
            return read_subject_key(path)
        except OSError as e:
            raise refused("audit", "subject_key_file", f"unreadable: {type(e).__name__}"
                          ) from None
        except ValueError as e:
            raise refused("audit", "subject_key_file", str(e)) from None

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


def read_subject_key(path: Path) -> bytes:
    """The facility's subject key as the daemon and ``tiepdon audit find --subject-key`` both
    read it: the file's bytes without surrounding white space (it is made as text, ``openssl
    rand -hex 32``, with a newline); ValueError when shorter than 32 bytes."""
    key = path.read_bytes().strip()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{len(key)} bytes, at least {MIN_KEY_BYTES} needed")
    return key


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
