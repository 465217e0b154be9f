"""Settings from the environment and `.env`, checked once at start so a bad value is one clear line, not a traceback."""

from __future__ import annotations

from datetime import UTC, tzinfo
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .options import AspectRatio, Resolution


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: SecretStr
    image_api_key: SecretStr
    image_api_base_url: str = "https://www.dmxapi.cn"
    image_model: str = "nano-banana-2"
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_file_base_url: str = "https://api.telegram.org/file/bot"

    default_aspect_ratio: AspectRatio = AspectRatio.SQUARE
    default_size: Resolution = Resolution.K1
    image_request_timeout: Annotated[float, Field(ge=1, le=3600)] = 300.0
    image_api_retries: Annotated[int, Field(ge=0, le=10)] = 3
    image_api_retry_backoff: Annotated[float, Field(ge=0, le=60)] = 2.0
    max_concurrent_generations: Annotated[int, Field(ge=1, le=1000)] = 8
    user_max_running: Annotated[int, Field(ge=1, le=100)] = 2
    user_max_waiting: Annotated[int, Field(ge=0, le=1000)] = 5
    telegram_max_messages_per_second: Annotated[float, Field(ge=0)] = 30.0
    telegram_max_retry_after: Annotated[float, Field(ge=1, le=3600)] = 60.0
    telegram_rate_share: Annotated[int, Field(ge=1, le=100)] = 1
    retry_on_size_mismatch: bool = False
    image_memory_mb: Annotated[int, Field(ge=16)] = 96
    shutdown_grace_seconds: Annotated[float, Field(ge=0, le=600)] = 20.0

    data_dir: Path = Path("data")
    database_url: str | None = None
    originals_max_age_hours: Annotated[float, Field(gt=0)] = 72.0
    originals_max_total_mb: Annotated[int, Field(gt=0)] = 2048
    log_level: str = "INFO"

    allowed_user_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    allowed_chat_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    admin_user_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    user_daily_quota: Annotated[int, Field(ge=0)] = 20
    chat_daily_quota: Annotated[int, Field(ge=0)] = 0
    quota_credits_1k: Annotated[int, Field(ge=0)] = 1
    quota_credits_2k: Annotated[int, Field(ge=0)] = 1
    quota_credits_4k: Annotated[int, Field(ge=0)] = 2
    quota_timezone: str = "UTC"

    @field_validator("allowed_user_ids", "allowed_chat_ids", "admin_user_ids", mode="before")
    @classmethod
    def _id_list(cls, value: object) -> object:
        """`123, -100456` (commas or spaces) → a set of ids; empty means nobody listed."""
        if isinstance(value, str):
            parts = [p for p in value.replace(",", " ").split() if p]
            try:
                return frozenset(int(p) for p in parts)
            except ValueError:
                raise ValueError("use numeric Telegram ids separated by commas, e.g. 12345,-100987") from None
        return value

    @field_validator("quota_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        value = value.strip() or "UTC"
        if value.upper() != "UTC":
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError("unknown time zone; use UTC or a name like Asia/Shanghai") from None
        return value

    @property
    def timezone(self) -> tzinfo:
        return UTC if self.quota_timezone.upper() == "UTC" else ZoneInfo(self.quota_timezone)

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value().strip()
        head, _, tail = token.partition(":")
        if not (head.isdigit() and tail):
            raise ValueError("expected the form 123456789:ABC... from @BotFather")
        return SecretStr(token)

    @field_validator("image_api_key")
    @classmethod
    def _key_present(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value().strip()
        if not key:
            raise ValueError("is empty")
        return SecretStr(key)

    @field_validator("image_api_base_url", "telegram_api_base_url", "telegram_file_base_url")
    @classmethod
    def _url_shape(cls, value: str, info: ValidationInfo) -> str:
        """Forgive the usual slips: a trailing slash, `…/v1` on the gateway, a Bot API URL without `/bot`."""
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        if info.field_name == "image_api_base_url":
            return value.removesuffix("/v1")
        suffix = "/bot" if info.field_name == "telegram_api_base_url" else "/file/bot"
        if "{token}" not in value and not value.endswith(suffix):
            value += suffix
        return value

    @field_validator("default_aspect_ratio", mode="before")
    @classmethod
    def _ratio(cls, value: object) -> object:
        return AspectRatio.parse(value) if isinstance(value, str) else value

    @field_validator("default_size", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        return Resolution.parse(value) if isinstance(value, str) else value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.strip().upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("use DEBUG, INFO, WARNING or ERROR")
        return value

    @property
    def database(self) -> str:
        """DATABASE_URL, or the SQLite file in DATA_DIR."""
        return self.database_url or f"sqlite:///{self.data_dir / 'imagine-bot.sqlite3'}"

    def secrets(self) -> list[str]:
        """Everything that must never reach a log line or a chat."""
        return [self.telegram_bot_token.get_secret_value(), self.image_api_key.get_secret_value()]


class SettingsError(Exception):
    """One line for the operator: which setting, what is wrong, how to fix it."""


_HINTS = {
    "TELEGRAM_BOT_TOKEN": "get one from @BotFather",
    "IMAGE_API_KEY": "your DMXAPI token",
}


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        if error["type"] == "missing":
            hint = _HINTS.get(name, "")
            raise SettingsError(
                f"{name} is not set: put it in .env (cp .env.example .env) or the environment"
                + (f" — {hint}" if hint else "")
            ) from None
        message = str(error["msg"]).removeprefix("Value error, ")
        if "enum" in error["type"] or error["type"] == "value_error" and name in {"DEFAULT_ASPECT_RATIO", "DEFAULT_SIZE"}:
            choices = AspectRatio if name == "DEFAULT_ASPECT_RATIO" else Resolution
            message = "use one of " + ", ".join(c.value for c in choices)
        raise SettingsError(f"{name} is invalid: {message}; fix it in .env or the environment") from None
