"""The services a running bot shares, built once at start and kept in `application.bot_data`."""

from __future__ import annotations

from dataclasses import dataclass, field

from telegram.ext import ContextTypes

from .config import Settings
from .imagegen import ImageClient
from .jobs import JobRunner
from .originals import OriginalsStore
from .quota import Quota
from .references import AlbumCollector, ReferenceFetcher
from .store import Store
from .telegram_limits import RefusalPacer

KEY = "services"


@dataclass(slots=True)
class Services:
    settings: Settings
    client: ImageClient
    store: Store
    originals: OriginalsStore
    runner: JobRunner
    quota: Quota
    albums: AlbumCollector
    references: ReferenceFetcher
    refusals: RefusalPacer = field(default_factory=RefusalPacer)


def get_services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.bot_data[KEY]
