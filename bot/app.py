"""Wiring: build the Application, start its services, run polling until told to stop, stop gracefully."""

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
from pathlib import Path
from typing import Any

from telegram import Update
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import HTTPXRequest

from . import metrics
from .config import Settings
from .delivery import HEAVY_DELIVERY_MB, MB, Uploads
from .handlers import admin, common, history, imagine
from .handlers import settings as settings_handlers
from .imagegen import ImageClient
from .inbox import Inbox
from .jobs.queue import JobQueue
from .keyboards import Action
from .jobs.worker import Worker
from .menus import command_menus
from .originals import OriginalsStore
from .presentation import Finisher, StatusLines, TelegramPresentation
from .process import process_name
from .quota import Quota
from .references import AlbumCollector, ReferenceFetcher
from .serve.http import HttpServer, build_app
from .serve.readiness import Readiness
from .serve.webhook import WebhookEndpoint, register_webhook
from .services import KEY, Services
from .store import Caps, make_store
from .telegram_limits import TAP_SLOTS, BotApiRequest, TelegramLimiter

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY, Update.CHANNEL_POST]
STOP_SLACK = 3.0  # seconds past SHUTDOWN_GRACE_SECONDS for the last status lines of a stop


class BotApiUnreachable(Exception):
    """The Bot API did not answer within TELEGRAM_STARTUP_WAIT_SECONDS; the message is the operator's one line."""


class NotTheBotApi(Exception):
    """Something answered at TELEGRAM_API_BASE_URL, but not the Bot API (a web page, another service): a wrong
    address, not a wrong token. The message is the operator's one line."""


_NOT_JSON = re.compile(r"^(?P<status>.+?) \((?P<code>\d+)\)\. Parsing the server response (?P<body>.*) failed$",
                       re.DOTALL)


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
    return NotTheBotApi(f"the server at {url} answered {answer} with something that is not the Telegram Bot API"
                        f"{body}; check TELEGRAM_API_BASE_URL (Telegram's own is https://api.telegram.org/bot)")


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

    async def process_request(self, callback: Callable[..., Any], args: Any, kwargs: dict[str, Any],
                              endpoint: str, data: dict[str, Any], rate_limit_args: dict[str, Any] | None) -> Any:  # noqa: D102
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


def build_application(settings: Settings) -> Application:
    # Bot API calls are short; a pool beyond a few dozen connections only costs CPU (httpcore scans it per
    # request), and waiting a moment for a free connection is cheaper (see bench/README.md).
    pool = min(settings.max_concurrent_generations + 4, 16)
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.telegram_api_base_url)
        .base_file_url(settings.telegram_file_base_url)
        .rate_limiter(
            ObservedLimiter(
                overall_rate=settings.telegram_max_messages_per_second,
                share=settings.telegram_rate_share,
                max_retry_after=settings.telegram_max_retry_after,
                in_flight=pool,
            )
        )
        .updater(None)  # updates come from the inbox (bot/inbox.py), recorded before they are confirmed
        .request(BotApiRequest(connection_pool_size=pool + TAP_SLOTS, pool_timeout=30.0, connect_timeout=15.0,
                               read_timeout=30.0, write_timeout=30.0, media_write_timeout=600.0))
        .get_updates_request(HTTPXRequest(read_timeout=40.0))
    )
    app = builder.build()
    app.bot_data["settings"] = settings
    app.add_handler(TypeHandler(Update, common.gate), group=-1)
    messages = filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST  # edits never re-run a command
    commands = {
        "imagine": imagine.imagine,
        "start": common.start,
        "help": common.help_,
        "usage": common.usage,
        "cancel": common.cancel,
        "settings": settings_handlers.settings_command,
        "history": history.history,
        "id": common.id_,
        "stats": admin.stats,
        "grant": admin.grant,
        "block": admin.block,
        "unblock": admin.unblock,
    }
    for name, callback in commands.items():
        app.add_handler(CommandHandler(name, callback, filters=messages))
    private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
    app.add_handler(MessageHandler(private & filters.COMMAND, common.unknown_command))  # after every known one
    # In a private chat any plain text is a prompt: on a phone, typing /imagine each time is friction.
    plain = private & filters.TEXT & ~filters.COMMAND
    app.add_handler(MessageHandler(plain, imagine.imagine))
    # In a group, plain text is ours only as the next part of a long /imagine the app split (privacy mode off).
    group_text = filters.ChatType.GROUPS & filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND
    app.add_handler(MessageHandler(group_text, imagine.continuation))
    unusable = (filters.ANIMATION | filters.Sticker.ALL | filters.VIDEO | filters.VIDEO_NOTE | filters.VOICE
                | filters.AUDIO | filters.LOCATION | filters.VENUE | filters.CONTACT | filters.POLL | filters.Dice.ALL
                | filters.GAME | filters.STORY)
    app.add_handler(MessageHandler(unusable & messages, imagine.unusable))  # before pictures: a GIF is a document too
    pictures = (filters.PHOTO | filters.Document.ALL) & messages
    app.add_handler(MessageHandler(pictures, imagine.imagine_media, block=False))
    app.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE, imagine.on_edit))
    app.add_handler(CallbackQueryHandler(common.on_help_button, pattern=rf"^{Action.HELP}:"))
    app.add_handler(CallbackQueryHandler(history.on_history_button, pattern=rf"^{Action.HISTORY_PAGE}:"))
    app.add_handler(CallbackQueryHandler(imagine.on_button))
    app.add_error_handler(common.on_error)
    return app


