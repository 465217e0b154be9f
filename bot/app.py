"""Wiring: build the Application, start its services, run polling until told to stop, stop gracefully."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from pathlib import Path

from telegram import Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CommandHandler,
    TypeHandler,
)
from telegram.request import HTTPXRequest

from . import metrics
from .bot_api import ObservedLimiter, wait_for_bot_api
from .config import Settings
from .delivery import HEAVY_DELIVERY_MB, MB, Uploads
from .handlers import (
    admin,
    cancel,
    choices,
    common,
    history,
    improve,
    inline,
    intake,
    models,
    payments,
    results,
    styles,
)
from .handlers import settings as settings_handlers
from .handlers.replies import MESSAGES
from .imagegen import ImageClient
from .inbox import Inbox
from .jobs.queue import JobQueue
from .jobs.worker import Worker
from .menus import Command, Menu
from .originals import OriginalsStore
from .presentation import Finisher, StatusLines, TelegramPresentation
from .process import process_name
from .prompt_service import PromptService
from .prompthelper import PromptHelper
from .purchases import Purchases
from .quota import Quota
from .request_service import RequestService
from .serve.http import HttpServer, build_app
from .serve.readiness import Readiness
from .serve.webhook import WebhookEndpoint, register_webhook
from .services import KEY, Services
from .store import Caps, Store, make_store
from .style_service import StyleBook, log_unoffered_models
from .styles import load_library
from .telegram_limits import TAP_SLOTS, BotApiRequest
from .telegram_references import AlbumCollector, ReferenceFetcher

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [
    Update.MESSAGE,
    Update.EDITED_MESSAGE,
    Update.CALLBACK_QUERY,
    Update.CHANNEL_POST,
    Update.PRE_CHECKOUT_QUERY,
    Update.INLINE_QUERY,
    Update.CHOSEN_INLINE_RESULT,
    Update.GUEST_MESSAGE,
]
# The handler modules, each a feature: its commands (one list: the handlers and the command menu) and handlers.
# inline goes first: a guest message or a message via the bot must never reach the ordinary message handlers; then
# styles: a file captioned /preset import is its, before the intake takes any file as a picture. (The buyer's message
# /paysupport waits for is taken even earlier, in a group of its own: payments.AHEAD.)
FEATURES = [
    inline,
    styles,
    payments,
    intake,
    choices,
    improve,
    results,
    cancel,
    settings_handlers,
    history,
    models,
    common,
    admin,
]
COMMANDS = [command for feature in FEATURES for command in feature.COMMANDS]


def commands_of(settings: Settings) -> list[Command]:
    """The commands this bot answers and lists: without STARS_PACKS nothing about buying (payments.SALES)."""
    return [command for command in COMMANDS if settings.stars_packs or command.name not in payments.SALES]


STOP_SLACK = 3.0  # seconds past SHUTDOWN_GRACE_SECONDS for the last status lines of a stop


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
        .request(
            BotApiRequest(
                connection_pool_size=pool + TAP_SLOTS,
                pool_timeout=30.0,
                connect_timeout=15.0,
                read_timeout=30.0,
                write_timeout=30.0,
                media_write_timeout=600.0,
            )
        )
        .get_updates_request(HTTPXRequest(read_timeout=40.0))
    )
    app = builder.build()
    app.bot_data["settings"] = settings
    app.add_handler(TypeHandler(Update, common.gate), group=-2)
    if settings.stars_packs:  # the message /paysupport waits for: before any command, prompt or picture handler
        app.add_handlers(payments.AHEAD, group=-1)
    app.add_handlers(inline.START_PAYLOADS)  # `/start <payload>` of a deep link, before /start itself
    for command in commands_of(settings):  # first: every module's plain-text and unknown-command handlers come after
        app.add_handler(CommandHandler(command.name, command.callback, filters=MESSAGES))
    for feature in FEATURES:
        app.add_handlers(feature.HANDLERS)
    app.add_error_handler(common.on_error)
    return app


async def start_services(
    app: Application,
    clock: Callable[[], float] | None = None,
    *,
    intake: bool = True,
    free_space: Callable[[Path], int] | None = None,
) -> Services:
    """Build what a running bot shares; a worker (`intake=False`) takes no updates and never touches getUpdates
    or webhooks, whatever its environment says."""
    settings: Settings = app.bot_data["settings"]
    store = make_store(settings.database)
    await store.open()  # first: a bad database stops the start before anything else is built
    originals = OriginalsStore(
        settings.data_dir / "originals",
        settings.originals_max_age_hours,
        settings.originals_max_total_mb,
        shared=store if store.shares_originals else None,
        memory_mb=settings.image_memory_mb,
        min_free_mb=settings.data_min_free_mb,
        **({"free_space": free_space} if free_space else {}),
    )
    originals.open()
    client = ImageClient.from_settings(
        settings, max_connections=max(settings.jobs_here, 1) * 2, spool_dir=settings.data_dir / "spool"
    )
    client.open()
    quota = Quota(store, settings, clock or time.time)
    library = load_library(settings.styles_file)
    log_unoffered_models(library, settings.offered)
    style_book = StyleBook(library, store.presets)
    references = ReferenceFetcher(
        app.bot, originals, settings.data_dir / "spool", library.picture_files, keep_measured=settings.jobs_here > 0
    )
    name = process_name()
    caps = Caps(settings.max_concurrent_generations, settings.user_max_running)
    lines = StatusLines(app.bot, store, caps, owner=name, name_models=len(settings.offered) > 1)
    # images over 10 MB previewed, made to fit and uploaded at once: from the same memory as the downloads
    uploads = Uploads(
        settings.telegram_max_upload_mb * MB,
        settings.data_dir / "spool",
        asyncio.Semaphore(max(1, settings.image_memory_mb // HEAVY_DELIVERY_MB)),
        HEAVY_DELIVERY_MB * MB,
    )
    finisher = Finisher(
        app.bot,
        store,
        originals,
        lines,
        uploads=uploads,
        lease=settings.job_lease_seconds,
        admins=settings.admin_user_ids,
        name_models=len(settings.offered) > 1,
        inline_storage=settings.inline_storage_chat_id,
    )
    presentation = TelegramPresentation(lines, finisher)
    queue = JobQueue(
        store,
        quota,
        presentation,
        owner=name,
        lease=settings.job_lease_seconds,
        user_max_running=settings.user_max_running,
        user_max_waiting=settings.user_max_waiting,
    )
    worker = Worker(
        store,
        client,
        originals,
        quota,
        references,
        presentation,
        name=name,
        concurrency=settings.jobs_here,
        caps=caps,
        lease=settings.job_lease_seconds,
        retry_on_size_mismatch=settings.retry_on_size_mismatch,
    )
    lines.holds = worker.holds
    queue.on_submit(worker.wake)
    queue.on_cancel(worker.cancel_here)
    inbox = Inbox(store, app, owner=name, clock=clock or time.time) if intake else None
    requests = RequestService(store.pending, store.prefs, queue, settings, style_book)
    services = Services(
        settings,
        client,
        store,
        originals,
        queue,
        requests,
        store.prefs,
        store.access,
        store.history,
        quota,
        AlbumCollector(store),
        references,
        worker,
        presentation,
        inbox,
        uploads,
        Menu([c for c in commands_of(settings) if not c.several_models or len(settings.offered) > 1]),
        Purchases(store, settings, clock or time.time),
        style_book,
        prompts=prompt_service(settings, quota, store),
    )
    app.bot_data[KEY] = services
    await store.credits.refund_unfinished_failures()
    if services.prompts is not None:
        await services.prompts.start()
    if settings.stars_packs and not settings.payments_on:
        log.warning("STARS_PACKS is set but USER_DAILY_QUOTA=0 (unlimited): purchases will be refused")
    lines.start()
    await worker.start()
    if inbox is not None:
        inbox.start()
        try:
            for commands, scope, lang in services.menu.menus():
                await app.bot.set_my_commands(commands, scope=scope, language_code=lang)
        except Exception as exc:
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
    if services.prompts is not None:
        await services.prompts.aclose()
    await services.store.close()


def prompt_service(settings: Settings, quota: Quota, store: Store) -> PromptService | None:
    """The prompt helper on the image gateway and key, when PROMPT_MODEL names a chat model."""
    if not settings.prompt_model:
        return None
    helper = PromptHelper(
        settings.image_api_base_url,
        settings.image_api_key.get_secret_value(),
        settings.prompt_model,
        timeout=settings.prompt_helper_timeout,
        concurrency=settings.prompt_helper_concurrency,
    )
    return PromptService(
        helper, quota, settings.prompt_helper_credits, store.helper_calls, settings.prompt_helper_timeout
    )


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
    helper = f"; prompt helper {settings.prompt_model}" if settings.prompt_model else ""
    storage = settings.inline_storage_chat_id
    inline_mode = f"inline mode on (storage chat {storage})" if storage else "inline mode off (INLINE_STORAGE_CHAT_ID)"
    return (
        f"ready as @{username}: {mode}, {jobs}; image API {settings.image_api_base_url} "
        f"{settings.describe_models()}{helper}; database {services.store.describe()}{http}; {inline_mode}"
    )


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
        endpoint = WebhookEndpoint(
            settings.telegram_webhook_secret.get_secret_value(), services.inbox, metrics.current()
        )
        webhook = (settings.webhook_path, endpoint)
    return HttpServer(build_app(readiness, metrics.current(), webhook), settings.http_host, port)


async def run_bot(
    settings: Settings,
    stop: asyncio.Event,
    *,
    poll_timeout: int = 30,
    clock: Callable[[], float] | None = None,
    intake: bool = True,
    free_space: Callable[[Path], int] | None = None,
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
            # What start-up built (modules, the application, the services) lives until the stop: the collector
            # need not walk it again at every full collection (a share of each image's CPU otherwise).
            gc.freeze()
            await stop.wait()
        finally:
            gc.unfreeze()
            log.info("stopping: no new jobs; waiting for running ones")
            if server is not None:
                await server.stop()
            # Running images get the grace period to be delivered; no call waits out a flood wait beyond it.
            app.bot.rate_limiter.drain(settings.shutdown_grace_seconds + STOP_SLACK)
            if app.running:
                await app.stop()
            await stop_services(app)
            log.info("stopped")
