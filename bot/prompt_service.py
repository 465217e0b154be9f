"""The prompt helper as the handlers use it. No Telegram here.

A call is claimed in the database for its request and purpose, so that a second tap on ✨ — in this process or
another — makes no second call. A use costs PROMPT_HELPER_CREDITS: reserved on the credit ledger before the call
(like an image's), kept when the call gave a rewrite, refunded when it gave nothing; the claim row names the
reservation, so a call a crash cut short is refunded once it is past any deadline (at start, at the next claim, and
every little while)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from .models import Origin, new_id
from .prompthelper import HelperError, PromptHelper
from .quota import Quota, QuotaExceeded
from .store.helpercalls import HelperCalls

log = logging.getLogger(__name__)

STALE_MARGIN = 30.0  # seconds past PROMPT_HELPER_TIMEOUT after which an unsettled call is a crashed one


class HelperQuota(HelperError):
    """Not enough credits left today for a use of the helper."""

    kind = "quota"


class HelperBusy(HelperError):
    """The helper is being asked for this request already (a second tap, here or in another process); for ✨, also
    a request that shows a rewrite already or is gone."""

    kind = "busy"


class PromptService:
    def __init__(self, helper: PromptHelper, quota: Quota, credits: int, calls: HelperCalls, timeout: float) -> None:
        self._helper = helper
        self._quota = quota
        self._credits = credits
        self._calls = calls
        self._stale_after = timeout + STALE_MARGIN
        self._sweeps: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Refund the calls a stopped process left unsettled, now and every little while after."""
        await self._refund_stale()
        self._sweeps = asyncio.create_task(self._sweep_loop(), name="prompt-helper-sweeps")

    async def aclose(self) -> None:
        if self._sweeps is not None:
            self._sweeps.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeps
        await self._helper.aclose()

    async def improve(
        self,
        origin: Origin,
        request_id: str,
        prompt: str,
        image_model: str,
        *,
        english: bool,
        claimed: Callable[[], Awaitable[None]] | None = None,
    ) -> str:
        """A rewrite of `prompt` for `image_model`; a HelperError (HelperQuota, HelperBusy included) when there is
        none. `claimed` runs once the call is this one's and paid for, before it is made (to say it is under way)."""
        return await self._charged(
            origin, request_id, "improve", lambda: self._helper.improve(prompt, image_model, english=english), claimed
        )

    async def translate(self, origin: Origin, request_id: str, prompt: str) -> str:
        """`prompt` in English; a HelperError when there is none."""
        return await self._charged(origin, request_id, "translate", lambda: self._helper.translate(prompt))

    async def _charged(
        self,
        origin: Origin,
        request_id: str,
        purpose: str,
        call: Callable[[], Awaitable[str]],
        claimed: Callable[[], Awaitable[None]] | None = None,
    ) -> str:
        key = f"prompt:{new_id()}" if self._credits else None  # its own row of the ledger, apart from every job's
        stale_before = time.time() - self._stale_after
        if not await self._calls.claim(request_id, purpose, key, stale_before, unsuggested=purpose == "improve"):
            raise HelperBusy(f"{purpose} of {request_id} is asked for already, or not to be asked")
        given = False
        try:
            if key is not None:
                try:
                    await self._quota.reserve_use(key, origin, self._credits)
                except QuotaExceeded:
                    raise HelperQuota(f"{self._credits} credits needed") from None
            if claimed is not None:
                await claimed()
            text = await call()
            given = True
            return text
        finally:
            try:
                await self._calls.settle(request_id, purpose, refund=not given)
            except Exception as exc:  # the database is out: the sweep refunds it once it is stale
                log.warning("prompt helper: %s of %s not settled: %s", purpose, request_id, exc)

    async def _refund_stale(self) -> None:
        try:
            if refunded := await self._calls.refund_stale(time.time() - self._stale_after):
                log.info("prompt helper: %d call(s) cut short by a stop refunded", refunded)
        except Exception as exc:  # the database is out: the next sweep tries again
            log.warning("prompt helper: unsettled calls not swept: %s", exc)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._stale_after)
            await self._refund_stale()