async def start_services(app: Application, clock: Callable[[], float] | None = None, *,
                         intake: bool = True, free_space: Callable[[Path], int] | None = None) -> Services:
    """Build what a running bot shares; a worker (`intake=False`) takes no updates and never touches getUpdates
    or webhooks, whatever its environment says."""
    settings: Settings = app.bot_data["settings"]
    store = make_store(settings.database)
    await store.open()  # first: a bad database stops the start before anything else is built
    originals = OriginalsStore(settings.data_dir / "originals", settings.originals_max_age_hours,
                               settings.originals_max_total_mb, shared=store if store.shares_originals else None,
                               memory_mb=settings.image_memory_mb, min_free_mb=settings.data_min_free_mb,
                               **({"free_space": free_space} if free_space else {}))
    originals.open()
    client = ImageClient.from_settings(settings, max_connections=max(settings.jobs_here, 1) * 2)
    client.open()
    quota = Quota(store, settings, clock or time.time)
    references = ReferenceFetcher(app.bot, originals, settings.data_dir / "spool")
    name = process_name()
    caps = Caps(settings.max_concurrent_generations, settings.user_max_running)
    lines = StatusLines(app.bot, store, caps, owner=name)
    # images over 10 MB previewed, made to fit and uploaded at once: from the same memory as the downloads
    uploads = Uploads(settings.telegram_max_upload_mb * MB, settings.data_dir / "spool",
                      asyncio.Semaphore(max(1, settings.image_memory_mb // HEAVY_DELIVERY_MB)),
                      HEAVY_DELIVERY_MB * MB)
    finisher = Finisher(app.bot, store, originals, lines, uploads=uploads, lease=settings.job_lease_seconds,
                        admins=settings.admin_user_ids)
    presentation = TelegramPresentation(lines, finisher)
    queue = JobQueue(store, quota, presentation, owner=name, lease=settings.job_lease_seconds,
                     user_max_running=settings.user_max_running, user_max_waiting=settings.user_max_waiting)
    worker = Worker(store, client, originals, quota, references, presentation, name=name,
                    concurrency=settings.jobs_here, caps=caps, lease=settings.job_lease_seconds,
                    retry_on_size_mismatch=settings.retry_on_size_mismatch)
    lines.holds = worker.holds
    queue.on_submit(worker.wake)
    queue.on_cancel(worker.cancel_here)
    inbox = Inbox(store, app, owner=name) if intake else None
    services = Services(settings, client, store, originals, queue, quota, AlbumCollector(store), references,
                        worker, presentation, inbox, uploads)
    app.bot_data[KEY] = services
    await store.refund_unfinished_failures()
    lines.start()
    await worker.start()
    if inbox is not None:
        inbox.start()
        try:
            for commands, scope, lang in command_menus():
                await app.bot.set_my_commands(commands, scope=scope, language_code=lang)
        except Exception as exc:  # noqa: BLE001 - a missing menu must not stop the bot
            log.warning("could not register the command menu: %s", exc)
    return services


async def stop_services(app: Application) -> None:
    services: Services | None = app.bot_data.get(KEY)
    if services is None:
        return
    if services.inbox is not None:
        await services.inbox.stop()
    services.queue.close()
    await services.worker.shutdown(services.settings.shutdown_grace_seconds)
    await services.presentation.close(services.presentation.lines.waiting_groups())
    await services.client.aclose()
    await services.store.close()


def start_line(settings: Settings, services: Services, username: str, *, intake: bool) -> str:
    """The operator's one line at start: who, which image API and model, which database, which mode."""
    if not intake:
        mode = "worker (runs jobs, takes no updates)"
    elif settings.webhook:
        mode = f"webhook at {settings.telegram_webhook_url}"
    else:
        mode = "polling"
    jobs = "no jobs (an intake)" if settings.jobs_here == 0 else f"up to {settings.jobs_here} jobs at once"
    http = f", HTTP on {settings.http_host}:{settings.listen_port}" if settings.listen_port is not None else ""
    return (f"ready as @{username}: {mode}, {jobs}; image API {settings.image_api_base_url} "
            f"{settings.describe_models()}; database {services.store.describe()}{http}")


def http_server(app: Application, services: Services) -> HttpServer | None:
    """Health, readiness, metrics and (in webhook mode) the webhook; None in polling mode without HTTP_PORT."""
    settings = services.settings
    port = settings.listen_port
    if port is None:
        return None
    limiter = app.bot.rate_limiter
    assert isinstance(limiter, ObservedLimiter)
    readiness = Readiness(services.store.ping, lambda: limiter.last_answer, app.bot.get_me)
    webhook = None
    if settings.webhook and services.inbox is not None:  # a worker serves health and metrics, never a webhook
        assert settings.telegram_webhook_secret is not None  # required by Settings in webhook mode
        endpoint = WebhookEndpoint(settings.telegram_webhook_secret.get_secret_value(), services.inbox,
                                   metrics.current())
        webhook = (settings.webhook_path, endpoint)
    return HttpServer(build_app(readiness, metrics.current(), webhook), settings.http_host, port)


async def run_bot(
    settings: Settings, stop: asyncio.Event, *, poll_timeout: int = 30, clock: Callable[[], float] | None = None,
    intake: bool = True, free_space: Callable[[Path], int] | None = None,
) -> None:
    """Run until `stop` is set: the same path for `imagine-bot`, `imagine-bot worker` (`intake=False`) and the
    tests (which may pass a clock, and how free space on DATA_DIR's disk is measured)."""
    metrics.bind(metrics.Metrics())
    app = build_application(settings)
    try:
        await wait_for_bot_api(app, settings)
    except BaseException:
        await app.bot.shutdown()
        raise
    async with app:  # initialize (getMe: a wrong token fails here) ... shutdown
        services = await start_services(app, clock, intake=intake, free_space=free_space)
        server = http_server(app, services)
        try:
            if server is not None:
                await server.start()
            if services.inbox is not None:
                if settings.webhook:
                    await register_webhook(app.bot, settings, ALLOWED_UPDATES)
                else:
                    await app.bot.delete_webhook()  # a webhook left behind would make getUpdates fail
                    services.inbox.start_polling(timeout=poll_timeout, allowed_updates=ALLOWED_UPDATES)
            await app.start()
            log.info("%s", start_line(settings, services, app.bot.username, intake=intake))
            await stop.wait()
        finally:
            log.info("stopping: no new jobs; waiting for running ones")
            if server is not None:
                await server.stop()
            # Running images get the grace period to be delivered; no call waits out a flood wait beyond it.
            app.bot.rate_limiter.drain(settings.shutdown_grace_seconds + STOP_SLACK)
            if app.running:
                await app.stop()
            await stop_services(app)
            log.info("stopped")
