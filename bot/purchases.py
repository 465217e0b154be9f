"""Buying credits with Telegram Stars: which packs are on sale, whether a checkout may go through, a payment credited
once, a refund taken back once. The rules only: the Telegram side (invoices, answers, messages) is
`handlers/payments.py`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from . import metrics
from .config import Settings
from .stars import STARS, Pack, Payload
from .store import Buyer, Store, Waiting
from .store.payments import PaymentRow, Refund, RefundOutcome

__all__ = ["Buyer", "CheckoutRefusal", "Credited", "PaymentRow", "Purchases", "Refund", "RefundOutcome", "Waiting"]

log = logging.getLogger(__name__)

SUPPORT_WAIT = 600.0  # seconds /paysupport waits for the buyer's next message
ALBUM_WAIT = 30.0  # seconds an album's other parts may take to follow its first to the admins
ANSWER_WAIT = 7 * 24 * 3600.0  # seconds an admin may answer a buyer by replying to what support sent them


class CheckoutRefusal(StrEnum):
    """Why a pre-checkout is answered "no"; the value is the text key of the buyer's sentence."""

    PACK_GONE = "pay_pack_gone"  # the pack is no longer on sale at that price
    NOT_YOURS = "pay_not_yours"  # the invoice was made for someone else
    BLOCKED = "pay_blocked"
    NOT_ALLOWED = "pay_not_allowed"  # ALLOWED_USER_IDS / ALLOWED_CHAT_IDS set, and the buyer is not in them
    NOTHING_TO_BUY = "pay_nothing_to_buy"  # USER_DAILY_QUOTA=0: images are free, purchased credits never spent


@dataclass(frozen=True, slots=True)
class Credited:
    credits: int
    purchased: int  # the buyer's purchased credits now


class Purchases:
    def __init__(self, store: Store, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock

    @property
    def packs(self) -> tuple[Pack, ...]:
        return self._settings.stars_packs

    @property
    def on_sale(self) -> bool:
        """Packs are set and there is a daily limit for them to go beyond."""
        return self._settings.payments_on

    def log_nothing_to_buy(self, user_id: int) -> None:
        log.warning(
            "purchase by user %s refused: STARS_PACKS is set but USER_DAILY_QUOTA=0 (unlimited), so there is nothing "
            "to buy; set a daily limit, or empty STARS_PACKS",
            user_id,
        )

    def payload(self, pack: Pack, user_id: int) -> str:
        return Payload(pack, user_id).encode()

    async def check(self, payload: str, buyer_id: int, currency: str, total: int) -> CheckoutRefusal | None:
        """None when the checkout may go through: the pack is on sale at that price, the buyer is the one the
        invoice was made for, and is not blocked."""
        if not self.on_sale and self.packs:
            self.log_nothing_to_buy(buyer_id)
            return CheckoutRefusal.NOTHING_TO_BUY
        named = Payload.decode(payload)
        if named is None or currency != STARS or total != named.pack.stars or named.pack not in self.packs:
            log.info("checkout by %s refused: pack %r (%s %s) not on sale", buyer_id, payload, total, currency)
            return CheckoutRefusal.PACK_GONE
        if named.user_id != buyer_id:
            log.info("checkout by %s refused: the invoice was made for %s", buyer_id, named.user_id)
            return CheckoutRefusal.NOT_YOURS
        settings = self._settings
        restricted = settings.allowed_user_ids or settings.allowed_chat_ids
        if restricted and buyer_id not in settings.allowed_user_ids | settings.admin_user_ids:
            log.info("checkout by %s refused: not in ALLOWED_USER_IDS", buyer_id)
            return CheckoutRefusal.NOT_ALLOWED
        if buyer_id not in settings.admin_user_ids and await self._store.access.is_blocked(buyer_id):
            log.info("checkout by %s refused: blocked", buyer_id)
            return CheckoutRefusal.BLOCKED
        return None

    async def credit(self, charge_id: str, buyer_id: int, payload: str, stars: int) -> Credited | None:
        """A successful payment: its credits added in the transaction that records it, keyed by the charge id;
        None when it was recorded before (a repeat, or another process)."""
        named = Payload.decode(payload)
        credits = named.pack.credits if named is not None else 0
        if named is None:
            log.error(
                "payment %s by %s has a payload this bot did not write (%r): recorded, 0 credits; refund it "
                "with /refund %s",
                charge_id,
                buyer_id,
                payload,
                charge_id,
            )
        balance = await self._store.payments.record_payment(charge_id, buyer_id, credits, stars, payload)
        if balance is None:
            log.info("payment %s seen before; not credited again", charge_id)
            return None
        metrics.purchased(stars, credits)
        log.info(
            "payment %s: user %s bought %s credits for %s Stars; %s purchased left",
            charge_id,
            buyer_id,
            credits,
            stars,
            balance,
        )
        return Credited(credits, balance)

    async def take_back(self, charge_id: str, by: str, *, force: bool = True) -> RefundOutcome:
        """A refund: the pack's credits taken back (not below what is left), once, whoever reports it first."""
        outcome = await self._store.payments.take_back(charge_id, by, force=force)
        if outcome.result is Refund.APPLIED and outcome.payment is not None:
            metrics.refunded(outcome.payment.stars)
            log.info(
                "payment %s refunded (%s): %s credits taken back, %s purchased left",
                charge_id,
                by,
                outcome.taken,
                outcome.left,
            )
        return outcome

    async def payment(self, charge_id: str) -> PaymentRow | None:
        return await self._store.payments.payment(charge_id)

    async def recent(self, limit: int, user_id: int | None = None) -> list[PaymentRow]:
        return await self._store.payments.recent_payments(limit, user_id)

    async def purchased(self, user_id: int) -> int:
        return await self._store.credits.purchased(user_id)

    # ---- payment support ----

    async def await_support(self, user_id: int) -> None:
        """/paysupport: the buyer's next private message is for the admins, for SUPPORT_WAIT seconds."""
        await self._store.support.wait(user_id, self._clock() + SUPPORT_WAIT)

    async def for_support(self, user_id: int, album: str | None) -> Waiting:
        """Whether this private message of the user is the one support waits for (decided once, in any process)."""
        now = self._clock()
        return await self._store.support.take(user_id, now, album, now + ALBUM_WAIT)

    async def stop_support(self, user_id: int) -> bool:
        """/cancel while support waits: True when it was waiting."""
        return await self._store.support.stop_waiting(user_id, self._clock())

    async def link_answers(self, admin_id: int, message_ids: list[int], buyer: Buyer) -> None:
        """What support put in an admin's chat: the admin's reply to any of it goes to the buyer, for ANSWER_WAIT."""
        await self._store.support.link(admin_id, message_ids, buyer, self._clock() + ANSWER_WAIT)

    async def answer_to(self, admin_id: int, message_id: int) -> Buyer | None:
        """The buyer an admin's reply to this message of their chat goes to (None: not a support message, or old)."""
        return await self._store.support.linked_buyer(admin_id, message_id, self._clock())
