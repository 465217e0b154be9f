"""Payments in Telegram Stars: one row per charge, so a payment is credited once however often it arrives, and a
refund takes back once what is left of it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa

from .backend import Repository
from .credits import purchased_left, take_back_held
from .schema import payments


@dataclass(frozen=True, slots=True)
class PaymentRow:
    charge_id: str
    user_id: int
    credits: int
    stars: int
    paid_at: float
    refunded_at: float | None = None
    refunded_by: str | None = None
    credits_back: int | None = None


class Refund(StrEnum):
    """What taking a refund back did."""

    APPLIED = "applied"  # now: the credits left of the pack were taken back
    ALREADY = "already"  # before (by /refund or by Telegram's refunded_payment, whichever came first)
    SPENT = "spent"  # nothing done: some of the pack's credits are spent, and the refund was not forced
    UNKNOWN = "unknown"  # no such payment in the ledger


@dataclass(frozen=True, slots=True)
class RefundOutcome:
    result: Refund
    payment: PaymentRow | None = None
    taken: int = 0  # credits taken back (APPLIED), or those that would be (SPENT)
    left: int = 0  # the buyer's purchased credits after it


class Payments(Repository):
    """The `payments` table: the ledger of charges and refunds; the purchased balance is derived from it."""

    async def record_payment(self, charge_id: str, user_id: int, credits: int, stars: int, payload: str) -> int | None:
        """Record a successful payment and, in the same transaction, its credits; the buyer's new purchased
        balance, or None when this charge was recorded before (Telegram sent it again, or another process got it)."""

        def work(conn: sa.Connection) -> int | None:
            self._db.lock_credits(conn)
            row = {"charge_id": charge_id, "user_id": user_id, "credits": credits, "stars": stars}
            inserted = conn.execute(
                self._db.insert(payments)
                .values(**row, payload=payload, paid_at=time.time())
                .on_conflict_do_nothing(index_elements=["charge_id"])
            ).rowcount
            return purchased_left(conn, user_id) if inserted == 1 else None

        return await self._db.write(work)

    async def take_back(self, charge_id: str, by: str, *, force: bool = True) -> RefundOutcome:
        """Mark a payment refunded and take back its credits, not below what the buyer has left; once. Without
        `force`, nothing happens when some were spent (SPENT says how many are left to take)."""

        def work(conn: sa.Connection) -> RefundOutcome:
            self._db.lock_credits(conn)
            found = conn.execute(sa.select(payments).where(payments.c.charge_id == charge_id)).first()
            if found is None:
                return RefundOutcome(Refund.UNKNOWN)
            payment = _payment(found)
            left = purchased_left(conn, payment.user_id)
            if payment.refunded_at is not None:
                return RefundOutcome(Refund.ALREADY, payment, payment.credits_back or 0, left)
            taken = max(0, min(payment.credits, left))
            if taken < payment.credits and not force:
                return RefundOutcome(Refund.SPENT, payment, taken, left)
            conn.execute(
                sa.update(payments)
                .where(payments.c.charge_id == charge_id, payments.c.refunded_at.is_(None))
                .values(refunded_at=time.time(), refunded_by=by, credits_back=taken)
            )
            take_back_held(conn, payment.user_id, payment.credits - taken)
            return RefundOutcome(Refund.APPLIED, payment, taken, left - taken)

        return await self._db.write(work)

    async def payment(self, charge_id: str) -> PaymentRow | None:
        row = await self._one(sa.select(payments).where(payments.c.charge_id == charge_id))
        return _payment(row) if row is not None else None

    async def recent_payments(self, limit: int, user_id: int | None = None) -> list[PaymentRow]:
        """The newest payments first (a user's, or everyone's), refunded ones included."""
        query = sa.select(payments).order_by(payments.c.paid_at.desc()).limit(limit)
        if user_id is not None:
            query = query.where(payments.c.user_id == user_id)
        return [_payment(row) for row in await self._db.all(query)]


def _payment(row: sa.Row) -> PaymentRow:
    m = row._mapping
    return PaymentRow(
        m["charge_id"],
        m["user_id"],
        m["credits"],
        m["stars"],
        m["paid_at"],
        m["refunded_at"],
        m["refunded_by"],
        m["credits_back"],
    )
