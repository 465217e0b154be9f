"""Status lines: "Queued — 3 ahead of you" → "Generating 16:9 · 2K… 12 s" → "Sending…", paced; chat actions.

A line only moves forward, whichever process edits it (`models.LineStage`, kept on the request's lead job). The
process that queued a request shows it while it waits, and announces each such edit in the database first
(`hold_line`), only while no worker has taken the line further. The worker whose job starts calling the image API
takes the line over (`advance_line`), never while a waiting edit may still be on its way; the process delivering the
request takes it for its last word the same way. The seconds count from that first call, kept with the line, so a
takeover by another process does not restart them. Each line has its own deadline in a heap, so a tick touches
only the lines that are due: a line being made every tick, a waiting one only when its place in line changed or an
edit it wanted was held back by pacing. Queue positions come from one query per tick, whatever the number of
waiting jobs. Routine edits are marked as progress, so the limiter may coalesce them and never lets them delay a
result.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from telegram import InlineKeyboardMarkup
from telegram.constants import ChatAction
from telegram.error import BadRequest, TelegramError
from telegram.ext import ExtBot

from .. import keyboards
from ..inline_messages import edit_inline
from ..models import Job, LineStage
from ..store import Caps, Store
from ..targets import Target, send_kwargs
from ..tasks import Background, complain, wait_set
from ..texts import for_requester, t

log = logging.getLogger(__name__)

STATUS_PROMPT_CHARS = 200
CHAT_ACTION_EVERY = 4.5  # Telegram shows an action for 5 s
CHAT_EDIT_INTERVAL = 3.0  # at most one routine status edit per private chat in this time
# A group gets 20 bot messages a minute: progress (edits, actions) takes at most a third of that, so results never
# wait behind "12 s… 17 s…".
GROUP_EDIT_INTERVAL = 12.0
GROUP_ACTION_EVERY = 20.0
PROGRESS = {"progress": True}
# How long a waiting line's edit may take to land (a flood wait of TELEGRAM_MAX_RETRY_AFTER included); a worker's
# line waits for it, or this long if the process that holds it stopped.
HOLD_SECONDS = 90.0
SETTLE_WAIT = 3.0  # the last word waits at most this long for such an edit: a result is not held back for it


RECORD_RETRIES = (0.5, 1.0, 2.0, 4.0)  # seconds between tries to record a new line: a database outage's length


def status_interval(elapsed: float) -> float:
    """Edit often at first, then calmer: every 5 s for a minute, then every 15 s."""
    return 5.0 if elapsed < 60 else 15.0


def short_prompt(job: Job) -> str:
    prompt = job.request.prompt
    prompt = prompt if len(prompt) <= STATUS_PROMPT_CHARS else prompt[: STATUS_PROMPT_CHARS - 1] + "…"
    return for_requester(prompt, job.origin.requester, job.origin.lang)


@dataclass(slots=True)
class Line:
    """What this process knows of one request's status line."""

    lead: Job
    total: int
    local: bool = True  # queued by this process, which sends its first line; else only edited here
    claimed: set[str] = field(default_factory=set)  # its jobs this process's worker runs
    ended: set[str] = field(default_factory=set)  # its jobs that ended (here; others are counted when settled)
    started: float | None = None  # monotonic: when one of its jobs began calling the image API here
    stage: LineStage = LineStage.NONE  # how far this process has shown it, or knows another process took it
    owner: bool = False  # this process shows its progress now (granted by the store)
    since: float | None = None  # Unix time its request began being made, the same for every process
    seconds: int = 0  # the seconds last shown: never fewer
    retry_at: float = 0.0  # monotonic: when to ask again for a line another process shows
    ahead: int | None = None  # jobs that start before it; None: not known yet
    last_text: str = ""
    last_edit: float = 0.0
    due: float | None = None  # monotonic: when the tick looks at it next (its entry in the heap); None: not until told
    announced: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def working_key(job: Job) -> str:
    """What the line says while the image API works on it."""
    if job.upscale_of:
        return "upscaling"
    return "editing" if job.references else "generating"


