"""Settings from the environment (prefix MICROWISH_) and an optional .env file."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

AES_KEY_RE = re.compile(r"^[A-Za-z0-9]{43}$")
TEMPLATE_KINDS = ("return_visit", "progress", "reminder", "digest")
SANDBOX_TOKEN = "microwish-sandbox"  # signs the sandbox page's own callbacks; never a real account
SANDBOX_APP_ID = "wxsandbox00000000"


class ConfigError(ValueError):
    """A setting that stops the bot from starting, with a message for the operator."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MICROWISH_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///microwish.db"
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    wechat_token: SecretStr | None = None
    wechat_app_id: str | None = None
    wechat_app_secret: SecretStr | None = None
    wechat_aes_key: SecretStr | None = None
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_require_aes: bool = False
    claim_webhook: SecretStr | None = None
    admin_webhook: SecretStr | None = None
    admin_openids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    timezone: str = "Asia/Shanghai"
    sandbox: Literal["auto", "on", "off"] = "auto"
    templates: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict)
    claim_sla_hours: int = Field(72, ge=1)
    log_format: Literal["json", "console"] = "json"
    resident_max_open: int = Field(3, ge=1)
    resident_max_per_day: int = Field(5, ge=1)
    member_max_open_claims: int = Field(3, ge=1)
    working_days: bool = False
    ranking_min_items: int = Field(5, ge=0)

    # Business knobs beyond the public contract (documented in the README).
    timestamp_tolerance_seconds: int = Field(300, ge=0)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    reply_budget_seconds: float = Field(4.0, gt=0)
    wish_min_chars: int = 4
    wish_max_chars: int = 500
    dialogue_timeout_minutes: int = 30
    claim_default_days: int = Field(7, ge=1, le=30)
    claim_max_days: int = 30
    contact_default_days: int = 2
    return_visit_after_days: int = 3
    return_visit_reminder_days: int = 2
    return_visit_phone_days: int = 7
    close_min_rating: int = Field(3, ge=1, le=5)
    quiet_start_hour: int = Field(21, ge=0, le=23)
    quiet_end_hour: int = Field(8, ge=0, le=23)
    member_yearly_quota: int = 1
    branch_yearly_quota: int = 3
    recommend_top: int = 3
    match_weights: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)
    invite_valid_days: int = Field(30, ge=1)  # an invite code expires this many days after it is made
    outbox_max_attempts: int = 8
    webhook_per_minute: int = 20
    similar_threshold: float = 0.6
    min_close_hours: float = 2.0
    # Issue 9: common problems, honest-number flags, taking over a proxy-filed wish (关联).
    common_problem_weeks: int = Field(4, ge=1)  # similar wishes created within this many weeks are grouped
    common_problem_similarity: float = Field(0.5, gt=0, le=1)  # difflib ratio (or shared keywords) to count as similar
    common_problem_min_shared_keywords: int = Field(2, ge=1)
    proxy_visit_flag_min: int = Field(3, ge=1)  # an admin recording this many 回访 on wishes they filed is flagged
    link_max_failures: int = Field(5, ge=1)  # wrong 关联 digits before 关联 is locked
    link_lock_hours: int = Field(24, ge=1)
    public_url: str = ""
    admin_session_secret: SecretStr | None = None  # signs dashboard cookies; unset: random per process
    admin_max_failures: int = Field(5, ge=1)  # failed logins before a dashboard account is locked
    admin_lock_minutes: int = Field(15, ge=1)

    @field_validator("admin_openids", mode="before")
    @classmethod
    def _split_openids(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()]
        return v

    @field_validator("templates", mode="before")
    @classmethod
    def _parse_templates(cls, v: Any) -> Any:
        if isinstance(v, str):
            if not v.strip():
                return {}
            try:
                v = json.loads(v)
            except json.JSONDecodeError as exc:
                raise ValueError(f"MICROWISH_TEMPLATES is not valid JSON: {exc.msg}") from None
        if not isinstance(v, dict):
            raise ValueError("MICROWISH_TEMPLATES must be a JSON object: kind → {id, fields}")
        for kind, spec in v.items():
            if kind not in TEMPLATE_KINDS:
                raise ValueError(f"MICROWISH_TEMPLATES: unknown kind {kind!r} (kinds: {', '.join(TEMPLATE_KINDS)})")
            if not isinstance(spec, dict) or "id" not in spec or not isinstance(spec.get("fields", {}), dict):
                raise ValueError(f"MICROWISH_TEMPLATES[{kind}] needs an \"id\" and a \"fields\" object")
        return v

    @field_validator("match_weights", mode="before")
    @classmethod
    def _parse_weights(cls, v: Any) -> Any:
        if isinstance(v, str):
            return json.loads(v) if v.strip() else {}
        return v

    @field_validator("wechat_aes_key")
    @classmethod
    def _check_aes_key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and v.get_secret_value() == "":
            return None
        if v is not None and not AES_KEY_RE.match(v.get_secret_value()):
            raise ValueError("MICROWISH_WECHAT_AES_KEY (EncodingAESKey) must be exactly 43 letters or digits")
        return v

    @field_validator("wechat_token")
    @classmethod
    def _check_token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and v.get_secret_value() == "":
            return None
        if v is not None and not re.match(r"^[A-Za-z0-9]{3,32}$", v.get_secret_value()):
            raise ValueError("MICROWISH_WECHAT_TOKEN must be 3–32 letters or digits")
        return v

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"MICROWISH_TIMEZONE {v!r} is not a known time zone") from None
        return v

    @field_validator("database_url")
    @classmethod
    def _check_db(cls, v: str) -> str:
        if not (v.startswith("sqlite") or v.startswith("postgresql")):
            raise ValueError("MICROWISH_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL")
        if v.startswith("postgresql://") or v.startswith("postgres://"):
            v = "postgresql+psycopg://" + v.split("://", 1)[1]
        return v

    @model_validator(mode="after")
    def _check_aes_needs_app(self) -> "Settings":
        if self.wechat_aes_key is not None and not self.wechat_app_id and not self.sandbox_enabled:
            raise ValueError("MICROWISH_WECHAT_AES_KEY is set but MICROWISH_WECHAT_APP_ID is not: safe mode needs both")
        if self.wechat_require_aes and self.wechat_aes_key is None:
            raise ValueError("MICROWISH_WECHAT_REQUIRE_AES=true needs MICROWISH_WECHAT_AES_KEY")
        return self

    # -- derived values -------------------------------------------------------------------

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def has_credentials(self) -> bool:
        return self.wechat_token is not None or bool(self.wechat_app_id)

    @property
    def sandbox_enabled(self) -> bool:
        if self.sandbox == "on":
            return True
        if self.sandbox == "off":
            return False
        return not (self.wechat_token is not None or bool(self.wechat_app_id))

    @property
    def token(self) -> str:
        """The callback Token: the configured one, or the sandbox's own in sandbox mode."""
        if self.wechat_token is not None:
            return self.wechat_token.get_secret_value()
        if self.sandbox_enabled:
            return SANDBOX_TOKEN
        raise ConfigError("MICROWISH_WECHAT_TOKEN is not set")

    @property
    def app_id(self) -> str:
        return self.wechat_app_id or SANDBOX_APP_ID

    @property
    def aes_key(self) -> str | None:
        return self.wechat_aes_key.get_secret_value() if self.wechat_aes_key else None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def duration(self, name: str) -> timedelta:
        return timedelta(days=getattr(self, name))

    def check_for_serve(self) -> None:
        """Refuse to serve with a configuration that cannot work."""
        if self.wechat_token is None and not self.sandbox_enabled:
            raise ConfigError(
                "MICROWISH_WECHAT_TOKEN is not set and the sandbox is off: set the token of your "
                "Official Account, or MICROWISH_SANDBOX=auto|on to try the bot without WeChat"
            )


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning pydantic's errors into one readable ConfigError."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            msg = str(err["msg"]).removeprefix("Value error, ")
            lines.append(f"  MICROWISH_{loc.upper()}: {msg}" if loc != "settings" else f"  {msg}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None
