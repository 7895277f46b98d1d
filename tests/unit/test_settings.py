"""Settings: the example file, environment overrides, and one clear line for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.settings import (
    SettingsError,
    load_settings,
    parse_settings,
    require_online,
)
from tests.helpers.paths import ROOT

EXAMPLE = ROOT / "config" / "tiepdon.example.toml"


def test_example_file_loads_but_is_refused_for_service() -> None:
    s = load_settings(EXAMPLE, environ={})
    assert s.registry.timeout_seconds == 10
    assert s.http.host == "127.0.0.1"
    with pytest.raises(SettingsError, match=r"facility\.code \(TIEPDON_FACILITY_CODE\).*"
                                            "placeholder"):
        require_online(s)


def test_example_documents_every_key() -> None:
    from terminal.settings import Settings

    text = EXAMPLE.read_text(encoding="utf-8")
    for section, info in Settings.model_fields.items():
        assert f"[{section}]" in text
        for key in info.annotation.model_fields:  # type: ignore[union-attr]
            assert f"\n{key} =" in text or f"# {key} =" in text, f"{section}.{key}"


def test_environment_overrides_the_file() -> None:
    env = {"TIEPDON_FACILITY_CODE": "01c54", "TIEPDON_REGISTRY_URL": "http://127.0.0.1:8766/",
           "TIEPDON_REGISTRY_USERNAME": "01C54_BV", "TIEPDON_REGISTRY_PASSWORD": "s3cret",
           "TIEPDON_OFFICER_NAME": "Nguyễn Thị Lan", "TIEPDON_OFFICER_ID": "001190000001",
           "TIEPDON_HTTP_PORT": "9000", "TIEPDON_DATA_DIR": "/tmp/x",
           "TIEPDON_REGISTRY_TIMEOUT_SECONDS": "3.5"}
    s = load_settings(EXAMPLE, environ=env)
    assert s.facility.code == "01C54"
    assert s.registry.url == "http://127.0.0.1:8766"
    assert s.registry.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)
    assert s.http.port == 9000 and s.registry.timeout_seconds == 3.5
    assert s.data.dir == Path("/tmp/x")
    require_online(s)


def test_config_path_from_environment(tmp_path: Path) -> None:
    f = tmp_path / "t.toml"
    f.write_text('[facility]\ncode = "79012"\n', encoding="utf-8")
    assert load_settings(None, environ={"TIEPDON_CONFIG": str(f)}).facility.code == "79012"


@pytest.mark.parametrize(("doc", "env", "message"), [
    ({"http": {"port": 70000}}, {}, "invalid setting http.port (TIEPDON_HTTP_PORT)"),
    ({}, {"TIEPDON_HTTP_PORT": "eighty"}, "invalid setting http.port (TIEPDON_HTTP_PORT)"),
    ({"facility": {"code": "ABC"}}, {}, "facility.code (TIEPDON_FACILITY_CODE): must be the"),
    ({"registry": {"url": "egw.example"}}, {}, "registry.url (TIEPDON_REGISTRY_URL): must be"),
    ({}, {"TIEPDON_REGISTRY_URL": "http://127.0.0.1:99999"}, "registry.url"),  # was a crash
    ({"registry": {"url": "http://egw:abc"}}, {}, "valid host and port"),
    ({"registry": {"url": "http://[::1"}}, {}, "valid host and port"),
    ({"registry": {"timeout_seconds": 0}}, {}, "registry.timeout_seconds"),
    ({"officer": {"id": "12"}}, {}, "officer.id (TIEPDON_OFFICER_ID): must be"),
    ({"ui": {"language": "fr"}}, {}, "ui.language"),
    ({"http": {"prot": 1}}, {}, "invalid setting http.prot"),
    ({"nonsense": {"a": 1}}, {}, "invalid setting nonsense: unknown key"),
])
def test_invalid_values_name_the_key(doc: dict[str, object], env: dict[str, str],
                                     message: str) -> None:
    with pytest.raises(SettingsError) as info:
        parse_settings(doc, environ=env)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def _entry(token: str) -> str:
    import hashlib

    return "his:" + hashlib.sha256(token.encode()).hexdigest()


@pytest.mark.parametrize(("entries", "why"), [
    (["his:s3cret-token"], "name:sha256-hex"),            # a plain token, never stored
    (["s3cret-token-without-a-name-0123"], "name:sha256-hex"),
    ([":" + "ab" * 32], "name:sha256-hex"),
    ([_entry("changeme")], "well-known"),
    ([_entry("")], "well-known"),
    ([_entry("Hn212-feed-token-7f3a9c1e5b"), "his:" + "cd" * 32], "twice"),
])
def test_weak_or_malformed_api_tokens_are_refused_at_start(entries: list[str],
                                                           why: str) -> None:
    """Issue 23: the HIS's bearer tokens are stored as SHA-256, so what can be judged at start
    is judged here (the form, well-known words); a short or one-kind token is refused when it
    is presented (terminal.auth.is_strong_token)."""
    with pytest.raises(SettingsError) as info:
        parse_settings({"auth": {"api_tokens": entries}}, environ={})
    assert "auth.api_tokens (TIEPDON_AUTH_API_TOKENS)" in str(info.value)
    assert why in str(info.value)
    assert parse_settings({"auth": {"api_tokens": [_entry("Hn212-feed-token-7f3a9c1e5b")]}},
                          environ={}).auth.api_tokens


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="config file not found"):
        load_settings(tmp_path / "none.toml", environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[facility\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(bad, environ={})


def test_required_keys_for_service() -> None:
    with pytest.raises(SettingsError, match=r"facility\.code .*required"):
        require_online(parse_settings({}, environ={}))
