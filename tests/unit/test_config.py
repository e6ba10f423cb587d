from __future__ import annotations

import pytest

from bot.config import ConfigError, load_settings
from tests.support import AES_KEY


def test_aes_key_must_be_43_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROWISH_WECHAT_AES_KEY", "short")
    monkeypatch.setenv("MICROWISH_WECHAT_APP_ID", "wx1")
    with pytest.raises(ConfigError, match="43"):
        load_settings(_env_file=None)


def test_good_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROWISH_WECHAT_AES_KEY", AES_KEY)
    monkeypatch.setenv("MICROWISH_WECHAT_APP_ID", "wx1")
    monkeypatch.setenv("MICROWISH_WECHAT_TOKEN", "tok123")
    monkeypatch.setenv("MICROWISH_ADMIN_OPENIDS", "a, b,,c")
    monkeypatch.setenv("MICROWISH_TEMPLATES", '{"return_visit": {"id": "T1", "fields": {"thing1": "{title}"}}}')
    s = load_settings(_env_file=None)
    assert s.admin_openids == ["a", "b", "c"]
    assert s.templates["return_visit"]["id"] == "T1"
    assert s.aes_key == AES_KEY and not s.sandbox_enabled
    assert "tok123" not in repr(s)  # secrets are not shown


def test_bad_templates_json_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROWISH_TEMPLATES", "{nope")
    with pytest.raises(ConfigError, match="MICROWISH_TEMPLATES"):
        load_settings(_env_file=None)


def test_serve_refuses_without_token_when_sandbox_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROWISH_SANDBOX", "off")
    s = load_settings(_env_file=None)
    with pytest.raises(ConfigError, match="MICROWISH_WECHAT_TOKEN"):
        s.check_for_serve()


def test_sandbox_is_automatic_without_credentials() -> None:
    s = load_settings(_env_file=None)
    assert s.sandbox_enabled
    s.check_for_serve()
