"""Reaching the Bot API: the wait for it at start, a server at its address that is not it, and our limiter
watched (its last answer for readiness, flood waits for the metrics). The Telegram side of starting up; `app.py`
only wires it in."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application

from . import metrics
from .config import Settings
from .telegram_limits import TelegramLimiter

log = logging.getLogger(__name__)


class BotApiUnreachable(Exception):
    """The Bot API did not answer within TELEGRAM_STARTUP_WAIT_SECONDS; the message is the operator's one line."""


class NotTheBotApi(Exception):
    """Something answered at TELEGRAM_API_BASE_URL, but not the Bot API (a web page, another service): a wrong
    address, not a wrong token. The message is the operator's one line."""


_NOT_JSON = re.compile(
    r"^(?P<status>.+?) \((?P<code>\d+)\)\. Parsing the server response (?P<body>.*) failed$", re.DOTALL
)


def not_the_bot_api(exc: TelegramError, url: str) -> NotTheBotApi | None:
    """PTB's error for an answer that is not JSON (a failed parse down its chain of causes), as one line; None
    for a real answer of the Bot API (a 401 for a refused token, say)."""
    chain: list[TelegramError] = []
    error: BaseException | None = exc
    while isinstance(error, TelegramError) and len(chain) < 5:
        chain.append(error)
        error = error.__cause__
    if not any(error.message == "Invalid server response" for error in chain):
        return None
    answer, body = "200 OK", ""
    if match := next((m for error in chain if (m := _NOT_JSON.match(error.message))), None):
        answer = f"{match['code']} {match['status']}"
        with contextlib.suppress(ValueError, SyntaxError):
            raw = ast.literal_eval(match["body"])
            text = " ".join((raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)).split())
            body = f": {text[:80]}{'…' if len(text) > 80 else ''}" if text else ": an empty body"
    return NotTheBotApi(
        f"the server at {url} answered {answer} with something that is not the Telegram Bot API"
        f"{body}; check TELEGRAM_API_BASE_URL (Telegram's own is https://api.telegram.org/bot)"
    )


async def wait_for_bot_api(app: Application, settings: Settings) -> None:
    """getMe until the Bot API answers: after a reboot the network or a self-hosted Bot API server often comes up
    a little after the bot. A refused token, or a server that is not the Bot API, is not waited on."""
    wait, url = settings.telegram_startup_wait_seconds, settings.telegram_api_base_url
    deadline = time.monotonic() + wait
    pause = 1.0
    while True:
        left = deadline - time.monotonic()
        try:
            # a silent server must not hold one try for the whole read timeout
            await asyncio.wait_for(app.bot.initialize(), timeout=min(30.0, max(5.0, left)))
            return
        except (TypeError, ValueError, KeyError) as exc:
            # JSON with `ok: true` but not a bot account (an emulator or proxy that leaves out `is_bot`, say): PTB
            # fails building its User, which is the server's fault, not a reason for a traceback.
            raise NotTheBotApi(
                f"the server at {url} answered getMe with something that is not the Telegram Bot API "
                f"({type(exc).__name__}: {' '.join(str(exc).split())[:120]}); check TELEGRAM_API_BASE_URL "
                "(Telegram's own is https://api.telegram.org/bot)"
            ) from None
        except (TelegramError, TimeoutError) as exc:
            if isinstance(exc, TelegramError) and (wrong := not_the_bot_api(exc, url)) is not None:
                raise wrong from None
            # A BadRequest or a refused token is an answer, just not a good one: waiting won't change it.
            if isinstance(exc, BadRequest) or not isinstance(exc, NetworkError | TimeoutError):
                raise
            reason = exc.message if isinstance(exc, NetworkError) else "no answer"
            left = deadline - time.monotonic()
            if left <= 0:
                raise BotApiUnreachable(
                    f"cannot reach the Telegram Bot API at {url} ({reason}); gave up after {wait:.0f} s "
                    "(TELEGRAM_STARTUP_WAIT_SECONDS)"
                ) from None
            pause = min(pause, left)
            log.warning("waiting for the Telegram Bot API at %s (%s); next try in %.0f s", url, reason, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 15.0)


class ObservedLimiter(TelegramLimiter):
    """Our limiter, watched: it sees every answer (all calls but getUpdates pass here): `last_answer` for
    readiness, RetryAfter for the metrics."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.last_answer = -math.inf  # time.monotonic() of the Bot API's last answer, any answer

    async def process_request(
        self,
        callback: Callable[..., Any],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> Any:
        async def observed(*call_args: Any, **call_kwargs: Any) -> Any:
            try:
                result = await callback(*call_args, **call_kwargs)
            except RetryAfter as exc:
                wait = exc.retry_after
                metrics.retry_after(wait.total_seconds() if isinstance(wait, timedelta) else float(wait))
                self.last_answer = time.monotonic()
                raise
            except TelegramError as exc:
                if isinstance(exc, BadRequest) or not isinstance(exc, NetworkError):  # Telegram answered
                    self.last_answer = time.monotonic()
                raise
            self.last_answer = time.monotonic()
            return result

        return await super().process_request(observed, args, kwargs, endpoint, data, rate_limit_args)
