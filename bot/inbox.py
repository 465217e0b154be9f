"""The update inbox: every update is written to the database before Telegram hears it arrived, then handled.

Polling confirms an offset only after the batch is recorded; a webhook answers 200 only after `accept` returns.
So an update Telegram considers delivered is never lost by a crash, and an `update_id` seen before (a retry, a
repeat, another replica) is recognised and ignored. Handling takes updates from the database with one rule: a
chat's next update waits until its previous one is done, whichever process handles either — two quick taps
(16:9, then Generate) always take effect in that order. Slow work (generations, album collection) runs outside
this order as its own task, so a chat is never blocked by its own jobs. A pre-checkout query (no chat; Telegram
waits 10 s for its answer) is recorded as taken by the process that received it and handled at once, outside the
claim loop and its slots — and handled even when the database cannot record it in time. So is a button press
whose chat has nothing waiting (up to TAP_LANE at once): a person looking at the keyboard they tapped is not made
to wait behind the commands of a crowd received just before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from telegram import Update
from telegram.error import (
    Conflict,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application

from .process import dead_here
from .store import Store
from .tasks import at_most, complain, persist, wait_set
from .telegram_limits import tapped

log = logging.getLogger(__name__)

IDLE_POLL = 0.5  # how often to look for updates other processes recorded (besides notifications)
UPDATE_LEASE = 120.0  # a handler that has not finished by then is presumed dead with its process
KEEP_DONE = 24 * 3600.0  # ids of handled updates (and albums) are remembered this long; Telegram retries for less
HOUSEKEEPING_EVERY = 30.0
URGENT_RECORD_BUDGET = 1.5  # seconds to record a pre-checkout before it is handled unrecorded (Telegram waits 10 s)
PARSED_KEPT = 1000  # polled updates kept parsed for their handler (see Inbox._parsed)
TAP_LANE = 8  # button presses handled at once, beside the claim loop's slots (more wait their turn like any update)


def chat_of(payload: dict) -> int | None:
    """The chat an update belongs to (its order key), from the raw JSON."""
    for key in (
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "guest_message",
    ):
        if isinstance(payload.get(key), dict):
            chat = payload[key].get("chat")
            return chat.get("id") if isinstance(chat, dict) else None
    chosen = payload.get("chosen_inline_result")  # in order with the presses of its message's buttons
    if isinstance(chosen, dict) and isinstance(chosen.get("from"), dict):
        return chosen["from"].get("id")
    query = payload.get("callback_query")
    if isinstance(query, dict):
        message = query.get("message")
        if isinstance(message, dict) and isinstance(message.get("chat"), dict):
            return message["chat"].get("id")
        sender = query.get("from")
        return sender.get("id") if isinstance(sender, dict) else None
    return None


def _own_lane(payload: dict) -> bool:
    """A tap or a pre-checkout: recorded on its own, to be taken at once (`Inbox.accept`)."""
    return isinstance(payload.get("callback_query"), dict) or isinstance(payload.get("pre_checkout_query"), dict)


class Inbox:
    def __init__(
        self,
        store: Store,
        app: Application,
        *,
        owner: str,
        concurrency: int = 64,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._clock = clock  # the payments' clock, for /paysupport's waits that ran out
        self._app = app
        self._owner = owner
        self._slots = concurrency
        self._in_flight: set[asyncio.Task[None]] = set()
        self._taps: set[asyncio.Task[None]] = set()  # presses taken in their own lane (TAP_LANE)
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        # Updates this process polled, as PTB parsed them, until it handles them: parsing a payload again costs
        # more than recording it. Another process may handle one instead, so only the newest are kept.
        self._parsed: OrderedDict[int, Update] = OrderedDict()
        store.on_wake(lambda topic: self._wake.set() if topic == "updates" else None)

    async def accept(self, payload: dict) -> bool:
        """Record one update (raises if it could not be recorded); False for an update seen before."""
        update_id = payload.get("update_id")
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            raise ValueError("not an update: no integer update_id")
        if isinstance(payload.get("callback_query"), dict) and len(self._taps) < TAP_LANE:
            return await self._accept_tap(update_id, payload)
        urgent = isinstance(payload.get("pre_checkout_query"), dict)
        if urgent:
            try:
                record = self._store.updates.record_update(update_id, None, payload, self._owner, UPDATE_LEASE)
                new = await at_most(record, URGENT_RECORD_BUDGET)
            except Exception as exc:  # answered all the same: a "try again" now beats Telegram's timeout
                complain(log, f"pre-checkout update {update_id} not recorded; answered anyway", exc)
                new = True
        else:
            new = await self._store.updates.record_update(update_id, chat_of(payload), payload, None, UPDATE_LEASE)
        if new and urgent:
            self._spawn(update_id, payload)
        elif new:
            self._wake.set()
        else:
            log.info("update %s seen before; ignored", update_id)
        return new

    async def _accept_tap(self, update_id: int, payload: dict) -> bool:
        """A press goes ahead of the waiting updates of other chats, never ahead of its own chat's."""
        kept = await self._store.updates.record_tap(update_id, chat_of(payload), payload, self._owner, UPDATE_LEASE)
        if kept == "taken":
            self._taps.add(self._spawn(update_id, payload))
        elif kept == "queued":
            self._wake.set()
        else:
            log.info("update %s seen before; ignored", update_id)
        return kept != "seen"

    def start(self) -> None:
        self._loops.append(asyncio.create_task(self._dispatch(), name="inbox-dispatch"))

    def start_polling(self, *, timeout: int, allowed_updates: list[str]) -> None:
        self._loops.append(asyncio.create_task(self._poll(timeout, allowed_updates), name="inbox-poll"))

    async def stop(self, grace: float = 10.0) -> None:
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=grace)

    # ---- intake: long polling ----

    async def _poll(self, timeout: int, allowed_updates: list[str]) -> None:
        """getUpdates, record the batch, and only then ask for the next one (which confirms this one)."""
        bot = self._app.bot
        last = await self._store.updates.last_update_id()
        offset = last + 1 if last is not None else None
        delay = 1.0
        while True:
            try:
                batch = await bot.get_updates(offset=offset, timeout=timeout, allowed_updates=allowed_updates)
            except RetryAfter as exc:
                await asyncio.sleep(
                    min(
                        float(
                            exc.retry_after
                            if isinstance(exc.retry_after, (int, float))
                            else exc.retry_after.total_seconds()
                        ),
                        60,
                    )
                )
                continue
            except InvalidToken:
                raise
            except (TimedOut, NetworkError) as exc:
                log.warning("getUpdates failed (%s); again in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
                continue
            except Conflict:
                log.error("another process is polling this bot, or a webhook is set; polling again in 10 s")
                await asyncio.sleep(10)
                continue
            except TelegramError as exc:
                log.warning("getUpdates refused (%s); again in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
                continue
            delay = 1.0
            payloads = [update.to_dict() for update in batch]
            for update in batch:
                self._parsed[update.update_id] = update
                if len(self._parsed) > PARSED_KEPT:
                    self._parsed.popitem(last=False)
            # The plain updates in one write (a crowd's commands are recorded at once, and the taps after them
            # are not kept waiting behind a write each); then taps and pre-checkouts one by one, as `accept` takes
            # them — but a tap followed in this batch by another update of its chat is recorded with the plain
            # ones, so that none of its chat is handled before it.
            own: list[dict] = []
            plain: list[dict] = []
            later: set[int | None] = set()
            for payload in reversed(payloads):
                chat = chat_of(payload)
                if _own_lane(payload) and (chat is None or chat not in later):
                    own.insert(0, payload)
                else:
                    plain.insert(0, payload)
                    later.add(chat)
            new = await self._record_batch(plain)
            for payload in own:
                if await self._record(payload):
                    new.add(payload["update_id"])
            for update in batch:
                if update.update_id not in new:
                    self._parsed.pop(update.update_id, None)
                offset = update.update_id + 1

    async def _record_batch(self, payloads: list[dict]) -> set[int]:
        """Recording must succeed before the offset moves on: a database that is down is waited for."""
        batch = [(p["update_id"], chat_of(p), p) for p in payloads]
        new = await persist(lambda: self._store.updates.record_updates(batch), "record updates", log)
        if new:
            self._wake.set()
        for payload in payloads:
            if payload["update_id"] not in new:
                log.info("update %s seen before; ignored", payload["update_id"])
        return new

    async def _record(self, payload: dict) -> bool:
        """Recording must succeed before the offset moves on: a database that is down is waited for."""
        return await persist(lambda: self.accept(payload), f"record update {payload.get('update_id')}", log)

    # ---- handling ----

    async def _dispatch(self) -> None:
        swept = -HOUSEKEEPING_EVERY  # at once: a restart hands out what the previous run was handling
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            free = self._slots - len(self._in_flight) + len(self._taps)  # the taps' lane is not the loop's
            claimed: list[tuple[int, dict]] = []
            if free > 0:
                try:
                    claimed = await self._store.updates.claim_update(self._owner, UPDATE_LEASE, free)
                except Exception as exc:
                    complain(log, "could not read the inbox", exc)
            for update_id, payload in claimed:
                self._spawn(update_id, payload)
            if loop.time() - swept > HOUSEKEEPING_EVERY:
                swept = loop.time()
                await self._housekeeping()
            if claimed and len(claimed) == free:
                continue
            await wait_set(self._wake, IDLE_POLL)

    async def _housekeeping(self) -> None:
        """Updates whose process died while handling them are handled again; old ids and albums, and /paysupport
        waits and links to buyers that ran out, are forgotten."""
        try:
            if await self._store.updates.reap_updates(dead_here):
                self._wake.set()
            await self._store.updates.prune_updates(time.time() - KEEP_DONE)
            await self._store.albums.prune_albums(time.time() - KEEP_DONE)
            await self._store.support.prune_waits(self._clock())
            await self._store.support.prune_links(self._clock())
        except Exception as exc:
            complain(log, "inbox housekeeping failed", exc)

    def _spawn(self, update_id: int, payload: dict) -> asyncio.Task[None]:
        task = asyncio.create_task(self._handle(update_id, payload), name=f"update-{update_id}")
        self._in_flight.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._taps.discard(task)
        self._wake.set()

    async def _handle(self, update_id: int, payload: dict) -> None:
        try:
            update: Any = self._parsed.pop(update_id, None) or Update.de_json(payload, self._app.bot)
            with _tap_of(update):
                await self._app.process_update(update)
        except Exception:
            log.exception("update %s could not be handled", update_id)
        finally:
            with contextlib.suppress(Exception):  # not marked done: handled again after its lease (UPDATE_LEASE)
                await persist(
                    lambda: self._store.updates.update_done(update_id),
                    f"mark update {update_id} handled",
                    log,
                    attempts=20,
                )


def _tap_of(update: Update) -> contextlib.AbstractContextManager[None]:
    """A button press: the redraw of the message pressed answers a person, and goes first (`tapped`)."""
    query = update.callback_query
    if query is None:
        return contextlib.nullcontext()
    message = query.message
    return tapped(
        message.chat.id if message else None, message.message_id if message else None, query.inline_message_id
    )
