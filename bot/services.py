"""The services a running bot shares, built once at start and kept in `application.bot_data`."""

from __future__ import annotations

from dataclasses import dataclass, field

from telegram.ext import ContextTypes

from .config import Settings
from .imagegen import ImageClient
from .inbox import Inbox
from .jobs.queue import JobQueue
from .jobs.worker import Worker
from .delivery import Uploads
from .originals import OriginalsStore
from .presentation import TelegramPresentation
from .quota import Quota
from .telegram_references import AlbumCollector, ReferenceFetcher
from .store import Store
from .telegram_limits import RefusalPacer

KEY = "services"


@dataclass(slots=True)
class Services:
    settings: Settings
    client: ImageClient
    store: Store
    originals: OriginalsStore
    queue: JobQueue
    quota: Quota
    albums: AlbumCollector
    references: ReferenceFetcher
    worker: Worker
    presentation: TelegramPresentation
    inbox: Inbox | None  # None in a worker, which takes no updates
    uploads: Uploads
    refusals: RefusalPacer = field(default_factory=RefusalPacer)


def get_services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.bot_data[KEY]
