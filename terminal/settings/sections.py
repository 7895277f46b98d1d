"""The settings' sections, one model each (``[facility]``, ``[registry]``, …): field
validators refuse a bad value at load. :class:`terminal.settings.Settings` gathers them."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class SettingsError(Exception):
    """Start-up refused: the message is one line that names the key."""


def http_url(v: str) -> str:
    v = v.strip()
    if v and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", v):
        raise ValueError("must be an http:// or https:// URL")
    if v:
        try:  # a host that parses and a port in 1–65535 (":99999", ":abc", "[::1" refused)
            parts = urlsplit(v)
            if not parts.hostname or parts.port == 0:
                raise ValueError
        except ValueError:
            raise ValueError("must be an http:// or https:// URL with a valid host and "
                             "port") from None
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
    # The kiosk screens' addresses (or networks): when set, only they may open the kiosk's
    # stream — two other hosts holding its small pool kept the real screen out (429). Empty:
    # any address (fine on loopback; set it when the daemon listens on the network).
    kiosk_clients: list[str] = Field(default_factory=list)

    @field_validator("kiosk_clients")
    @classmethod
    def _kiosk_clients(cls, v: list[str]) -> list[str]:
        for entry in v:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an address or network") from None
        return v

    def kiosk_allowed(self, client: str) -> bool:
        """May ``client`` (an address) open the kiosk's stream?"""
        if not self.kiosk_clients:
            return True
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(entry, strict=False)
                   for entry in self.kiosk_clients)
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
