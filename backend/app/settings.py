"""The one settings object: read once from the environment (and var/careloop.env), validated at start-up."""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import sys
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = Path(os.environ.get("CARELOOP_ENV_FILE", REPO_ROOT / "var" / "careloop.env"))
PLACEHOLDERS = {"", "changeme", "change-me", "secret", "dev"}
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


def careloop_command() -> str:
    """The `careloop` command as a person types it in their own shell, for the hints the product prints:
    the bare name when it is on PATH and is this installation's, else the absolute path of this
    virtualenv's script (`make` installs the checkout into the venv without putting it on PATH)."""
    script = Path(sys.executable).with_name("careloop")
    found = shutil.which("careloop")
    if found and (not script.exists() or Path(found).resolve() == script.resolve()):
        return "careloop"
    if script.exists():
        return str(script)
    return f"{sys.executable} -m backend.app.cli"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Every knob CareLoop has. Environment names are `CARELOOP_<FIELD>` except the two URLs."""

    model_config = SettingsConfigDict(
        env_prefix="CARELOOP_", env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore"
    )

    env: Environment = Environment.DEVELOPMENT
    database_url: str = Field(
        default=f"sqlite:///{REPO_ROOT / 'var' / 'careloop.db'}", validation_alias="DATABASE_URL"
    )
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    secret_key: SecretStr = Field(description="signs patient links and session tokens")
    data_key: SecretStr = Field(description="base64 of 32 random bytes; encrypts identifiers at rest")
    public_url: str = Field(
        default=DEFAULT_PUBLIC_URL,
        description="base of the links sent to patients; unset, `careloop serve` uses the address it serves",
    )
    hospital_name: str = "CareLoop Demo Hospital"
    cookie_secure: bool = False
    content_dir: Path = REPO_ROOT / "content"
    default_region: str = "CN"
    default_timezone: str = "Asia/Shanghai"
    default_language: str = "zh-CN"
    session_idle_minutes: int = 15
    login_max_failures: int = 5
    login_window_minutes: int = 15
    chat_link_days: int = 7
    form_link_days: int = 14
    calendar_link_days: int = 90  # an appointment's .ics link
    feedback_link_days: int = 30
    max_message_bytes: int = 4096
    job_queue: str = "careloop"
    nlu_url: str | None = Field(
        default=None, description="Rasa's HTTP API; unset: free text is not sent to Rasa"
    )
    nlu_min_confidence: float = 0.6
    media_dir: Path = REPO_ROOT / "var" / "media"  # patients' images and voice notes, encrypted
    max_media_bytes: int = 10 * 1024 * 1024
    max_attachment_bytes: int = Field(default=10 * 1024 * 1024, ge=1, description="feedback case evidence")
    # --- messaging channels (issue 4); base URLs are settings so tests can point them at local fakes
    quiet_hours_start: int = Field(default=21, ge=0, le=23, description="local hour quiet time starts")
    quiet_hours_end: int = Field(default=8, ge=0, le=23, description="local hour quiet time ends")
    max_messages_per_day: int = Field(default=5, ge=1, description="per patient and channel, all purposes")
    send_max_attempts: int = Field(default=6, ge=1, description="transient failures retried up to this")
    send_timeout_seconds: float = 10.0
    wechat_app_id: str | None = None
    wechat_app_secret: SecretStr | None = None
    wechat_token: SecretStr | None = Field(default=None, description="the URL verification token")
    wechat_encoding_aes_key: SecretStr | None = Field(default=None, description="43 chars; safe mode")
    wechat_api_root: str = "https://api.weixin.qq.com"  # cgi-bin/ and sns/ live under it
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_api_base: str = "https://api.twilio.com"
    twilio_sms_from: str | None = Field(default=None, description="E.164 number or Messaging Service SID")
    twilio_whatsapp_from: str | None = Field(default=None, description="E.164 WhatsApp sender")
    sms_provider: str = Field(default="twilio", description="'twilio' or 'http' (the generic gateway)")
    sms_gateway_url: str | None = None
    sms_gateway_token: SecretStr | None = None
    sms_gateway_sender: str | None = None
    # --- voice calls (issue 6)
    voice_gateway: str = Field(default="simulated", description="'twilio' or 'simulated' (development)")
    twilio_voice_from: str | None = Field(default=None, description="E.164 caller id for voice calls")
    voice_record_at_gateway: bool = True
    voice_vosk_models: dict[str, Path] = Field(
        default_factory=dict, description='JSON {"zh-CN": "/models/vosk-cn"}: vosk model dir per language'
    )
    voice_pocketsphinx_fallback: bool = Field(
        default=True, description="English calls use pocketsphinx's bundled model when no vosk model is set"
    )
    voice_prompt_cache: Path = REPO_ROOT / "var" / "voice-prompts"
    # pyttsx3's espeak driver, driven from a thread pool, reports the previous prompt's file after
    # its directory is gone (measured: "Error saving WAV file", weakref errors); the CLI is one
    # process per prompt and shares nothing, so the server renders prompts with it by default.
    voice_tts_engine: str = Field(default="cli", description="'cli' (espeak-ng) or 'pyttsx3'")
    voice_no_input_ms: int = Field(default=5000, ge=1000, description="silence after a prompt: re-ask")
    voice_end_silence_ms: int = Field(default=700, ge=200, description="silence that ends an answer")
    # --- the campaign dialer
    voice_max_concurrent_calls: int = Field(default=10, ge=1, description="calls up at the gateway at once")
    voice_calls_per_second: float = Field(
        default=1.0, gt=0, le=100, description="new calls per second (Twilio's default limit is 1)"
    )
    voice_redial_after_hours: float = Field(
        default=4, ge=0, description="no answer, busy, machine, hung up: call again after this"
    )
    voice_valid_confidence: float = Field(
        default=0.6, ge=0, le=1, description="monitoring: a call is a valid record when every answer is above"
    )

    @field_validator("redis_url", mode="before")
    @classmethod
    def _empty_redis_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _refuse_weak_secrets(self) -> Settings:
        if (
            self.secret_key.get_secret_value().lower() in PLACEHOLDERS
            or len(self.secret_key.get_secret_value()) < 32
        ):
            raise ValueError(
                f"CARELOOP_SECRET_KEY must be at least 32 random characters (run `{careloop_command()} init`)"
            )
        try:
            raw = base64.b64decode(self.data_key.get_secret_value(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"CARELOOP_DATA_KEY must be base64 (run `{careloop_command()} init`)") from exc
        if len(raw) != 32:
            raise ValueError("CARELOOP_DATA_KEY must decode to 32 bytes")
        if self.env is Environment.PRODUCTION:
            if self.database_url.startswith("sqlite"):
                raise ValueError("production needs DATABASE_URL pointing at PostgreSQL")
            if not self.public_url.startswith("https://"):
                raise ValueError("production needs an https CARELOOP_PUBLIC_URL")
            self.cookie_secure = True
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def data_key_bytes(self) -> bytes:
        return base64.b64decode(self.data_key.get_secret_value())


def environment_names() -> set[str]:
    """The environment variable names Settings reads (docker-compose is checked against these)."""
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else f"CARELOOP_{name.upper()}")
    return names


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # secrets come from the environment
