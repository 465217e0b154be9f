"""Wiring: build the Application, start its services, run polling until told to stop, stop gracefully."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from telegram import (
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    Update,
)
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from .config import Settings
from .handlers import admin, common, history, imagine
from .handlers import settings as settings_handlers
from .imagegen import ImageClient
from .jobs import JobRunner
from .originals import OriginalsStore
from .quota import Quota
from .references import AlbumCollector, ReferenceFetcher
from .services import KEY, Services
from .store import SqliteStore
from .texts import LANGUAGES, t
from .updates import PerChatUpdateProcessor

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.CHANNEL_POST]
PRIVATE_COMMANDS = ["imagine", "help", "cancel", "settings", "history", "usage", "start"]
GROUP_COMMANDS = ["imagine", "help", "cancel", "history", "usage", "settings"]


def command_menus() -> list[tuple[list[BotCommand], BotCommandScope | None, str | None]]:
    """The menu per scope (private chats, groups) and language; the default one is English."""
    menus: list[tuple[list[BotCommand], BotCommandScope | None, str | None]] = []
    for lang in [None, *LANGUAGES]:
        for names, scope in ((PRIVATE_COMMANDS, None), (PRIVATE_COMMANDS, BotCommandScopeAllPrivateChats()),
                             (GROUP_COMMANDS, BotCommandScopeAllGroupChats())):
            if lang is not None and scope is None:
                continue
            menus.append(([BotCommand(n, t(f"cmd_{n}", lang)) for n in names], scope, lang))
    return menus


class BoundedRateLimiter(AIORateLimiter):
    """PTB's limiter, plus a cap on Bot API calls in flight. Calls over the cap wait here, in an asyncio
    semaphore, instead of in httpcore's pool queue, whose bookkeeping costs CPU per queued call per connection."""

    def __init__(self, *, in_flight: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._in_flight = asyncio.Semaphore(in_flight)

    async def process_request(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        async with self._in_flight:
            return await super().process_request(*args, **kwargs)


def build_application(settings: Settings) -> Application:
    # Bot API calls are short; a pool beyond a few dozen connections only costs CPU (httpcore scans it per
    # request), and waiting a moment for a free connection is cheaper (see bench/README.md).
    pool = min(settings.max_concurrent_generations + 4, 16)
    app = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.telegram_api_base_url)
        .base_file_url(settings.telegram_file_base_url)
        .rate_limiter(
            BoundedRateLimiter(
                in_flight=pool,
                overall_max_rate=settings.telegram_max_messages_per_second,
                group_max_rate=20,
                group_time_period=60,
                max_retries=5,
            )
        )
        .concurrent_updates(PerChatUpdateProcessor(64))
        .connection_pool_size(pool)
        .pool_timeout(30.0)
        .connect_timeout(15.0)
        .read_timeout(30.0)
        .write_timeout(30.0)
        .media_write_timeout(600.0)
        .get_updates_read_timeout(40.0)
        .build()
    )
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
        "stats": admin.stats,
        "grant": admin.grant,
        "block": admin.block,
        "unblock": admin.unblock,
    }
    for name, callback in commands.items():
        app.add_handler(CommandHandler(name, callback, filters=messages))
    # In a private chat any plain text is a prompt: on a phone, typing /imagine each time is friction.
    plain = filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND & filters.UpdateType.MESSAGE
    app.add_handler(MessageHandler(plain, imagine.imagine))
    pictures = (filters.PHOTO | filters.Document.ALL) & messages
    app.add_handler(MessageHandler(pictures, imagine.imagine_media, block=False))
    app.add_handler(CallbackQueryHandler(imagine.on_button))
    app.add_error_handler(common.on_error)
    return app


async def start_services(app: Application, clock: Callable[[], float] | None = None) -> Services:
    settings: Settings = app.bot_data["settings"]
    store = SqliteStore(settings.database)
    await store.open()  # first: a bad database stops the start before anything else is built
    originals = OriginalsStore(settings.data_dir / "originals", settings.originals_max_age_hours,
                               settings.originals_max_total_mb)
    originals.open()
    client = ImageClient.from_settings(settings, max_connections=settings.max_concurrent_generations * 2)
    client.open()
    quota = Quota(store, settings, clock or time.time)
    references = ReferenceFetcher(app.bot, originals)
    runner = JobRunner(
        app.bot,
        store,
        client,
        originals,
        quota,
        references,
        max_concurrent=settings.max_concurrent_generations,
        user_max_running=settings.user_max_running,
        user_max_waiting=settings.user_max_waiting,
        retry_on_size_mismatch=settings.retry_on_size_mismatch,
        admins=settings.admin_user_ids,
        memory_mb=settings.image_memory_mb,
    )
    services = Services(settings, client, store, originals, runner, quota, AlbumCollector(), references)
    app.bot_data[KEY] = services
    runner.start()
    await runner.resume()
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
    await services.runner.shutdown(services.settings.shutdown_grace_seconds)
    await services.client.aclose()
    await services.store.close()


async def run_bot(
    settings: Settings, stop: asyncio.Event, *, poll_timeout: int = 30, clock: Callable[[], float] | None = None
) -> None:
    """Run until `stop` is set: the same path for `imagine-bot` and for the tests (which may pass a clock)."""
    app = build_application(settings)
    async with app:  # initialize (getMe: a wrong token fails here) ... shutdown
        await start_services(app, clock)
        await app.updater.start_polling(timeout=poll_timeout, allowed_updates=ALLOWED_UPDATES)
        await app.start()
        log.info("ready as @%s", app.bot.username)
        try:
            await stop.wait()
        finally:
            log.info("stopping: no new jobs; waiting for running ones")
            if app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
            await stop_services(app)
            log.info("stopped")
