"""Settings from the environment and `.env`, checked once at start so a bad value is one clear line, not a traceback."""

from __future__ import annotations

import re
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, overload
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .imagemodels import PROFILES, UnknownModel, profile_for
from .options import AspectRatio, ImageRequest, Resolution
from .stars import Pack, parse_packs
from .styles import StyleFileError, load_library

_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
DEFAULT_HTTP_PORT = 8080
ENV_FILE = ".env"  # read from the current folder (where the bot is started), like the README says


def _url(value: str) -> str:
    """Forgive the usual slips: a trailing slash here, `…/v1` on the gateway, a Bot API URL without `/bot`."""
    value = value.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value


class ImageSettings(BaseSettings):
    """What talking to the image API needs, and no more: `imagine-bot generate` runs without any Telegram setting.

    An empty value (`IMAGE_API_KEY=` as copied from .env.example) counts as not set.
    """

    model_config = SettingsConfigDict(
        env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    image_api_key: SecretStr
    image_api_base_url: str = "https://www.dmxapi.cn"
    # The models offered, the first the default: (profile name, the gateway's id for it). IMAGE_MODELS wins over
    # IMAGE_MODEL (the older one-model form); neither set: nano-banana-2.
    image_models: Annotated[tuple[tuple[str, str], ...] | None, NoDecode] = None
    image_model: Annotated[tuple[tuple[str, str], ...] | None, NoDecode] = None
    default_aspect_ratio: AspectRatio = AspectRatio.SQUARE
    default_size: Resolution = Resolution.K1
    image_request_timeout: Annotated[float, Field(ge=1, le=3600)] = 300.0
    image_api_retries: Annotated[int, Field(ge=0, le=10)] = 3
    image_api_retry_backoff: Annotated[float, Field(ge=0, le=60)] = 2.0

    @field_validator("image_api_key")
    @classmethod
    def _key_present(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value().strip()
        if not key:
            raise ValueError("is only spaces")
        return SecretStr(key)

    @field_validator("image_api_base_url")
    @classmethod
    def _gateway_url(cls, value: str) -> str:
        return _url(value).removesuffix("/v1")

    @field_validator("image_models", "image_model", mode="before")
    @classmethod
    def _models(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        try:
            entries = parse_models(value)
        except ValueError as exc:
            if info.field_name == "image_model":  # it used to take any id: say how to send one
                raise ValueError(f"{exc} (to send another id for a model: IMAGE_MODELS=<model>=<id>)") from None
            raise
        if info.field_name == "image_model" and len(entries) > 1:
            raise ValueError("names one model; list several in IMAGE_MODELS")
        return entries

    @property
    def models(self) -> tuple[tuple[str, str], ...]:
        """(profile name, gateway id) of every model offered, the default first."""
        return self.image_models or self.image_model or (("nano-banana-2", "nano-banana-2"),)

    @property
    def offered(self) -> list[str]:
        """The profile names on offer, the default first."""
        return [name for name, _ in self.models]

    @property
    def default_model(self) -> str:
        return self.models[0][0]

    @property
    def gateway_ids(self) -> dict[str, str]:
        """Profile name → the id sent upstream for it."""
        return dict(self.models)

    def describe_models(self) -> str:
        """`model nano-banana-2`, or `models nano-banana-2, gpt-image-2 (as gpt-image-2-ssvip)` for the start line."""
        names = [name if name == gateway else f"{name} (as {gateway})" for name, gateway in self.models]
        return f"model{'s' if len(names) > 1 else ''} {', '.join(names)}"

    @field_validator("default_aspect_ratio", mode="before")
    @classmethod
    def _ratio(cls, value: object) -> object:
        return AspectRatio.parse(value) if isinstance(value, str) else value

    @field_validator("default_size", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        return Resolution.parse(value) if isinstance(value, str) else value

    def secrets(self) -> list[str]:
        """Everything that must never reach a log line or a chat."""
        return [self.image_api_key.get_secret_value()]


class Settings(ImageSettings):
    """Everything the bot needs: the image API's settings plus Telegram, limits, storage, access and quotas."""

    telegram_bot_token: SecretStr
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_file_base_url: str = "https://api.telegram.org/file/bot"
    telegram_startup_wait_seconds: Annotated[float, Field(ge=0, le=3600)] = 60.0

    max_concurrent_generations: Annotated[int, Field(ge=1, le=1000)] = 8
    user_max_running: Annotated[int, Field(ge=1, le=100)] = 2
    user_max_waiting: Annotated[int, Field(ge=0, le=1000)] = 5
    telegram_max_messages_per_second: Annotated[float, Field(ge=0)] = 30.0
    telegram_max_retry_after: Annotated[float, Field(ge=1, le=3600)] = 60.0
    telegram_rate_share: Annotated[int, Field(ge=1, le=100)] = 1
    telegram_max_upload_mb: Annotated[int, Field(ge=1, le=2000)] = 50
    retry_on_size_mismatch: bool = False
    image_memory_mb: Annotated[int, Field(ge=16)] = 96
    shutdown_grace_seconds: Annotated[float, Field(ge=0, le=600)] = 20.0

    data_dir: Path = Path("data")
    data_min_free_mb: Annotated[int, Field(ge=0)] = 200
    database_url: str | None = None
    job_lease_seconds: Annotated[float, Field(ge=1, le=3600)] = 30.0
    worker_concurrency: Annotated[int | None, Field(ge=0, le=1000)] = None
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
    # `model:choice=credits` entries over the profiles' own credits (and over QUOTA_CREDITS_* for nano-banana-2).
    model_credits: Annotated[dict[str, dict[str, int]], NoDecode] = Field(default_factory=dict)
    quota_timezone: str = "UTC"
    # Credit packs sold for Telegram Stars, `credits:stars` entries; none (the default): payments off.
    stars_packs: Annotated[tuple[Pack, ...], NoDecode] = ()

    # ---- the prompt helper (bot/prompthelper.py): a chat model on the same gateway and key ----
    prompt_model: str = ""  # empty: no helper, and nothing of it shown
    prompt_helper_timeout: Annotated[float, Field(ge=1, le=600)] = 20.0
    prompt_helper_concurrency: Annotated[int, Field(ge=1, le=100)] = 4
    prompt_helper_credits: Annotated[int, Field(ge=0)] = 0

    @field_validator("prompt_model")
    @classmethod
    def _prompt_model(cls, value: str) -> str:
        value = value.strip()
        if any(c.isspace() for c in value):
            raise ValueError("is one chat model id on the gateway, without spaces (e.g. gpt-4o-mini)")
        return value

    styles_file: Path | None = None  # TOML: styles that extend (or, with replace = true, replace) the built-in ones

    # Inline mode and guest mode: results are uploaded to this chat (a private channel or group where the bot may
    # post) and put into the inline message by that upload's file id. Not set: inline queries get a hint only.
    inline_storage_chat_id: int | None = None

    @field_validator("telegram_api_base_url", "telegram_file_base_url")
    @classmethod
    def _bot_api_url(cls, value: str, info: ValidationInfo) -> str:
        value = _url(value)
        suffix = "/bot" if info.field_name == "telegram_api_base_url" else "/file/bot"
        return value if "{token}" in value or value.endswith(suffix) else value + suffix

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.strip().upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("use DEBUG, INFO, WARNING or ERROR")
        return value

    # ---- running as a service (bot/serve/): webhook, health, readiness, metrics, log format ----
    telegram_webhook_url: str = ""  # empty: long polling
    telegram_webhook_secret: SecretStr | None = Field(default=None, validate_default=True)
    telegram_webhook_max_connections: Annotated[int, Field(ge=1, le=100)] = 40
    http_host: str = "0.0.0.0"
    http_port: Annotated[int, Field(ge=1, le=65535)] | None = None  # see `listen_port`
    log_format: Literal["text", "json"] = "text"

    @field_validator("telegram_webhook_url")
    @classmethod
    def _webhook_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http:// behind a proxy on the same host)")
        return value

    @field_validator("telegram_webhook_secret", mode="before")
    @classmethod
    def _webhook_secret(cls, value: object, info: ValidationInfo) -> object:
        """Required in webhook mode; Telegram accepts 1–256 characters of A-Z a-z 0-9 _ - only."""
        text = (value.get_secret_value() if isinstance(value, SecretStr) else str(value or "")).strip()
        if not text:
            if info.data.get("telegram_webhook_url"):
                raise PydanticCustomError("missing", "required in webhook mode")
            return None
        if not _WEBHOOK_SECRET.fullmatch(text):
            raise ValueError("use 1 to 256 characters of A-Z a-z 0-9 _ - (Telegram's rule)")
        return SecretStr(text)

    @field_validator("http_port", mode="before")
    @classmethod
    def _empty_port(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def webhook(self) -> bool:
        return bool(self.telegram_webhook_url)

    @property
    def webhook_path(self) -> str:
        """The path the webhook is served at: the one in TELEGRAM_WEBHOOK_URL (a proxy forwards it unchanged)."""
        return urlsplit(self.telegram_webhook_url).path or "/"

    @property
    def listen_port(self) -> int | None:
        """HTTP_PORT, or 8080 in webhook mode; in polling mode no server runs unless HTTP_PORT is set."""
        if self.http_port is not None:
            return self.http_port
        return DEFAULT_HTTP_PORT if self.webhook else None

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

    @field_validator("styles_file")
    @classmethod
    def _styles_file(cls, value: Path | None) -> Path | None:
        """Read at start, so every mistake in it is named before the bot answers anyone."""
        if value is not None:
            try:
                load_library(value)
            except StyleFileError as exc:
                raise ValueError(str(exc)) from None
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

    @field_validator("stars_packs", mode="before")
    @classmethod
    def _stars_packs(cls, value: object) -> object:
        return parse_packs(value) if isinstance(value, str) else value

    @property
    def payments_on(self) -> bool:
        """Packs are for sale, and there is something to buy (a daily limit that purchased credits go beyond)."""
        return bool(self.stars_packs) and self.user_daily_quota > 0

    @field_validator("model_credits", mode="before")
    @classmethod
    def _model_credits(cls, value: object) -> object:
        return parse_model_credits(value) if isinstance(value, str) else value

    @property
    def credit_table(self) -> dict[str, dict[str, int]]:
        """Model → choice → credits: the profile's own, QUOTA_CREDITS_1K/_2K/_4K for nano-banana-2's sizes, then
        MODEL_CREDITS over both. A request costs the product of its choices' credits."""
        table = {name: dict(profile.credits) for name, profile in PROFILES.items()}
        table.setdefault("nano-banana-2", {}).update(
            {"1K": self.quota_credits_1k, "2K": self.quota_credits_2k, "4K": self.quota_credits_4k}
        )
        for name, credits in self.model_credits.items():
            table.setdefault(name, {}).update(credits)
        return table

    def credits_for(self, request: ImageRequest) -> int:
        """What one image of this request costs."""
        return request.cost(self.credit_table.get(request.model))

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

    @property
    def jobs_here(self) -> int:
        """How many jobs this process runs at once: WORKER_CONCURRENCY, or by default MAX_CONCURRENT_GENERATIONS."""
        return self.max_concurrent_generations if self.worker_concurrency is None else self.worker_concurrency

    @property
    def database(self) -> str:
        """DATABASE_URL, or the SQLite file in DATA_DIR."""
        return self.database_url or f"sqlite:///{self.data_dir / 'imagine-bot.sqlite3'}"

    def secrets(self) -> list[str]:
        secrets = [self.telegram_bot_token.get_secret_value(), *super().secrets()]
        if self.telegram_webhook_secret is not None:
            secrets.append(self.telegram_webhook_secret.get_secret_value())
        return secrets


def parse_models(value: str) -> tuple[tuple[str, str], ...]:
    """`nano-banana-2, gpt-image-2=gpt-image-2-ssvip` → ((profile, gateway id), …); ValueError naming every
    mistake (an unknown profile names the known ones)."""
    entries: list[tuple[str, str]] = []
    problems: list[str] = []
    unknown: list[str] = []
    for raw in (part.strip() for part in value.split(",")):
        if not raw:
            continue
        name, sep, gateway = (part.strip() for part in raw.partition("="))
        if name not in PROFILES:
            unknown.append(repr(name))
        elif sep and (not gateway or any(c.isspace() for c in gateway)):
            problems.append(f"{raw!r}: write {name}=<the gateway's id for it>")
        elif name in dict(entries):
            problems.append(f"{name} is listed twice")
        else:
            entries.append((name, gateway or name))
    if unknown:
        problems.insert(0, f"unknown model {', '.join(unknown)}; known: {', '.join(PROFILES)}")
    if problems:
        raise ValueError("; ".join(problems))
    if not entries:
        raise ValueError("names no model")
    return tuple(entries)


def parse_model_credits(value: str) -> dict[str, dict[str, int]]:
    """`gemini-3-pro-image:4K=4,gpt-image-2:high=3` → {model: {choice: credits}}; ValueError naming every
    mistake."""
    table: dict[str, dict[str, int]] = {}
    problems: list[str] = []
    for raw in (part.strip() for part in value.split(",")):
        if not raw:
            continue
        where, sep, number = raw.rpartition("=")
        name, colon, choice = (part.strip() for part in where.partition(":"))
        if not sep or not colon:
            problems.append(f"{raw!r}: write model:choice=credits, e.g. gpt-image-2:high=3")
            continue
        if name not in PROFILES:
            problems.append(f"{raw!r}: {UnknownModel(name, list(PROFILES))}")
            continue
        profile = profile_for(name)
        found = next((c for o in profile.options for c in o.choices if c.lower() == choice.lower()), None)
        if found is None:
            choices = ", ".join(c for o in profile.options[1:] for c in o.choices)
            problems.append(f"{raw!r}: {name} has no choice {choice!r} (priced choices: {choices})")
            continue
        if not number.strip().isdigit():
            problems.append(f"{raw!r}: credits must be a whole number 0 or more")
            continue
        table.setdefault(name, {})[found] = int(number)
    if problems:
        raise ValueError("; ".join(problems))
    return table


class SettingsError(Exception):
    """One line for the operator: which setting, what is wrong, how to fix it."""


_HINTS = {
    "TELEGRAM_BOT_TOKEN": "get one from @BotFather",
    "IMAGE_API_KEY": "your DMXAPI token",
    "TELEGRAM_WEBHOOK_SECRET": "TELEGRAM_WEBHOOK_URL is set, so webhook mode needs it: 1 to 256 characters of "
    "A-Z a-z 0-9 _ -, the same on every replica",
}


S = TypeVar("S", bound=ImageSettings)


@overload
def load_settings(kind: type[S], **overrides: Any) -> S: ...
@overload
def load_settings(**overrides: Any) -> Settings: ...


def load_settings(kind: type[ImageSettings] = Settings, **overrides: Any) -> ImageSettings:
    """The settings of `kind`; every missing or bad one is named in the one SettingsError line."""
    try:
        return kind(**overrides)
    except ValidationError as exc:
        problems = list(dict.fromkeys(_problem(error) for error in exc.errors()))
        where = (
            f"put {'it' if len(problems) == 1 else 'them'} in .env (in the folder you start from; "
            "cp .env.example .env) or the environment"
        )
        raise SettingsError("; ".join(problems) + f" — {where}") from None


def _problem(error: ErrorDetails) -> str:
    name = str(error["loc"][0]).upper() if error["loc"] else "settings"
    if error["type"] == "missing":
        hint = _HINTS.get(name)
        return f"{name} is not set" + (f" ({hint})" if hint else "")
    message = str(error["msg"]).removeprefix("Value error, ")
    if "enum" in error["type"] or (error["type"] == "value_error" and name in {"DEFAULT_ASPECT_RATIO", "DEFAULT_SIZE"}):
        choices = AspectRatio if name == "DEFAULT_ASPECT_RATIO" else Resolution
        message = "use one of " + ", ".join(c.value for c in choices)
    return f"{name} is invalid: {message}"
