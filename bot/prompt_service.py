"""The prompt helper as the handlers use it: a use costs PROMPT_HELPER_CREDITS, reserved on the credit ledger
before the call (like an image's) and refunded when the helper gives nothing back. No Telegram here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .models import Origin, new_id
from .prompthelper import HelperError, PromptHelper
from .quota import Quota, QuotaExceeded


class HelperQuota(HelperError):
    """Not enough credits left today for a use of the helper."""

    kind = "quota"


class PromptService:
    def __init__(self, helper: PromptHelper, quota: Quota, credits: int) -> None:
        self._helper = helper
        self._quota = quota
        self._credits = credits
        self._asking: set[str] = set()  # requests whose rewrite is being asked for (in this process)

    def begin(self, request_id: str) -> bool:
        """Mark a request's rewrite as asked for; False when it is already (a second tap on ✨)."""
        if request_id in self._asking:
            return False
        self._asking.add(request_id)
        return True

    def end(self, request_id: str) -> None:
        self._asking.discard(request_id)

    async def aclose(self) -> None:
        await self._helper.aclose()

    async def improve(self, origin: Origin, prompt: str, image_model: str, *, english: bool) -> str:
        """A rewrite of `prompt` for `image_model`; a HelperError (HelperQuota included) when there is none."""
        return await self._charged(origin, lambda: self._helper.improve(prompt, image_model, english=english))

    async def translate(self, origin: Origin, prompt: str) -> str:
        """`prompt` in English; a HelperError when there is none."""
        return await self._charged(origin, lambda: self._helper.translate(prompt))

    async def _charged(self, origin: Origin, call: Callable[[], Awaitable[str]]) -> str:
        if not self._credits:
            return await call()
        key = f"prompt:{new_id()}"  # its own row of the ledger, apart from every job's
        try:
            await self._quota.reserve_use(key, origin, self._credits)
        except QuotaExceeded:
            raise HelperQuota(f"{self._credits} credits needed") from None
        try:
            return await call()
        except BaseException:
            await self._quota.refund_use(key)
            raise
