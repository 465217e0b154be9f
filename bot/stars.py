"""Credit packs sold for Telegram Stars: STARS_PACKS parsed, and the invoice payload that names a pack and its buyer.

Plain data (no Telegram, no database): the settings, the purchase rules (`bot/purchases.py`) and the payment
handlers share it. The payload carries the pack's credits and price, so a payment is credited with what was on
the invoice even if the packs changed since; the pre-checkout refuses an invoice whose pack is no longer on sale.
"""

from __future__ import annotations

from dataclasses import dataclass

STARS = "XTR"  # Telegram's currency code for Stars
PAYLOAD_PREFIX = "credits"
PAYLOAD_MAX_BYTES = 128  # Telegram's limit for an invoice payload
PACK_STARS_MAX = 100_000  # the most Stars one invoice may ask (Telegram refuses more)


@dataclass(frozen=True, slots=True)
class Pack:
    """A pack on sale: this many credits for this many Stars."""

    credits: int
    stars: int


@dataclass(frozen=True, slots=True)
class Payload:
    """What an invoice's payload says: the pack and who it was made for."""

    pack: Pack
    user_id: int

    def encode(self) -> str:
        text = f"{PAYLOAD_PREFIX}:{self.pack.credits}:{self.pack.stars}:{self.user_id}"
        if len(text.encode()) > PAYLOAD_MAX_BYTES:
            raise ValueError("invoice payload over 128 bytes")
        return text

    @classmethod
    def decode(cls, text: str | None) -> Payload | None:
        """None for a payload this bot did not write (or an older format)."""
        parts = (text or "").split(":")
        if len(parts) != 4 or parts[0] != PAYLOAD_PREFIX or not all(p.isdigit() for p in parts[1:]):
            return None
        credits, stars, user_id = (int(p) for p in parts[1:])
        return cls(Pack(credits, stars), user_id)


def parse_packs(value: str) -> tuple[Pack, ...]:
    """`100:50, 300:140` (credits:stars) → the packs, cheapest first; ValueError naming every mistake. Empty: none
    (payments off)."""
    packs: list[Pack] = []
    problems: list[str] = []
    for raw in (part.strip() for part in value.split(",")):
        if not raw:
            continue
        credits, sep, stars = (part.strip() for part in raw.partition(":"))
        if not sep or not credits.isdigit() or not stars.isdigit():
            problems.append(f"{raw!r}: write credits:stars, e.g. 100:50")
        elif int(credits) < 1 or int(stars) < 1:
            problems.append(f"{raw!r}: credits and stars must be 1 or more")
        elif int(stars) > PACK_STARS_MAX:
            problems.append(f"{raw!r}: Telegram takes at most {PACK_STARS_MAX} Stars per invoice")
        elif any(p.credits == int(credits) for p in packs):
            problems.append(f"{raw!r}: a pack of {credits} credits is listed twice")
        else:
            packs.append(Pack(int(credits), int(stars)))
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(sorted(packs, key=lambda p: (p.stars, p.credits)))
