"""Outgoing Bot API calls: flood waits kept to their chat, a person's tap first, results before progress,
transient failures retried.

PTB's `AIORateLimiter` pauses every call of the process on any `RetryAfter` and waits it out however long it is;
one flooded chat froze all of them. Here each chat (and the calls without a chat) is a lane with its own flood
wait and pacing; one dispatcher hands out the overall budget and the in-flight slots by priority. It runs only when
something happens (a call arrives or ends, or the one timer fires at the earliest lane deadline), so its cost does
not grow with the number of chats or jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Hashable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from enum import IntEnum
from http import HTTPStatus
from typing import Any

from telegram import InputFile
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter
from telegram.request import HTTPXRequest

from .tasks import wait_set

log = logging.getLogger(__name__)

RESULT_METHODS = frozenset({"sendPhoto", "sendDocument", "sendMediaGroup"})
RETRY_BUDGET = 120.0  # seconds a call to a chat keeps being retried on network errors and 5xx
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 15.0
PROGRESS_MAX_WAIT = 1.0  # a progress edit not sent by then is dropped: a newer one will say more
PRIVATE_RATE, PRIVATE_BURST = 1.0, 10.0  # Telegram: about one message a second per chat, short bursts allowed
GROUP_MESSAGES, GROUP_PERIOD = 20.0, 60.0  # Telegram: 20 messages a minute per group or channel
PROGRESS_RESERVE = 0.25  # share of the overall burst and of the in-flight slots progress never takes
SWEEP_AT_LEAST = 1024  # lanes kept before idle ones are forgotten
REFUSAL_EVERY, REFUSAL_BURST = 5.0, 2.0  # a user flooding the bot hears "no" twice, then once per 5 s
TAP_WINDOW = 15.0  # seconds a tapped message's redraw counts as the answer to the tap (Telegram's callback window)
TAP_SLOTS = 2  # in-flight slots over the cap that only taps use: a slow upload in every slot never holds one

Result = bool | dict[str, Any] | list[dict[str, Any]]


class FloodWaitTooLong(TelegramError):
    """Telegram asked this chat to wait longer than a call waits in line (`TELEGRAM_MAX_RETRY_AFTER`, or the time
    left before a stop): the call is not made. A `TelegramError`, so every caller already handles it."""


class Refused(TelegramError):
    """Telegram answered with a status no retry can change (413 Request Entity Too Large, 414, 405, …), which
    PTB would raise as a `NetworkError`, the class of transient failures that are retried."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# What PTB already raises as its own final errors (400, 401, 403, 404, 409) or handles as transient (408 Request
# Timeout, 429 without retry_after): every other 4xx is a refusal.
_NOT_REFUSALS = frozenset({400, 401, 403, 404, 408, 409, 429})