class StatusLines:
    def __init__(
        self, bot: ExtBot[Any], store: Store, caps: Caps, *, owner: str, tick: float = 1.0, name_models: bool = False
    ) -> None:
        """`name_models`: several models are offered, so a line names the request's model first."""
        self._named = name_models
        self._bot = bot
        self._store = store
        self._caps = caps
        self._owner = owner  # this process's name, as its worker's leases carry it
        self._tick = tick
        self._lines: dict[str, Line] = {}
        self._deadlines: list[tuple[float, int, str]] = []  # (due, tie-break, group); stale entries are skipped
        self._order = itertools.count()
        self._waiting: set[str] = set()  # requests queued here that no process has started (as last seen)
        self._positions_wanted = self._positions_have = 0
        self._positions_run: asyncio.Future[None] | None = None
        self._chat_edit: dict[int, float] = {}
        self._last_action: dict[tuple[int, int | None], float] = {}
        self._background = Background()
        self._loop: asyncio.Task[None] | None = None
        self._closed = False
        # whether this process still holds a job it runs (its lease): a line whose jobs here all lapsed is left
        # alone, since another process may have taken them over (set by the worker)
        self.holds: Callable[[str], bool] = lambda job_id: True

    def start(self) -> None:
        self._loop = asyncio.create_task(self._tick_loop(), name="status-lines")

    async def stop(self) -> None:
        """No progress edit may land after this (it could cover a final sentence)."""
        self._closed = True
        if self._loop:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        await self._background.wait(5)

    # ---- what the engine tells ----

    def submitted(self, jobs: list[Job]) -> None:
        lead = jobs[0]
        self._lines[lead.group] = Line(lead, len(jobs))
        self._waiting.add(lead.group)

    def queued(self, group: str, ok: bool) -> None:
        line = self._lines.get(group)
        if line is None:
            return
        if ok:
            self._background.spawn(self._announce(line))
        else:
            del self._lines[group]
            self._waiting.discard(group)

    def started(self, job: Job) -> None:
        """Claimed by this process's worker: nothing to show until its upstream call begins."""
        line = self._lines.get(job.group)
        if line is None:  # queued by another process, which sent its line: this one edits it while it runs here
            line = self._lines[job.group] = Line(job, job.variants, local=False)
            line.announced.set()
        line.claimed.add(job.id)
        self._waiting.discard(job.group)

    def generating(self, job: Job) -> None:
        """Its upstream call begins: from now on the line says it is being made, with the seconds."""
        line = self._lines.get(job.group)
        if line is None:
            return
        if line.started is None:
            line.started = time.monotonic()
        self._due(line, time.monotonic() + self._tick)
        key = (job.origin.chat_id, job.origin.thread_id)
        self._last_action[key] = time.monotonic()
        self._background.spawn(self._chat_action(job))
        self._background.spawn(self.show(job.group, force=True))

    def ended(self, job: Job) -> None:
        """One job of the request ended here: the line counts it (variants: "2 of 4 ready")."""
        line = self._lines.get(job.group)
        if line is not None:
            line.claimed.discard(job.id)
            line.ended.add(job.id)
            if not line.local and not line.claimed:  # nothing of it runs here any more: hands off
                self._lines.pop(job.group, None)

    def lost(self, job: Job) -> None:
        """Another process holds the job now: its line is no longer touched here."""
        line = self._lines.get(job.group)
        if line is not None:
            line.claimed.discard(job.id)
            if not line.claimed:
                self._lines.pop(job.group, None)
                self._waiting.discard(job.group)

    def _lapsed(self, line: Line) -> bool:
        """The line's jobs run here, and none of their leases is known to be held now."""
        return bool(line.claimed) and not any(self.holds(job_id) for job_id in line.claimed)

    def waiting_groups(self) -> list[str]:
        """Requests queued here that have not started anywhere (as far as the last tick knew)."""
        return [
            group for group in self._waiting if self._lines[group].started is None and not self._lines[group].claimed
        ]

    def take(self, group: str) -> Line | None:
        """The request is being settled: no more progress edits; the finisher writes the last word."""
        self._waiting.discard(group)
        return self._lines.pop(group, None)

    async def announced(self, group: str, timeout: float = 15.0) -> None:
        """Wait until the first status line of a request queued here is out (it must exist to be replaced)."""
        line = self._lines.get(group)
        if line is not None:
            await wait_set(line.announced, timeout)

    def lock(self, group: str) -> asyncio.Lock | contextlib.nullcontext[None]:
        line = self._lines.get(group)
        return line.lock if line is not None else contextlib.nullcontext()

    # ---- texts ----

    def label(self, job: Job) -> str:
        """How a line names the request: `16:9 · 2K · ×4`, its model first when several are offered
        (`GPT Image 2 · 16:9 · 2K · medium · ×4`)."""
        return f"{job.request.profile.label} · {job.label}" if self._named else job.label

    def _text(self, line: Line) -> str:
        lead = line.lead
        lang, prompt, label = lead.origin.lang, short_prompt(lead), self.label(line.lead)
        if line.started is not None:
            if line.since is not None:
                line.seconds = max(line.seconds, int(time.time() - line.since))
            elapsed = " " + t("seconds", lang, seconds=line.seconds) if line.seconds else ""
            ready = len(line.ended)
            if line.total > 1 and 0 < ready < line.total:
                elapsed += " · " + t("variants_ready", lang, ready=ready, total=line.total)
            return t(working_key(lead), lang, label=label, size=lead.request.size.value, elapsed=elapsed, prompt=prompt)
        if line.ahead is None:
            return t("queued", lang, label=label, prompt=prompt)
        if line.ahead == 0:
            return t("queued_next", lang, label=label, prompt=prompt)
        return t("queued_ahead", lang, ahead=line.ahead, label=label, prompt=prompt)

    async def _announce(self, line: Line) -> None:
        try:
            async with line.lock:
                try:
                    await self._positions()
                except Exception as exc:
                    complain(log, "queue positions not read", exc)
                if self._lines.get(line.lead.group) is line:
                    await self._show_locked(line, force=True)
        except Exception as exc:
            complain(log, "a status line was not shown", exc)
        finally:
            line.announced.set()

    def _cancel_button(self, lead: Job) -> InlineKeyboardMarkup:
        return keyboards.status_keyboard(lead.id, lead.origin.lang)

    async def show(self, group: str, *, force: bool = False) -> None:
        """Progress on the status line: serialized per line, paced per request and per chat unless forced."""
        line = self._lines.get(group)
        if line is None:
            return
        await line.announced.wait()
        async with line.lock:
            if self._lines.get(group) is not line or self._lapsed(line):
                return
            try:
                await self._show_locked(line, force=force)
            except Exception as exc:
                complain(log, "a status line was not updated", exc)

    async def _show_locked(self, line: Line, *, force: bool) -> None:
        if self._closed:
            return
        if line.started is None:
            if not line.claimed and line.stage <= LineStage.QUEUED:  # claimed here: quiet until its call begins
                await self._show_waiting(line, force=force)
        elif line.claimed:
            await self._show_working(line, force=force)

    async def _show_waiting(self, line: Line, *, force: bool) -> None:
        """A waiting line's edit, announced in the database so that no worker's line goes out before it lands."""
        text = self._text(line)
        if text == line.last_text or (not force and self._held_back(line)):
            return
        group, until = line.lead.group, time.time() + HOLD_SECONDS
        if not await self._store.lines.hold_line(group, until):
            line.stage = LineStage.WORKING  # a worker shows it from here on
            self._waiting.discard(group)
            return
        line.stage = LineStage.QUEUED
        try:
            await self.edit(line.lead, text, self._cancel_button(line.lead), line=line, routine=not force)
        finally:
            await self._unhold(group, until)

    async def _unhold(self, group: str, until: float) -> None:
        try:
            await self._store.lines.unhold_line(group, until)
        except Exception as exc:
            complain(log, "a status line hold was not released", exc)

    async def _show_working(self, line: Line, *, force: bool) -> None:
        """The seconds of a line being made, by the one process the store lets show them."""
        if not line.owner:
            now = time.monotonic()
            if now < line.retry_at:
                return
            known = line.local or line.lead.origin.inline or line.lead.status_message_id is not None
            if not known and not await self._find_line(line):
                return  # its process has not sent the line yet; the next tick looks again
            turn = await self._store.lines.advance_line(line.lead.group, LineStage.WORKING, self._owner)
            if not turn.taken:  # a waiting edit on its way (a moment), or another process shows it (look later)
                line.retry_at = now + (self._tick if turn.busy else status_interval(0))
                return
            line.owner, line.since, line.stage, force = True, turn.since, LineStage.WORKING, True
        text = self._text(line)
        if text == line.last_text or (not force and self._held_back(line)):
            return
        await self.edit(line.lead, text, self._cancel_button(line.lead), line=line, routine=not force or not line.local)

    def _held_back(self, line: Line) -> bool:
        """Paced per request and per chat: when too soon, the tick looks at the line again when it may go."""
        now = time.monotonic()
        elapsed = now - (line.started or now)
        pace = CHAT_EDIT_INTERVAL if line.lead.origin.chat_id > 0 else GROUP_EDIT_INTERVAL
        allowed = max(
            line.last_edit + status_interval(elapsed), self._chat_edit.get(line.lead.origin.chat_id, 0.0) + pace
        )
        if now < allowed:
            self._due(line, allowed)
            return True
        return False

    async def delivering(self, lead: Job, *, sending: bool) -> None:
        """This process delivers the request: the line is its own for the last word (after a waiting edit still
        on its way, for a moment at most), and says "Sending…" while a result goes out (in a group only when its
        pacing has room)."""
        deadline = time.monotonic() + SETTLE_WAIT
        while True:
            try:
                turn = await self._store.lines.advance_line(lead.group, LineStage.DELIVERING, self._owner)
            except Exception as exc:
                complain(log, "a status line was not taken for its last word", exc)
                break
            if turn.taken or not turn.busy or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        chat = lead.origin.chat_id  # a group's 20 messages a minute: only when its pacing has room
        if sending and (chat > 0 or time.monotonic() >= self._chat_edit.get(chat, 0.0) + GROUP_EDIT_INTERVAL):
            text = t("sending", lead.origin.lang, label=self.label(lead), prompt=short_prompt(lead))
            await self.edit(lead, text, None, routine=True)

    async def pause(self, lead: Job, line: Line | None) -> None:
        """This process stops; the request waits for the next start or another process: the line says so,
        unless another process shows it further meanwhile."""
        text = t("paused_restart", lead.origin.lang, prompt=short_prompt(lead))
        if line is not None and line.owner:
            await self.edit(lead, text, None)
            return
        until = time.time() + HOLD_SECONDS
        if await self._store.lines.hold_line(lead.group, until):
            try:
                await self.edit(lead, text, None)
            finally:
                await self._unhold(lead.group, until)

    async def _find_line(self, line: Line) -> bool:
        """The status line of a request queued by another process: its lead job in the database says which."""
        members = await self._store.jobs.group_jobs(line.lead.group)
        if members and members[0].status_message_id is not None:
            line.lead = members[0]
            return True
        return False

    # ---- Telegram ----

    async def edit(
        self,
        lead: Job,
        text: str,
        markup: InlineKeyboardMarkup | None,
        *,
        line: Line | None = None,
        routine: bool = False,
    ) -> None:
        """Edit the request's status line, or send it when there is none yet (or it was deleted).

        A routine progress edit never sends a new message: it may race the result, which deletes the line.
        """
        if line is not None:
            line.last_text, line.last_edit = text, time.monotonic()
        self._chat_edit[lead.origin.chat_id] = time.monotonic()
        if lead.origin.inline_message_id is not None:  # a message via the bot elsewhere: only ever edited
            try:
                await edit_inline(self._bot, lead.origin.inline_message_id, text, markup, progress=routine)
            except TelegramError as exc:
                log.warning("job %s: inline message not edited: %s", lead.id, exc)
            return
        if lead.status_message_id is not None:
            try:
                await self._bot.edit_message_text(
                    text,
                    chat_id=lead.origin.chat_id,
                    message_id=lead.status_message_id,
                    reply_markup=markup,
                    rate_limit_args=PROGRESS if routine else None,
                )
                return
            except BadRequest as exc:
                if "not modified" in exc.message.lower() or routine:
                    return
                log.info("job %s: status message gone (%s); sending a new one", lead.id, exc.message)
            except TelegramError as exc:
                log.warning("job %s: status edit failed: %s", lead.id, exc)
                return
        elif routine:
            return
        message = await self.send(lead, text, markup)
        if message is not None:
            lead.status_message_id = message
            await self._record(lead, message)

    async def _record(self, lead: Job, message: int) -> None:
        """A new line's message id into the database, where a worker in any process finds it to edit and end it.
        A line the database never took would keep its ✖ for ever (no one else knows it), so after a few tries
        (a database outage) the message is deleted instead."""
        for pause in (*RECORD_RETRIES, None):
            try:
                await self._store.jobs.set_status_message(lead.id, message)
                return
            except Exception:
                if pause is None:
                    lead.status_message_id = None
                    with contextlib.suppress(TelegramError):
                        await self._bot.delete_message(lead.origin.chat_id, message)
                    raise
                await asyncio.sleep(pause)

    async def send(self, job: Job, text: str, markup: InlineKeyboardMarkup | None = None) -> int | None:
        if job.origin.inline:  # nothing is sent beside an inline message: the bot may not write in its chat
            return None
        try:
            message = await self._bot.send_message(text=text, reply_markup=markup, **send_kwargs(Target.of(job.origin)))
        except TelegramError as exc:
            log.warning("job %s: could not send a message: %s", job.id, exc)
            return None
        return message.message_id

    async def delete(self, lead: Job, label: str) -> None:
        """The result is there: the status line goes, or (where the bot may not delete) says it is done."""
        if lead.status_message_id is None or lead.origin.inline:  # an inline message became the result
            return
        try:
            await self._bot.delete_message(lead.origin.chat_id, lead.status_message_id)
        except TelegramError as exc:
            log.info("job %s: status message not deleted (%s); marking it done", lead.id, exc)
            with contextlib.suppress(TelegramError):
                await self._bot.edit_message_text(
                    t("done_line", lead.origin.lang, label=label),
                    chat_id=lead.origin.chat_id,
                    message_id=lead.status_message_id,
                )

    async def _chat_action(self, job: Job) -> None:
        if job.origin.inline:  # its chat is not the bot's to show actions in
            return
        with contextlib.suppress(TelegramError):
            await self._bot.send_chat_action(
                job.origin.chat_id,
                ChatAction.UPLOAD_PHOTO,
                message_thread_id=job.origin.thread_id,
                rate_limit_args=PROGRESS,
            )

    # ---- the tick ----

    async def _positions(self) -> None:
        """Queue positions of the waiting requests shown here, as of now: one query for all of them, shared by
        everyone who asks meanwhile (a burst of 200 requests reads the queue a few times, not 200 times)."""
        wanted = self._positions_wanted = self._positions_wanted + 1
        while self._positions_have < wanted:
            if self._positions_run is None or self._positions_run.done():
                self._positions_run = asyncio.ensure_future(self._read_positions(self._positions_wanted))
            await asyncio.shield(self._positions_run)

    async def _read_positions(self, covers: int) -> None:
        try:
            await self._read_positions_now()
        finally:
            self._positions_have = max(self._positions_have, covers)

    async def _read_positions_now(self) -> None:
        if not self._waiting:
            return
        order = await self._store.queue.waiting_order()
        free = max(0, self._caps.total - (await self._store.queue.queue_counts())[1])
        first: dict[str, int] = {}
        for index, (_, group, _) in enumerate(order):
            first.setdefault(group, index)
        for group in list(self._waiting):
            line = self._lines[group]
            if group not in first:
                if line.announced.is_set():  # started elsewhere or ended: that process shows it now
                    self._waiting.discard(group)
                    if line.started is None and not line.claimed:
                        self._lines.pop(group, None)
                continue
            ahead = max(0, first[group] - free)
            if ahead != line.ahead:
                line.ahead = ahead
                self._due(line, time.monotonic())

    def _due(self, line: Line, at: float) -> None:
        """Have the tick look at this line at `at` (or earlier, if it is due sooner already)."""
        if line.due is not None and line.due <= at:
            return
        line.due = at
        heapq.heappush(self._deadlines, (at, next(self._order), line.lead.group))

    def _take_due(self, now: float) -> list[Line]:
        due: list[Line] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            at, _, group = heapq.heappop(self._deadlines)
            line = self._lines.get(group)
            if line is not None and line.due == at:  # else it was rescheduled (or is gone): a stale entry
                line.due = None
                due.append(line)
        return due

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self._tick)
            try:
                await self._positions()
            except Exception:
                log.debug("queue positions not read", exc_info=True)
            now = time.monotonic()
            for line in self._take_due(now):
                if not line.announced.is_set() or line.lock.locked():
                    self._due(line, now + self._tick)
                    continue
                if line.started is not None:
                    if not line.claimed:
                        continue  # nothing of it runs here now: its seconds are not this process's to count
                    self._due(line, now + self._tick)
                    if self._lapsed(line):
                        continue  # its leases here are not known to be held: another process may show it
                    key = (line.lead.origin.chat_id, line.lead.origin.thread_id)
                    every = CHAT_ACTION_EVERY if line.lead.origin.chat_id > 0 else GROUP_ACTION_EVERY
                    if now - self._last_action.get(key, 0.0) >= every:
                        self._last_action[key] = now
                        self._background.spawn(self._chat_action(line.lead))
                self._background.spawn(self.show(line.lead.group))
