"""Daily credits per user and per chat, weighted by size, then credits bought with Stars; reserved when a job is
queued, refunded (each part where it came from) if it fails."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from .config import Settings
from .models import Job, Origin, Reservation
from .options import ImageRequest, Resolution
from .store import Store


class Limit(StrEnum):
    """Whose daily credits were short (purchased credits, spent after them, were short too)."""

    PERSON = "person"  # USER_DAILY_QUOTA, with what an admin granted today
    CHAT = "chat"  # CHAT_DAILY_QUOTA: a group's or a channel's own


class QuotaExceeded(Exception):
    """Not enough credits: whose limit was hit, and the figures a refusal may show (`None`: no such limit)."""

    def __init__(
        self,
        whose: Limit,
        credits: int,
        *,
        person_left: int | None,
        chat_left: int | None,
        purchased: int,
        resets_at: datetime,
    ) -> None:
        super().__init__(
            f"needs {credits}, {whose} limit hit: person {person_left} left, chat {chat_left} left, "
            f"{purchased} purchased"
        )
        self.whose, self.credits, self.purchased, self.resets_at = whose, credits, purchased, resets_at
        self.person_left, self.chat_left = person_left, chat_left

    @property
    def left(self) -> int:
        """Today's free credits left under every limit that applies: what a smaller request could still use."""
        return min((n for n in (self.person_left, self.chat_left) if n is not None), default=0)


@dataclass(frozen=True, slots=True)
class UsageReport:
    used: int
    limit: int | None  # None: unlimited
    granted: int
    chat_used: int | None
    chat_limit: int | None
    resets_at: datetime
    purchased: int = 0  # credits bought with Stars, left: spent after today's free ones, never expire

    @property
    def left(self) -> int | None:
        lefts = []
        if self.limit is not None:
            lefts.append(max(0, self.limit + self.granted - self.used))
        if self.chat_limit is not None and self.chat_used is not None:
            lefts.append(max(0, self.chat_limit - self.chat_used))
        return min(lefts) if lefts else None


class Quota:
    def __init__(self, store: Store, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock

    def credits(self, size: Resolution) -> int:
        """A nano-banana-2 image of this size (QUOTA_CREDITS_1K/_2K/_4K, or MODEL_CREDITS over them)."""
        return self._settings.credits_for(ImageRequest("", size=size))

    def cost(self, request: ImageRequest) -> int:
        """One image of this request, whatever its model: its profile's credits, MODEL_CREDITS over them."""
        return self._settings.credits_for(request)

    def is_admin(self, user_id: int) -> bool:
        return user_id in self._settings.admin_user_ids

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), self._settings.timezone)

    def today(self) -> str:
        return self.now().date().isoformat()

    def resets_at(self) -> datetime:
        now = self.now()
        return datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), now.tzinfo)

    def limits(self, origin: Origin) -> tuple[int | None, int | None]:
        """(user limit, chat limit): a private chat counts the user, a channel the channel, a group both."""
        if self.is_admin(origin.user_id):
            return None, None
        user_limit = self._settings.user_daily_quota or None
        chat_limit = self._settings.chat_daily_quota or None
        if origin.chat_id > 0:
            return user_limit, None
        if origin.user_id == origin.chat_id:  # a channel post, or an anonymous admin speaking as the chat
            return None, chat_limit
        return user_limit, chat_limit

    async def reserve(self, job: Job) -> None:
        """Take the job's credits now; raises QuotaExceeded and takes nothing when they are not there."""
        reservation = self.reservation(job)
        if not await self._store.credits.reserve_credits(reservation):
            raise await self.exceeded(job.origin, reservation.credits)

    def reservation(self, job: Job) -> Reservation:
        """What the job takes from today's allowance (the queue reserves it as it stores the job)."""
        user_limit, chat_limit = self.limits(job.origin)
        return Reservation(
            job.id, job.origin.user_id, job.origin.chat_id, self.today(), self.cost(job.request), user_limit, chat_limit
        )

    async def refund(self, job: Job) -> bool:
        return await self._store.credits.refund_credits(job.id)

    async def reserve_use(self, key: str, origin: Origin, credits: int) -> None:
        """Take `credits` for something other than a job (a use of the prompt helper), under its own ledger key;
        raises QuotaExceeded and takes nothing when they are not there."""
        user_limit, chat_limit = self.limits(origin)
        reservation = Reservation(key, origin.user_id, origin.chat_id, self.today(), credits, user_limit, chat_limit)
        if not await self._store.credits.reserve_credits(reservation):
            raise await self.exceeded(origin, credits)

    async def refund_use(self, key: str) -> bool:
        return await self._store.credits.refund_credits(key)

    async def exceeded(self, origin: Origin, credits: int) -> QuotaExceeded:
        """The refusal of `credits` the store found short: the chat's limit when the chat's own credits left can't
        cover them, else the person's."""
        report = await self.report(origin)
        person_left = None if report.limit is None else max(0, report.limit + report.granted - report.used)
        chat_left = None if report.chat_limit is None else max(0, report.chat_limit - (report.chat_used or 0))
        whose = Limit.CHAT if chat_left is not None and chat_left < credits else Limit.PERSON
        return QuotaExceeded(
            whose,
            credits,
            person_left=person_left,
            chat_left=chat_left,
            purchased=report.purchased,
            resets_at=report.resets_at,
        )

    async def report(self, origin: Origin) -> UsageReport:
        day = self.today()
        user_limit, chat_limit = self.limits(origin)
        used = await self._store.credits.credits_used(day=day, user_id=origin.user_id)
        granted = await self._store.credits.credits_granted(origin.user_id, day)
        chat_used = await self._store.credits.credits_used(day=day, chat_id=origin.chat_id) if chat_limit else None
        purchased = await self._store.credits.purchased(origin.user_id)
        return UsageReport(used, user_limit, granted, chat_used, chat_limit, self.resets_at(), purchased)

    async def grant(self, user_id: int, credits: int) -> None:
        await self._store.credits.grant_credits(user_id, self.today(), credits)
