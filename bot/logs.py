"""Logging set-up: one format, httpx quiet, and no secret in any line — message, arguments or traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import TextIO


class SecretMaskingFormatter(logging.Formatter):
    """Masks every secret (and Telegram's `bot<token>` URLs) in the fully formatted record, tracebacks included."""

    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str, secrets: Iterable[str], stream: TextIO | None = None) -> logging.Handler:
    """Replace the root handlers with one masking handler; returns it (tests remove it again)."""
    formatter = SecretMaskingFormatter(FORMAT, secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "telegram.ext.ExtBot", "aiolimiter"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
