"""The services a running bot shares, built once at start and kept in `application.bot_data`."""

from __future__ import annotations

from dataclasses import dataclass, field

from telegram.ext import ContextTypes

from .config import Settings
from .delivery import Uploads
from .imagegen import ImageClient
from .inbox import Inbox
from .jobs.queue import JobQueue
from .jobs.worker import Worker
from .menus import Menu
from .originals import OriginalsStore
from .presentation import TelegramPresentation
from .prompt_service import PromptService
from .purchases import Purchases
from .quota import Quota
from .request_service import RequestService
from .store import Store
from .store.access import Access
from .store.history import History
from .store.prefs import PrefsTable
from .style_service import StyleBook
from .telegram_limits import RefusalPacer
from .telegram_references import AlbumCollector, ReferenceFetcher

KEY = "services"


@dataclass(slots=True)
class Services:
    """What handlers use are the services from `requests` on; the fields above them are the wiring (`app.py`
    opens, pings and closes the store; tests/test_layers.py checks that no handler reaches it)."""

    settings: Settings
    client: ImageClient
    store: Store
    originals: OriginalsStore
    queue: JobQueue
    requests: RequestService
    prefs: PrefsTable  # remembered defaults
    access: Access  # blocked users, first notices
    history: History  # what was made, for /history and /stats
    quota: Quota
    albums: AlbumCollector
    references: ReferenceFetcher
    worker: Worker
    presentation: TelegramPresentation
    inbox: Inbox | None  # None in a worker, which takes no updates
    uploads: Uploads
    menu: Menu  # the command menus, from the commands the handler modules export
    purchases: Purchases  # credits bought with Telegram Stars
    styles: StyleBook  # the styles and presets a chat offers
    refusals: RefusalPacer = field(default_factory=RefusalPacer)
    prompts: PromptService | None = None  # the prompt helper; None: PROMPT_MODEL is empty, nothing of it shown


def get_services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.bot_data[KEY]