class BotApiRequest(HTTPXRequest):
    """PTB's HTTPX request, with the 4xx answers it would raise as a retryable `NetworkError` made `Refused`.

    A 413 for an original over the upload limit was retried for two minutes (0.5 s doubling to 15 s) while the
    other results waited behind it; now it ends at once and the delivery sends what fits."""

    async def do_request(self, url: str, method: str, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        status, payload = await super().do_request(url, method, *args, **kwargs)
        if 400 <= status < 500 and status not in _NOT_REFUSALS:
            try:
                description = self.parse_json_payload(payload).get("description")
            except TelegramError:  # a proxy's HTML page, as nginx answers 413
                description = None
            phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Refused"
            raise Refused(status, f"{description or phrase} ({status})")
        return status, payload


class Priority(IntEnum):
    TAP = 0  # a person's tap: its callback answer (or pre-checkout answer) and the redraw of the message tapped
    NO_CHAT = 1  # file look-ups, menus: tiny, and someone may be waiting for them
    RESULT = 2  # the image a user waits (and paid) for
    NORMAL = 3  # first status lines, final status texts, replies
    PROGRESS = 4  # routine status edits and chat actions: dropped rather than waited for


@dataclass(frozen=True, slots=True)
class _Tapped:
    chat: int | str | None
    message_id: int | None
    inline_message_id: str | None
    until: float  # time.monotonic()


_TAPPED: ContextVar[_Tapped | None] = ContextVar("tapped", default=None)


@contextlib.contextmanager
def tapped(chat: int | str | None, message_id: int | None, inline_message_id: str | None = None) -> Iterator[None]:
    """While a button press is handled, edits of the message whose button was pressed are the answer to that
    person's tap: they go first (`Priority.TAP`), ahead of a crowd's new status lines. Set once, where callback
    queries are dispatched, so handlers stay plain; tasks started meanwhile inherit it, for `TAP_WINDOW` at most
    (Generate's "Queued" line replaces the tapped keyboard from such a task)."""
    token = _TAPPED.set(_Tapped(chat, message_id, inline_message_id, time.monotonic() + TAP_WINDOW))
    try:
        yield
    finally:
        _TAPPED.reset(token)


def _is_tap(endpoint: str, chat: int | str | None, data: dict[str, Any]) -> bool:
    """The callback answer, or an edit of the message just tapped (within the tap's window)."""
    if endpoint in ("answerCallbackQuery", "answerPreCheckoutQuery"):  # a person waits; Telegram 10 s at most
        return True
    tap = _TAPPED.get()
    if tap is None or not endpoint.startswith("edit") or time.monotonic() > tap.until:
        return False
    if tap.inline_message_id is not None:
        return data.get("inline_message_id") == tap.inline_message_id
    return chat == tap.chat and data.get("message_id") == tap.message_id


class _Bucket:
    """A token bucket: `burst` calls at once, then `rate` a second."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.tokens, self.stamp = rate, max(1.0, burst), max(1.0, burst), now

    def wait(self, now: float, need: float) -> float:
        """Seconds until `need` tokens (at most the burst) are there."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        missing = min(need, self.burst) - self.tokens
        return missing / self.rate if missing > 0 else 0.0

    def take(self, cost: float) -> None:
        self.tokens -= cost


@dataclass(eq=False, slots=True)
class _Ticket:
    priority: Priority
    cost: float  # messages this call sends (an album counts each picture)
    counted: bool  # a message sent or edited: spends the overall budget
    paced: bool  # a new message: spends its chat's budget too (Telegram's per-chat limits count messages)
    replaces: Hashable | None  # progress: a newer call with the same key takes this one's place
    skip_if_busy: bool  # chat actions: sent at once or not at all
    future: asyncio.Future[bool]  # True: go; False: dropped without a call; an exception: fail


class _Lane:
    """The calls waiting for one chat: in order, plus the newest progress call per message."""

    __slots__ = ("blocked_until", "bucket", "chat", "due", "listed", "progress", "queue")

    def __init__(self, chat: int | str | None, bucket: _Bucket | None) -> None:
        self.chat, self.bucket = chat, bucket
        self.blocked_until = 0.0
        self.queue: deque[_Ticket] = deque()
        self.progress: dict[Hashable, _Ticket] = {}
        self.due: float | None = None  # when its timer entry fires
        self.listed: Priority | None = None  # the ready queue it is in

    def head(self) -> _Ticket | None:
        if self.queue:
            return self.queue[0]
        return next(iter(self.progress.values()), None)

    def remove(self, ticket: _Ticket) -> None:
        if ticket.replaces is not None:
            if self.progress.get(ticket.replaces) is ticket:
                del self.progress[ticket.replaces]
        else:
            with contextlib.suppress(ValueError):
                self.queue.remove(ticket)

    def __bool__(self) -> bool:
        return bool(self.queue or self.progress)


def _chat_of(data: dict[str, Any]) -> int | str | None:
    chat = data.get("chat_id")
    if chat is None:
        return None
    with contextlib.suppress(ValueError, TypeError):
        return int(chat)
    return str(chat)  # "@channelname"


def _rewind(data: dict[str, Any]) -> None:
    """A retried upload must send its file from the start again, also when it streams from an open file."""
    for value in data.values():
        for item in value if isinstance(value, list) else [value]:
            media = getattr(item, "media", item)
            if isinstance(media, InputFile) and hasattr(media.input_file_content, "seek"):
                media.input_file_content.seek(0)


class TelegramLimiter(BaseRateLimiter[dict[str, Any]]):
    """Rate limits, priorities and retries for every Bot API call but getUpdates.

    - Flood waits are per chat: a `RetryAfter` delays later calls to that chat only; one longer than
      `max_retry_after` is not waited out (`FloodWaitTooLong`, with a log line).
    - A person's tap goes first: `answerCallbackQuery`, and edits of the message tapped (`tapped`), within the
      overall budget but ahead of everything else, with `TAP_SLOTS` in-flight slots of their own. Edits are not
      paced per chat (Telegram's per-chat limits count new messages), and a person never taps faster than them.
    - Results go next, then other calls to chats; progress calls (`rate_limit_args={"progress": True}`, and every
      `sendChatAction`) never take the budget a result needs: under pressure an edit waits for a newer one of the
      same message or is dropped (returning True, what Telegram answers for an edit), and chat actions are skipped.
    - Overall `overall_rate` messages (sent or edited) a second and 20 new messages a minute per group, both divided
      by `share` (processes sending for the same bot); about one new message a second per private chat, after a
      short burst.
    - Network errors and 5xx on calls to a chat are retried with backoff for `RETRY_BUDGET` seconds, so a 502 during
      an upload does not lose a paid image; refusals (400, 403, and `Refused`: 413 and other final 4xx) are raised
      at once. Progress calls are not retried.
    - At most `in_flight` calls at once (httpcore's pool bookkeeping costs CPU per queued request), and
      `TAP_SLOTS` more for taps: the connection pool must hold both.
    """

    def __init__(
        self,
        *,
        overall_rate: float,
        share: int = 1,
        max_retry_after: float = 60.0,
        in_flight: int = 16,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._share = max(1, share)
        self._overall = (
            _Bucket(overall_rate / self._share, overall_rate / self._share, clock()) if overall_rate else None
        )
        self._max_retry_after = max_retry_after
        self._cap = max(1, in_flight)
        self._progress_cap = max(1, self._cap - max(1, int(self._cap * PROGRESS_RESERVE)))
        self._lanes: dict[int | str | None, _Lane] = {}
        self._sweep_at = SWEEP_AT_LEAST
        self._ready: list[deque[_Lane]] = [deque() for _ in Priority]
        self._timers: list[tuple[float, int, _Lane]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._in_flight = 0
        self._deadline: float | None = None  # set by drain(): nothing waits beyond it
        self._draining = asyncio.Event()

    async def initialize(self) -> None:
        """Nothing to set up: lanes are made on first use."""

    async def shutdown(self) -> None:
        """Whatever still waits fails now rather than holding the stop."""
        self.drain(0.0)

    def drain(self, seconds: float) -> None:
        """Stopping: from now on no call waits (in line, for a flood wait or a retry) beyond `seconds` from now."""
        self._deadline = self._clock() + seconds
        self._draining.set()
        for lane in list(self._lanes.values()):
            if lane:
                self._list(lane)
        self._dispatch()

    # ------------------------------------------------------------------ one call

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> Result:
        """Wait for this call's turn, make it, and retry it where that is safe and worth it."""
        chat = _chat_of(data)
        progress = endpoint == "sendChatAction" or bool((rate_limit_args or {}).get("progress"))
        if progress:
            priority = Priority.PROGRESS
        elif _is_tap(endpoint, chat, data):
            priority = Priority.TAP
        elif chat is None:
            priority = Priority.NO_CHAT
        else:
            priority = Priority.RESULT if endpoint in RESULT_METHODS else Priority.NORMAL
        counted = (
            chat is not None
            and endpoint.startswith(("send", "edit", "copy", "forward"))
            and endpoint != "sendChatAction"
        )
        new_message = counted and not endpoint.startswith("edit")
        cost = float(len(data.get("media") or ()) or 1) if endpoint == "sendMediaGroup" else 1.0
        replaces: Hashable | None = None
        if progress:
            replaces = (
                ("action", data.get("message_thread_id"))
                if endpoint == "sendChatAction"
                else ("edit", data.get("message_id"), data.get("inline_message_id"))
            )
        elif endpoint.startswith(("edit", "delete")) and chat is not None:
            self._drop_progress(chat, ("edit", data.get("message_id"), data.get("inline_message_id")))
        started = self._clock()
        delay = BACKOFF_FIRST
        retry = False
        while True:
            ticket = _Ticket(
                priority,
                cost,
                counted,
                new_message,
                replaces,
                endpoint == "sendChatAction",
                asyncio.get_running_loop().create_future(),
            )
            if not await self._admit(chat, ticket, front=retry):
                return True  # superseded or skipped: for an edit or a chat action, True is Telegram's own answer
            retry = True
            try:
                try:
                    return await callback(*args, **kwargs)
                finally:
                    self._in_flight -= 1
                    self._dispatch()
            except RetryAfter as exc:
                seconds = exc._retry_after.total_seconds()
                self._block(chat, seconds)
                if progress:
                    log.debug("%s to chat %s: flood wait %.0f s; progress dropped", endpoint, chat, seconds)
                    return True
                if seconds > self._max_retry_after or self._clock() - started + seconds > RETRY_BUDGET:
                    log.warning(
                        "%s to chat %s: Telegram asks to wait %.0f s, longer than TELEGRAM_MAX_RETRY_AFTER "
                        "(%.0f s) or the retry budget; not sent",
                        endpoint,
                        chat,
                        seconds,
                        self._max_retry_after,
                    )
                    raise FloodWaitTooLong(f"flood wait of {seconds:.0f} s for chat {chat}") from exc
                log.info("%s to chat %s: flood wait %.0f s", endpoint, chat, seconds)
            except (BadRequest, Refused):
                raise  # a refusal: retrying changes nothing
            except NetworkError as exc:  # also 5xx, timeouts and connections reset mid-upload
                if progress or chat is None or self._clock() - started + delay > RETRY_BUDGET:
                    raise
                log.warning("%s to chat %s failed (%s); retrying in %.1f s", endpoint, chat, exc, delay)
                await self._pause(delay, exc)
                delay = min(delay * 2, BACKOFF_MAX)
                _rewind(data)

    async def _admit(self, chat: int | str | None, ticket: _Ticket, *, front: bool) -> bool:
        """Queue the ticket in its chat's lane and wait until the dispatcher lets it go (True) or drops it."""
        lane = self._lane(chat)
        if ticket.replaces is not None:
            older = lane.progress.pop(ticket.replaces, None)
            if older is not None and not older.future.done():
                older.future.set_result(False)
            lane.progress[ticket.replaces] = ticket
        elif front:
            lane.queue.appendleft(ticket)
        else:
            lane.queue.append(ticket)
        self._list(lane)
        self._dispatch()
        try:
            if ticket.priority is Priority.PROGRESS:
                return await asyncio.wait_for(asyncio.shield(ticket.future), PROGRESS_MAX_WAIT)
            return await ticket.future
        except TimeoutError:
            lane.remove(ticket)
            if ticket.future.done():  # granted just as the wait ran out
                return ticket.future.result()
            ticket.future.set_result(False)
            return False
        except asyncio.CancelledError:
            lane.remove(ticket)
            if (
                ticket.future.done()
                and not ticket.future.cancelled()
                and ticket.future.exception() is None
                and ticket.future.result()
            ):
                self._in_flight -= 1  # granted, never used
                self._dispatch()
            raise

    async def _pause(self, seconds: float, cause: Exception) -> None:
        """Back off before a retry; once stopping, a retry that would end past the stop's deadline is not made."""
        until = self._clock() + seconds
        if not self._draining.is_set():
            await wait_set(self._draining, seconds)
        if self._deadline is not None:
            if until > self._deadline:
                raise cause
            await asyncio.sleep(max(0.0, until - self._clock()))

    # ------------------------------------------------------------------ lanes

    def _lane(self, chat: int | str | None) -> _Lane:
        lane = self._lanes.get(chat)
        if lane is None:
            if len(self._lanes) >= self._sweep_at:
                self._sweep()
            if chat is None:
                bucket = None
            elif isinstance(chat, int) and chat > 0:
                bucket = _Bucket(PRIVATE_RATE, PRIVATE_BURST, self._clock())
            else:
                per_second = GROUP_MESSAGES / GROUP_PERIOD / self._share
                bucket = _Bucket(per_second, GROUP_MESSAGES / self._share, self._clock())
            lane = self._lanes[chat] = _Lane(chat, bucket)
        return lane

    def _block(self, chat: int | str | None, seconds: float) -> None:
        lane = self._lane(chat)
        lane.blocked_until = max(lane.blocked_until, self._clock() + seconds)

    def _drop_progress(self, chat: int | str, key: Hashable) -> None:
        """A final edit or a deletion of a message: a progress edit still waiting for it must not land after."""
        lane = self._lanes.get(chat)
        older = lane.progress.pop(key, None) if lane else None
        if older is not None and not older.future.done():
            older.future.set_result(False)

    def _list(self, lane: _Lane) -> None:
        """Put the lane in the ready queue of its first call's priority (again, if that is now higher)."""
        head = lane.head()
        if head is None or (lane.listed is not None and lane.listed <= head.priority):
            return
        lane.listed = head.priority
        self._ready[head.priority].append(lane)

    def _sweep(self) -> None:
        """Forget idle lanes (nothing waiting, no flood wait, budget full again); run when their number has doubled,
        so it costs O(1) per new lane."""
        now = self._clock()
        for chat, lane in list(self._lanes.items()):
            if (
                not lane
                and lane.due is None
                and lane.listed is None
                and lane.blocked_until <= now
                and (lane.bucket is None or lane.bucket.wait(now, lane.bucket.burst) == 0)
            ):
                del self._lanes[chat]
        self._sweep_at = max(SWEEP_AT_LEAST, 2 * len(self._lanes))

    # ------------------------------------------------------------------ the dispatcher

    def _dispatch(self) -> None:
        """Let go every call that may go now, best priority first; arm the timer for the next that may."""
        now = self._clock()
        while self._timers and self._timers[0][0] <= now:
            when, _, lane = heapq.heappop(self._timers)
            if lane.due == when:
                lane.due = None
                self._list(lane)
        overall_wait = 0.0
        for priority in Priority:
            ready = self._ready[priority]
            cap = (
                self._progress_cap
                if priority is Priority.PROGRESS
                else self._cap + TAP_SLOTS
                if priority is Priority.TAP
                else self._cap
            )
            while ready and self._in_flight < cap:
                lane = ready.popleft()
                if lane.listed is not priority:
                    continue  # listed again at a better priority meanwhile
                lane.listed = None
                ticket = lane.head()
                if ticket is None:
                    continue
                if ticket.future.done():  # its caller was cancelled and has not run yet to take it out
                    lane.remove(ticket)
                    self._list(lane)
                    continue
                wait = self._lane_wait(lane, ticket, now)
                if wait is None:
                    continue  # failed or dropped; the lane was listed again if it has more
                if wait > 0:
                    self._schedule(lane, now + wait)
                    continue
                if (ticket.counted or ticket.skip_if_busy) and self._overall is not None:
                    need = ticket.cost
                    if ticket.priority is Priority.PROGRESS:
                        need += max(1.0, self._overall.burst * PROGRESS_RESERVE)
                    overall_wait = self._overall.wait(now, need)
                    if overall_wait > 0:
                        if ticket.skip_if_busy:
                            overall_wait = 0.0
                            self._finish(lane, ticket, False)
                            continue
                        lane.listed = priority
                        ready.appendleft(lane)
                        break  # the overall budget is spent: nothing of this or lower priority goes now
                if ticket.counted and self._overall is not None:
                    self._overall.take(ticket.cost)
                if ticket.paced and lane.bucket is not None:
                    lane.bucket.take(ticket.cost)
                self._in_flight += 1
                self._finish(lane, ticket, True)
            if overall_wait > 0:
                break
        self._arm(now + overall_wait if overall_wait > 0 else None)

    def _lane_wait(self, lane: _Lane, ticket: _Ticket, now: float) -> float | None:
        """Seconds until the lane's first call may go, or None when it was failed or dropped instead."""
        wait = lane.blocked_until - now
        if ticket.skip_if_busy and lane.queue:
            wait = max(wait, 1.0)  # the chat has messages waiting: no chat action in between
        if ticket.paced and lane.bucket is not None:
            wait = max(wait, lane.bucket.wait(now, ticket.cost))
        if wait <= 0:
            return 0.0
        if ticket.skip_if_busy:
            self._finish(lane, ticket, False)
            return None
        if lane.blocked_until - now > self._max_retry_after:
            self._fail(lane, ticket, f"chat {lane.chat} is under a flood wait of {lane.blocked_until - now:.0f} s")
            return None
        if self._deadline is not None and now + wait > self._deadline:
            self._fail(lane, ticket, f"the bot is stopping; chat {lane.chat} would wait {wait:.1f} s")
            return None
        return wait

    def _finish(self, lane: _Lane, ticket: _Ticket, go: bool) -> None:
        lane.remove(ticket)
        if not ticket.future.done():
            ticket.future.set_result(go)
        self._list(lane)

    def _fail(self, lane: _Lane, ticket: _Ticket, why: str) -> None:
        lane.remove(ticket)
        if not ticket.future.done():
            log.warning("Bot API call not sent: %s", why)
            ticket.future.set_exception(FloodWaitTooLong(why))
        self._list(lane)

    def _schedule(self, lane: _Lane, when: float) -> None:
        lane.due = when
        heapq.heappush(self._timers, (when, next(self._seq), lane))

    def _arm(self, overall_at: float | None) -> None:
        """One timer for the whole limiter, at the earliest moment something could go."""
        while self._timers and self._timers[0][2].due != self._timers[0][0]:
            heapq.heappop(self._timers)  # stale: that lane was rescheduled or listed since
        candidates = [t for t in (overall_at, self._timers[0][0] if self._timers else None) if t is not None]
        if not candidates:
            return
        when = min(candidates)
        if self._timer is not None and self._timer_at <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = asyncio.get_running_loop().call_later(max(0.0, when - self._clock()) + 0.001, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()


class RefusalPacer:
    """Refusals per chat: two at once, then one per REFUSAL_EVERY, so a flood of requests is not answered with a
    flood of messages (each one more against that chat's Telegram limit), while a second try is still answered."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._chats: dict[int, _Bucket] = {}

    def allow(self, chat_id: int) -> bool:
        now = self._clock()
        bucket = self._chats.get(chat_id)
        if bucket is None:
            if len(self._chats) >= SWEEP_AT_LEAST:  # forget chats whose allowance is full again
                self._chats = {c: b for c, b in self._chats.items() if b.wait(now, REFUSAL_BURST) > 0}
            bucket = self._chats[chat_id] = _Bucket(1 / REFUSAL_EVERY, REFUSAL_BURST, now)
        if bucket.wait(now, 1.0) > 0:
            return False
        bucket.take(1.0)
        return True
