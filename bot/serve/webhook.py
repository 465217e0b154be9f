"""Updates over HTTP, by Telegram's rules: the secret header, an update body, and 200 only once recorded."""

from __future__ import annotations

import hmac
import json
import logging

from starlette.requests import Request
from starlette.responses import Response
from telegram import Bot

from ..config import Settings
from ..metrics import Metrics
from .sink import UpdateSink

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookEndpoint:
    """`POST <path of TELEGRAM_WEBHOOK_URL>`: 403 without the right secret (nothing read), 400 for a body that is
    not an update, 500 when the sink could not record it (Telegram sends it again), else 200 — also for an
    update seen before, which the sink ignores."""

    def __init__(self, secret: str, sink: UpdateSink, metrics: Metrics) -> None:
        self._secret = secret.encode()
        self._sink = sink
        self._metrics = metrics

    async def handle(self, request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER)
        if given is None or not hmac.compare_digest(given.encode("latin-1"), self._secret):
            log.warning(
                "webhook request from %s refused: %s secret token",
                _client(request),
                "no" if given is None else "a wrong",
            )
            self._metrics.webhook_refused.labels(reason="secret").inc()
            return Response(status_code=403)
        body = await request.body()
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or type(payload.get("update_id")) is not int:
            log.warning(
                "webhook request from %s refused: the body (%d bytes) is not an update", _client(request), len(body)
            )
            self._metrics.webhook_refused.labels(reason="not_an_update").inc()
            return Response(status_code=400)
        try:
            fresh = await self._sink.accept(payload)
        except Exception:
            log.exception(
                "update %s could not be recorded; answering 500 so Telegram sends it again", payload["update_id"]
            )
            self._metrics.webhook_refused.labels(reason="not_recorded").inc()
            return Response(status_code=500)
        if not fresh:
            log.info("update %s arrived again; acknowledged and ignored", payload["update_id"])
            self._metrics.webhook_duplicates.inc()
        return Response(status_code=200)


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


async def register_webhook(bot: Bot, settings: Settings, allowed_updates: list[str]) -> None:
    """Tell Telegram where to send updates; every replica sends the same values, so which one is last does not matter."""
    assert settings.telegram_webhook_secret is not None  # required by Settings in webhook mode
    await bot.set_webhook(
        url=settings.telegram_webhook_url,
        secret_token=settings.telegram_webhook_secret.get_secret_value(),
        allowed_updates=allowed_updates,
        max_connections=settings.telegram_webhook_max_connections,
    )
    log.info(
        "webhook set: %s (up to %d connections)",
        settings.telegram_webhook_url,
        settings.telegram_webhook_max_connections,
    )
