"""Logging set-up: text or one JSON object per line, httpx quiet, and no secret in any line — message, arguments,
extra fields or traceback."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

# Passed with `extra=` by the finisher's line per job; JSON lines carry them as fields of their own.
JOB_FIELDS = ("job_id", "chat_id", "user_id", "size", "outcome", "model")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class SecretMask:
    """Replaces every secret (4 characters or more; the longest first) with `***`."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class SecretMaskingFormatter(logging.Formatter):
    """Masks every secret (and so Telegram's `bot<token>` URLs) in the fully formatted record, tracebacks
    included."""

    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self._mask = SecretMask(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return self._mask(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the job's fields when given, the traceback as
    `exception`. Each string is masked before it is encoded, so JSON escaping cannot hide a secret from the mask."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._mask = SecretMask(secrets)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in JOB_FIELDS:
            if (value := getattr(record, name, None)) is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        masked = {
            key: value if isinstance(value, int | float) else self._mask(str(value)) for key, value in entry.items()
        }
        return json.dumps(masked, ensure_ascii=False)


class NoJsonDump(logging.Filter):
    """PTB logs an answer that is not JSON with a traceback and the whole body; the error it raises says it in
    one line where it is handled (at start: the wrong TELEGRAM_API_BASE_URL), so that record is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("telegram") and str(record.msg).startswith("Can not load invalid JSON"))


def setup_logging(
    level: str, secrets: Iterable[str], stream: TextIO | None = None, log_format: str = "text"
) -> logging.Handler:
    """Replace the root handlers with one masking handler; returns it (tests remove it again)."""
    secrets = list(secrets)
    formatter = JsonFormatter(secrets) if log_format == "json" else SecretMaskingFormatter(FORMAT, secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(NoJsonDump())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "telegram.ext.ExtBot", "aiolimiter", "uvicorn"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
