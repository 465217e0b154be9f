"""A fake Telegram Bot API server for tests.

``FakeBotAPI`` runs a real aiohttp HTTP server on 127.0.0.1 that speaks enough
of the Bot API for python-telegram-bot (or any HTTP client) to run against it:

* tests inject updates (``send_text``, ``send_photo``, ``press``, ...) which the
  bot receives through ``getUpdates`` long polling;
* every API call is recorded in ``calls`` and applied to per-chat message state
  (``message``, ``bot_messages``), so edits and deletions can be asserted;
* Telegram's validation rules that matter for an image bot (text/caption length,
  photo size and dimensions, "message is not modified", ...) are enforced and
  errors can be injected with ``fail_next``;
* webhook mode: after ``setWebhook`` the updates are POSTed to its URL (http is
  accepted too) with the secret header, oldest first, each retried until it gets
  a 2xx, and ``getUpdates`` answers 409 — see ``webhook_deliveries``.
* uploads over ``upload_max_bytes`` (50 MB, like the cloud Bot API; settable per test) are refused the way
  api.telegram.org's front server refuses them: HTTP 413 with nginx's HTML page, not a JSON answer;
* faults of a real Bot API under load (``flood``, ``limit_chats``, ``reset_next``): 429 with ``retry_after`` on
  chosen calls or chats, Telegram's per-chat message limits, connections dropped in the middle of an upload;
* uploads taken slowly, as api.telegram.org takes a 50 MB file over a real link (``upload_bytes_per_second``):
  the files of a request are read at most that fast, so the sender's TCP window fills and it waits.
* payments in Telegram Stars (``StarPayments``): sendInvoice and createInvoiceLink checked as Telegram checks a
  Stars invoice; ``pay`` makes a user pay (pre_checkout_query, answered within ``pre_checkout_timeout``, then a
  successful_payment message); refundStarPayment, ``refund_by_telegram``, getMyStarBalance, getStarTransactions.
* forwardMessage: any message but a service or protected one, as the bot's own with its ``forward_origin``;
  an unknown source chat or message refused as Telegram refuses it. copyMessage: the same content without a link to
  the original (a new caption for a captioned kind), answering a MessageId; an invoice, a service or a protected
  message refused.
* ``block_bot(user)``: the user blocked the bot; whatever it sends them is refused with Telegram's 403.
* inline mode (``send_inline_query``, ``choose_inline_result``, ``press_inline``; ``inline_answers``) and guest
  mode (``send_guest_message``; ``guest_answers``): answers validated as Telegram does, inline messages edited by
  ``inline_message_id`` and a new upload into one refused — see the sections "inline mode" and "guest mode".
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import html
import inspect
import io
import itertools
import json
import mimetypes
import re
import secrets
import struct
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import hdrs, web
from PIL import Image

MB = 1024 * 1024
PHOTO_MAX_BYTES = 10 * MB
UPLOAD_MAX_BYTES = 50 * MB
BODY_MAX_BYTES = 2000 * MB + 16 * MB  # what the fake reads at all (a self-hosted Bot API server's limit)
TOO_LARGE_PAGE = (
    "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n"
    "<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    "</body>\r\n</html>\r\n"
)
DOWNLOAD_MAX_BYTES = 20 * MB
TEXT_MAX = 4096
CAPTION_MAX = 1024
THUMB_SIDE = 90

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
BAD_FILE = "Bad Request: wrong file identifier/HTTP URL specified"

GROUP_ANONYMOUS_BOT = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
_ADMIN_FLAGS = (
    "can_manage_chat can_delete_messages can_manage_video_chats can_restrict_members "
    "can_promote_members can_change_info can_invite_users can_post_stories can_edit_stories "
    "can_delete_stories can_pin_messages can_manage_topics"
).split()
ADMIN_RIGHTS = {"can_be_edited": False, "is_anonymous": False, **dict.fromkeys(_ADMIN_FLAGS, True)}

# Form fields that are always plain strings, even when they look like JSON.
_RAW_KEYS = frozenset(
    {
        "text",
        "caption",
        "callback_query_id",
        "inline_message_id",
        "file_id",
        "parse_mode",
        "title",
        "description",
        "short_description",
        "name",
        "url",
        "secret_token",
        "emoji",
        "action",
        "business_connection_id",
        "message_effect_id",
        "language_code",
        "question",
        "explanation",
        "first_name",
        "last_name",
        "phone_number",
        "address",
        "custom_title",
    }
)
_JSON_SCALAR = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null")
_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,})?")


@dataclass
class Call:
    """One API request received by the fake (also failed and unknown ones)."""

    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)
    error: int | None = None  # the error code it was answered with, if any


class ApiError(Exception):
    """A Bot API error answer: ``{"ok": false, "error_code": ..., ...}``."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(f"{code} {description}")
        self.code, self.description, self.retry_after = code, description, retry_after

    def response(self) -> web.Response:
        if self.code == 413:  # the front server answers, before the Bot API sees the request
            return web.Response(status=413, text=TOO_LARGE_PAGE, content_type="text/html")
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return web.json_response(body, status=self.code)


@dataclass
class WebhookDelivery:
    """One POST of an update to the webhook: its HTTP status, or None when the connection failed."""

    update: dict[str, Any]
    status: int | None
    at: float = field(default_factory=time.monotonic)


@dataclass
class _File:
    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None


class UploadPace:
    """The files of one request read at most `rate` bytes a second (None: at once), from the request's start."""

    CHUNK = 64 * 1024

    def __init__(self, rate: float | None) -> None:
        self.rate, self.started, self.taken = rate, time.monotonic(), 0

    async def took(self, size: int) -> None:
        if not self.rate:
            return
        self.taken += size
        ahead = self.taken / self.rate - (time.monotonic() - self.started)
        if ahead > 0:
            await asyncio.sleep(ahead)

    async def chunks(self, part: Any) -> Any:
        """A multipart file part, chunk by chunk, at the pace."""
        while chunk := await part.read_chunk(self.CHUNK):
            yield chunk
            await self.took(len(chunk))


def _decode(key: str, raw: str) -> Any:
    """Decode a form/query value: JSON for objects, arrays, numbers and literals."""
    if key in _RAW_KEYS or key in _PAYMENT_RAW_KEYS:
        return raw
    s = raw.strip()
    if s[:1] in ("{", "[") or _JSON_SCALAR.fullmatch(s):
        try:
            return json.loads(s)
        except ValueError:
            return raw
    return raw


def _visible_len(text: str, parse_mode: str | None) -> int:
    """Approximate length after entity parsing (HTML tags are not counted)."""
    if parse_mode and parse_mode.upper() == "HTML":
        text = html.unescape(re.sub(r"<[^>]*>", "", text))
    return len(text)


def _command_entities(text: str | None) -> list[dict]:
    match = _COMMAND.match(text or "")
    if not match:
        return []
    length = len(match.group().encode("utf-16-le")) // 2
    return [{"type": "bot_command", "offset": 0, "length": length}]


def _inline_markup(markup: Any) -> dict | None:
    """Only non-empty inline keyboards are visible on a message."""
    if isinstance(markup, dict) and markup.get("inline_keyboard"):
        return markup
    return None


def _int(p: dict, key: str) -> int:
    value = p.get(key)
    if value is None or value == "":
        raise ApiError(400, f"Bad Request: {key} is empty")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"Bad Request: invalid {key} specified") from None


@dataclass
class _Flood:
    method: str | None
    chat_id: int | None
    retry_after: int
    times: int


class _Faults:
    """The load faults of one fake (see ``FakeBotAPI.flood``, ``limit_chats``, ``reset_next``)."""

    _COUNTED = re.compile(r"(send|copy|forward)(?!ChatAction)", re.IGNORECASE)  # new messages

    def __init__(self) -> None:
        self.floods: list[_Flood] = []
        self.resets: dict[str, int] = {}
        self.per_second: float | None = None
        self.burst = 0.0
        self._buckets: dict[int, tuple[float, float]] = {}  # chat -> (tokens, stamp)

    def take_reset(self, method: str) -> bool:
        left = self.resets.get(method.lower(), 0)
        if left:
            self.resets[method.lower()] = left - 1
        return bool(left)

    @staticmethod
    async def drop_connection(request: web.Request) -> web.Response:
        await request.content.read(32 * 1024)  # part of the upload arrives ...
        if request.transport is not None:
            request.transport.abort()  # ... then the connection is gone (a reset, no answer)
        return web.Response(status=500)

    def check(self, method: str, params: dict) -> None:
        """Raise the 429 a flood rule or the per-chat limit gives this call, if any."""
        try:
            chat = int(params.get("chat_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            chat = None
        for flood in self.floods:
            if flood.times > 0 and flood.method in (None, method.lower()) and flood.chat_id in (None, chat):
                flood.times -= 1
                raise ApiError(429, f"Too Many Requests: retry after {flood.retry_after}", flood.retry_after)
        if self.per_second and chat is not None and self._COUNTED.match(method):
            now = time.monotonic()
            tokens, stamp = self._buckets.get(chat, (self.burst, now))
            tokens = min(self.burst, tokens + (now - stamp) * self.per_second)
            if tokens < 1:
                self._buckets[chat] = (tokens, now)
                wait = max(1, int((1 - tokens) / self.per_second + 0.999))
                raise ApiError(429, f"Too Many Requests: retry after {wait}", wait)
            self._buckets[chat] = (tokens - 1, now)


# What a forwarded message carries over (forwardMessage): its content, never its place (ids, chat, replies).
_FORWARDABLE_KINDS = frozenset(
    "text photo document voice video video_note audio animation sticker contact location venue poll dice".split()
)
_FORWARDABLE = _FORWARDABLE_KINDS | {"entities", "caption", "caption_entities", "show_caption_above_media"}

_API: dict[str, tuple[str, Callable[..., Any]]] = {}


def _api(*names: str) -> Callable:
    """Register a handler for Bot API methods (matched case-insensitively)."""

    def register(fn: Callable) -> Callable:
        for name in names:
            _API[name.lower()] = (name, fn)
        return fn

    return register


# ====================================================================== payments (Telegram Stars)
#
# The Stars side of the Bot API: sendInvoice / createInvoiceLink, the pre-checkout round trip, successful_payment,
# refundStarPayment, refunds Telegram makes by itself, getMyStarBalance and getStarTransactions. Texts of refusals:
# the Bot API server's own (tdlib/telegram-bot-api Client.cpp: "parameter ... is required", QUERY_ID_INVALID's
# sentence), TDLib's (td/telegram/LabeledPricePart.cpp: "total price must be positive"), else Telegram's server
# error names (core.telegram.org error lists) behind "Bad Request: ".

STARS = "XTR"
PRE_CHECKOUT_TIMEOUT = 10.0  # seconds Telegram waits for answerPreCheckoutQuery
STARS_INVOICE_MAX = 100_000  # one invoice's Stars: undocumented; 100000 accepted, 150000 refused (measured 2026)
INVOICE_TITLE_MAX, INVOICE_DESCRIPTION_MAX, INVOICE_PAYLOAD_MAX = 32, 255, 128  # characters, characters, bytes
CURRENCY_AMOUNT_MAX = 9999_9999_9999  # TDLib's check_currency_amount (misc.cpp)

PAYMENT_PROVIDER_INVALID = "Bad Request: PAYMENT_PROVIDER_INVALID"  # a typo for XTR: PTB #4711, TelegramBots #1445
STARS_INVOICE_INVALID = "Bad Request: STARS_INVOICE_INVALID"  # payments.exportInvoice's documented errors
CURRENCY_TOTAL_AMOUNT_INVALID = "Bad Request: CURRENCY_TOTAL_AMOUNT_INVALID"
INVOICE_PAYLOAD_INVALID = "Bad Request: INVOICE_PAYLOAD_INVALID"
REPLY_MARKUP_BUY_EMPTY = "Bad Request: REPLY_MARKUP_BUY_EMPTY"
TITLE_INVALID = "Bad Request: TITLE_INVALID"  # unverified wording: Telegram documents the limit, not the error
DESCRIPTION_INVALID = "Bad Request: DESCRIPTION_INVALID"  # unverified wording, as above
CHARGE_NOT_FOUND = "Bad Request: CHARGE_NOT_FOUND"  # from pyrogram forks' list of errors seen; not on core.telegram.org
CHARGE_ALREADY_REFUNDED = "Bad Request: CHARGE_ALREADY_REFUNDED"  # payments.refundStarsCharge; telegram-bot-api #690

# Invoice options a Stars invoice must not carry (Telegram answers STARS_INVOICE_INVALID).
_NOT_FOR_STARS = (
    "need_name",
    "need_phone_number",
    "need_email",
    "need_shipping_address",
    "send_phone_number_to_provider",
    "send_email_to_provider",
    "is_flexible",
    "max_tip_amount",
    "suggested_tip_amounts",
)
# Payment form fields that stay strings even when they look like numbers or JSON (a payload "007" is not 7).
_PAYMENT_RAW_KEYS = frozenset(
    {
        "payload",
        "currency",
        "provider_token",
        "start_parameter",
        "photo_url",
        "error_message",
        "pre_checkout_query_id",
        "telegram_payment_charge_id",
        "provider_data",
    }
)


def _to_bool(value: Any) -> bool:
    """The Bot API's to_bool: "true", "yes" or "1", any case."""
    if isinstance(value, bool):
        return value
    return str(value if value is not None else "").strip().lower() in ("true", "yes", "1")


def _int_or(p: dict, key: str, default: int) -> int:
    """An integer argument read as the Bot API server reads one: what does not parse counts as absent."""
    try:
        return int(p.get(key) or default)
    except (TypeError, ValueError):
        return default


def _required(p: dict, key: str) -> str:
    value = p.get(key)
    if value is None or value == "":
        raise ApiError(400, f'Bad Request: parameter "{key}" is required')
    return str(value)


@dataclass
class _Invoice:
    """What Telegram keeps of an invoice besides what the message shows (the payload above all)."""

    title: str
    description: str
    payload: str
    currency: str
    total_amount: int
    start_parameter: str


@dataclass
class StarPayment:
    """A payment in Stars the fake recorded: its successful_payment update, and its refund if any."""

    charge_id: str
    user: dict
    amount: int
    payload: str
    date: int
    update: dict  # the update carrying the successful_payment message (see ``redeliver``)
    refunded_by: str | None = None  # "bot" (refundStarPayment) or "telegram" (``refund_by_telegram``)
    refund_update: dict | None = None


@dataclass
class CheckoutRefused:
    """What ``pay`` returns when no payment happened: the bot said no, or did not answer in time."""

    query_id: str
    error_message: str | None = None  # the bot's reason, shown to the buyer
    timed_out: bool = False


@dataclass
class _Checkout:
    query: dict
    invoice: _Invoice
    answer: asyncio.Future


class StarPayments:
    """Mixin of ``FakeBotAPI`` (it uses its chats, messages and update queue): Telegram Stars payments, as a bot
    selling digital goods meets them.

    Helpers: ``pay`` (a user pays an invoice message or link: pre_checkout_query, then successful_payment),
    ``redeliver`` (the same update once more), ``refund_by_telegram`` (a refund the bot did not ask for, as after a
    dispute), ``invoices``. State: ``star_balance``, ``star_payments`` (by charge id), ``star_transactions`` (as
    getStarTransactions answers them), ``pre_checkout_answers``, ``pre_checkout_timeout``, ``stars_invoice_max``.
    """

    def _init_payments(self) -> None:
        self.star_balance = 0
        self.star_payments: dict[str, StarPayment] = {}
        self.star_transactions: list[dict] = []
        self.pre_checkout_answers: dict[str, dict] = {}
        self.pre_checkout_timeout = PRE_CHECKOUT_TIMEOUT
        self.stars_invoice_max = STARS_INVOICE_MAX
        self._invoices: dict[tuple[int, int], _Invoice] = {}
        self._invoice_links: dict[str, _Invoice] = {}
        self._checkouts: dict[str, _Checkout] = {}
        self._charge_ids = itertools.count(1)

    # ------------------------------------------------------------ helpers for tests

    def invoices(self, chat_id: int) -> list[dict]:
        """Invoice messages the bot sent to a chat (and did not delete), oldest first."""
        return [m for m in self.bot_messages(chat_id) if "invoice" in m]

    async def pay(self, user: dict, invoice: dict | str, *, ok_expected: bool = True) -> str | CheckoutRefused:
        """``user`` pays ``invoice`` (an invoice message, or a link from createInvoiceLink).

        Telegram sends a pre_checkout_query and waits ``pre_checkout_timeout`` seconds for answerPreCheckoutQuery;
        on ok it charges the Stars, adds them to the bot's balance and sends a successful_payment message in the
        user's private chat with the bot. Returns the telegram_payment_charge_id; with ``ok_expected=False`` returns
        the ``CheckoutRefused``. Either way the other outcome fails the test.
        """
        details = self._invoice_of(invoice)
        self._users.setdefault(user["id"], dict(user))
        query_id = str(5_000_000_000_000_000_000 + next(self._ids))
        query = {
            "id": query_id,
            "from": copy.deepcopy(user),
            "currency": details.currency,
            "total_amount": details.total_amount,
            "invoice_payload": details.payload,
        }
        checkout = _Checkout(query, details, asyncio.get_running_loop().create_future())
        self._checkouts[query_id] = checkout
        self._enqueue("pre_checkout_query", query)
        try:
            answer = await asyncio.wait_for(asyncio.shield(checkout.answer), self.pre_checkout_timeout)
        except TimeoutError:
            answer = None
        finally:
            self._checkouts.pop(query_id, None)  # a late answer finds no query: QUERY_ID_INVALID
        if answer is None or not answer["ok"]:
            refused = CheckoutRefused(
                query_id, None if answer is None else answer["error_message"], timed_out=answer is None
            )
            if ok_expected:
                raise AssertionError(f"the payment was expected to go through: {refused}")
            return refused
        charge_id = self._charge(user, details)
        if not ok_expected:
            raise AssertionError(f"the payment was expected to be refused, but {charge_id} was charged")
        return charge_id

    def redeliver(self, update: dict, *, same_id: bool = False) -> dict:
        """Deliver an update once more: by default under a new update_id (Telegram repeating a successful_payment, a
        second replica receiving it), with ``same_id`` as a webhook retry repeats it."""
        again = copy.deepcopy(update)
        if not same_id:
            again["update_id"] = next(self._update_ids)
        self._updates.append(again)
        self._wake()
        return again

    def refund_by_telegram(self, charge_id: str) -> dict:
        """Telegram refunds a payment by itself (a dispute, a store refund): the Stars leave the bot's balance and a
        refunded_payment message arrives, without the bot calling refundStarPayment. Returns that message."""
        payment = self.star_payments.get(charge_id)
        if payment is None or payment.refunded_by:
            raise AssertionError(f"no refundable payment {charge_id!r}")
        return self._refund(payment, "telegram")

    # ------------------------------------------------------------ internals

    def _invoice_of(self, invoice: dict | str) -> _Invoice:
        if isinstance(invoice, str):
            details = self._invoice_links.get(invoice)
        else:
            details = self._invoices.get((invoice["chat"]["id"], invoice["message_id"]))
        if details is None:
            raise AssertionError(f"not an invoice the bot made: {invoice!r}")
        return details

    def _charge(self, user: dict, details: _Invoice) -> str:
        charge_id = f"stxFake{next(self._charge_ids):06d}{secrets.token_hex(8)}"
        chat = self.private_chat(self._users.get(user["id"], user))
        message = self._incoming(
            chat,
            user,
            reply_to=None,
            thread_id=None,
            successful_payment={
                "currency": details.currency,
                "total_amount": details.total_amount,
                "invoice_payload": details.payload,
                "telegram_payment_charge_id": charge_id,
                "provider_payment_charge_id": "",
            },
        )
        update = copy.deepcopy(self._updates[-1])
        self.star_balance += details.total_amount
        self.star_payments[charge_id] = StarPayment(
            charge_id, dict(user), details.total_amount, details.payload, message["date"], update
        )
        self.star_transactions.append(
            {
                "id": charge_id,
                "date": message["date"],
                "amount": details.total_amount,
                "source": self._partner(user, details.payload),
            }
        )
        return charge_id

    def _refund(self, payment: StarPayment, by: str) -> dict:
        payment.refunded_by = by
        self.star_balance -= payment.amount
        chat = self.private_chat(self._users.get(payment.user["id"], payment.user))
        message = self._incoming(
            chat,
            payment.user,
            reply_to=None,
            thread_id=None,
            refunded_payment={
                "currency": STARS,
                "total_amount": payment.amount,
                "invoice_payload": payment.payload,
                "telegram_payment_charge_id": payment.charge_id,
            },
        )
        payment.refund_update = copy.deepcopy(self._updates[-1])
        self.star_transactions.append(
            {
                "id": payment.charge_id,
                "date": message["date"],
                "amount": payment.amount,
                "receiver": self._partner(payment.user, payment.payload),
            }
        )
        return message

    def _partner(self, user: dict, payload: str) -> dict:
        """TransactionPartnerUser of an invoice payment (a refund has the same, as its receiver)."""
        partner = {
            "type": "user",
            "transaction_type": "invoice_payment",
            "user": copy.deepcopy(self._users.get(user["id"], user)),
        }
        if payload:
            partner["invoice_payload"] = payload
        return partner

    def _check_invoice(self, p: dict) -> _Invoice:
        """Validate an invoice in the order Telegram does: Bot API server, TDLib, then Telegram's servers."""
        title, description = _required(p, "title"), _required(p, "description")
        payload, currency = _required(p, "payload"), _required(p, "currency")
        prices = p.get("prices")
        if prices is None or prices == "":
            raise ApiError(400, 'Bad Request: parameter "prices" is required')
        if isinstance(prices, str):
            raise ApiError(400, "Bad Request: can't parse prices JSON object")
        if not isinstance(prices, list):
            raise ApiError(400, "Bad Request: expected an Array of labeled prices")
        total = 0
        for price in prices:
            if not isinstance(price, dict):
                raise ApiError(400, "Bad Request: can't parse labeled price: LabeledPrice must be an Object")
            for key in ("label", "amount"):
                if key not in price:
                    raise ApiError(400, f"Bad Request: can't parse labeled price: Can't find field \"{key}\"")
            if not str(price["label"]):
                raise ApiError(400, "Bad Request: can't parse labeled price: LabeledPrice label must be non-empty")
            if isinstance(price["amount"], bool) or not isinstance(price["amount"], int):
                raise ApiError(400, 'Bad Request: can\'t parse labeled price: Field "amount" must be a Number')
            if abs(price["amount"]) > CURRENCY_AMOUNT_MAX:
                raise ApiError(400, "Bad Request: too big amount of the currency specified")
            total += price["amount"]
        if not prices:
            raise ApiError(400, "Bad Request: there must be at least one price")
        if total <= 0:
            raise ApiError(400, "Bad Request: total price must be positive")
        if total > CURRENCY_AMOUNT_MAX:
            raise ApiError(400, "Bad Request: total price is too big")
        if currency != STARS or p.get("provider_token"):  # the fake knows no payment provider but Stars
            raise ApiError(400, PAYMENT_PROVIDER_INVALID)
        if len(prices) != 1 or any(p.get(key) not in (None, "", False, "false", 0, []) for key in _NOT_FOR_STARS):
            raise ApiError(400, STARS_INVOICE_INVALID)
        if len(payload.encode()) > INVOICE_PAYLOAD_MAX:
            raise ApiError(400, INVOICE_PAYLOAD_INVALID)
        if len(title) > INVOICE_TITLE_MAX:
            raise ApiError(400, TITLE_INVALID)
        if len(description) > INVOICE_DESCRIPTION_MAX:
            raise ApiError(400, DESCRIPTION_INVALID)
        if total > self.stars_invoice_max:
            raise ApiError(400, CURRENCY_TOTAL_AMOUNT_INVALID)
        return _Invoice(title, description, payload, currency, total, str(p.get("start_parameter") or ""))

    # ------------------------------------------------------------ API methods

    @_api("sendInvoice")
    def _send_invoice(self, p: dict, files: dict) -> dict:
        chat_id = self._chat_id(p)
        details = self._check_invoice(p)
        markup = _inline_markup(p.get("reply_markup"))
        first = markup["inline_keyboard"][0][:1] if markup is not None else []
        if markup is not None and not (first and first[0].get("pay")):
            raise ApiError(400, REPLY_MARKUP_BUY_EMPTY)  # the first button of an invoice must be its Pay button
        message = self._bot_message(
            p,
            chat_id,
            reply_markup=markup,
            invoice={
                "title": details.title,
                "description": details.description,
                "start_parameter": details.start_parameter,
                "currency": details.currency,
                "total_amount": details.total_amount,
            },
        )
        self._invoices[(chat_id, message["message_id"])] = details
        return message

    @_api("createInvoiceLink")
    def _create_invoice_link(self, p: dict, files: dict) -> str:
        details = self._check_invoice(p)
        link = f"https://t.me/$Fake{next(self._ids):06d}{secrets.token_urlsafe(9)}"
        self._invoice_links[link] = details
        return link

    @_api("answerPreCheckoutQuery")
    def _answer_pre_checkout_query(self, p: dict, files: dict) -> bool:
        ok = _to_bool(p.get("ok"))
        error_message = None if ok else _required(p, "error_message")
        query_id = str(p.get("pre_checkout_query_id") or "")
        checkout = self._checkouts.get(query_id)
        if checkout is None or checkout.answer.done():
            raise ApiError(400, QUERY_INVALID)  # unknown, answered already, or too late
        self.pre_checkout_answers[query_id] = {"ok": ok, "error_message": error_message}
        checkout.answer.set_result(self.pre_checkout_answers[query_id])
        return True

    @_api("refundStarPayment")
    def _refund_star_payment(self, p: dict, files: dict) -> bool:
        user_id = _int_or(p, "user_id", 0)
        if user_id <= 0:
            raise ApiError(400, "Bad Request: invalid user_id specified")
        charge_id = _required(p, "telegram_payment_charge_id")
        payment = self.star_payments.get(charge_id)
        if payment is None or payment.user["id"] != user_id:
            raise ApiError(400, CHARGE_NOT_FOUND)
        if payment.refunded_by:
            raise ApiError(400, CHARGE_ALREADY_REFUNDED)
        self._refund(payment, "bot")
        return True

    @_api("getMyStarBalance")
    def _get_my_star_balance(self, p: dict, files: dict) -> dict:
        return {"amount": self.star_balance}  # nanostar_amount only when not 0, as the Bot API server writes it

    @_api("getStarTransactions")
    def _get_star_transactions(self, p: dict, files: dict) -> dict:
        offset = max(_int_or(p, "offset", 0), 0)
        limit = min(max(_int_or(p, "limit", 100), 1), 100)  # clamped, as the Bot API server does
        return {"transactions": copy.deepcopy(self.star_transactions[offset : offset + limit])}


# ====================================================================== end of payments


# ====================================================================== inline mode
# Inline queries (`@bot a red fox`), their answers, the chosen result's message in the chat and edits of it by
# `inline_message_id` (editMessageMedia among them). The error texts are those of tdlib/telegram-bot-api
# (telegram-bot-api/Client.cpp: get_inline_query_result, get_input_media, fail_query_with_error's rewriting),
# of TDLib behind it (td/telegram/InlineQueriesManager.cpp, InlineMessageManager.cpp) and of Telegram's servers
# (the RPC errors of messages.setInlineBotResults / messages.editInlineBotMessage), as the Bot API passes them on.

INLINE_RESULTS_MAX = 50
INLINE_ID_MAX_BYTES = 64  # result ids, next_offset, callback_data and start_parameter alike
INLINE_QUERY_MAX = 256
CHAT_TYPES = frozenset({"sender", "private", "group", "supergroup", "channel"})
URL_PHOTO_MAX_BYTES = 5 * MB  # "5 MB max size for photos and 20 MB max for other types of content" (by URL)
URL_FILE_MAX_BYTES = 20 * MB
URL_DOCUMENT_TYPES = frozenset({"application/pdf", "application/zip", "image/gif"})  # sendDocument by URL
# editMessageMedia of an inline message with a new upload: TDLib finds no remote file to send (photo_get_input_media
# returns null) and answers "Invalid message content specified" (InlineMessageManager::edit_inline_message_media;
# tdlib/td#3157), which the Bot API server prefixes with "Bad Request: " and starts in lower case.
INLINE_UPLOAD_REFUSED = "Bad Request: invalid message content specified"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_MENTION = re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{3,31}")


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _mention_entities(text: str) -> list[dict]:
    return [
        {"type": "mention", "offset": _utf16_len(text[: m.start()]), "length": _utf16_len(m.group())}
        for m in _MENTION.finditer(text)
    ]


def _field(obj: dict, name: str) -> str:
    """A required string field, as telegram-bot-api's JsonObject::get_required_string_field reads it."""
    value = obj.get(name)
    if value is None:
        raise ValueError(f'Can\'t find field "{name}"')
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f'Field "{name}" must be of type String')
    return str(value)


def _check_markup(markup: Any) -> None:
    """Telegram refuses callback data that is empty or over 64 bytes (BUTTON_DATA_INVALID)."""
    if not isinstance(markup, dict):
        return
    for row in markup.get("inline_keyboard") or []:
        for button in row:
            if "callback_data" in button:
                size = len(str(button["callback_data"]).encode())
                if not 1 <= size <= INLINE_ID_MAX_BYTES:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


@dataclass
class BotQuery:
    """An inline query or a guest query the fake sent, and whether (and with what) the bot answered it."""

    id: str
    user: dict
    query: str
    at: float = field(default_factory=time.monotonic)
    answer: dict | None = None
    chat: dict | None = None  # guest queries: the chat the bot was summoned in
    message: dict | None = None  # guest queries: the message with the mention


@dataclass
class InlineSent:
    """What a chosen inline result (or an answered guest query) put in the chat."""

    message: dict
    inline_message_id: str | None


class _InlineMode:
    """Inline mode: `send_inline_query`, `answerInlineQuery`, `choose_inline_result`, `press_inline`, edits by
    `inline_message_id` and `editMessageMedia`. Mixed into FakeBotAPI (its message store and files are used)."""

    def _init_inline(self: Any) -> None:
        self.inline_mode = True  # /setinline done in @BotFather: getMe says supports_inline_queries
        self.inline_feedback = True  # /setinlinefeedback on: chosen_inline_result updates are sent
        self.inline_answer_timeout = 10.0  # seconds a query can be answered in
        self.inline_queries: dict[str, BotQuery] = {}
        self.inline_answers: dict[str, dict] = {}  # query id -> the answerInlineQuery parameters, results parsed
        self._inline_messages: dict[str, tuple[int, int]] = {}  # inline_message_id -> (chat id, message id)

    # ------------------------------------------------------- what users do

    def send_inline_query(self: Any, user: dict, query: str, *, chat_type: str = "sender", offset: str = "") -> str:
        """A user types `@bot <query>` in a chat of ``chat_type``; returns the inline query id."""
        assert self.inline_mode, "inline mode is off (/setinline in @BotFather): Telegram sends no inline queries"
        assert chat_type in CHAT_TYPES, f"chat_type must be one of {sorted(CHAT_TYPES)}"
        assert len(query) <= INLINE_QUERY_MAX, "an inline query is at most 256 characters"
        self._users.setdefault(user["id"], dict(user))
        query_id = str(5_000_000_000_000_000_000 + next(self._ids))
        self.inline_queries[query_id] = BotQuery(query_id, dict(user), query)
        self._enqueue(
            "inline_query", {"id": query_id, "from": user, "query": query, "offset": offset, "chat_type": chat_type}
        )
        return query_id

    def choose_inline_result(
        self: Any, user: dict, query_id: str, result_id: str, *, chat: dict | None = None
    ) -> InlineSent:
        """The user picks a result of the bot's answer: its message goes into ``chat`` (default: the user's private
        chat with the bot) sent by the user "via @bot"; a result with an inline keyboard gets an inline_message_id.
        The bot gets that message as a `message` update where it sees it (its private chat; groups it is in, even in
        privacy mode) and, with inline feedback on, a chosen_inline_result (with the inline_message_id, if any)."""
        query = self.inline_queries.get(query_id)
        assert query is not None and query.answer is not None, f"inline query {query_id} was not answered"
        result = next((r for r in query.answer["results"] if r["id"] == result_id), None)
        assert result is not None, f"the answer to {query_id} has no result {result_id!r}"
        chat = chat or self.private_chat(user)
        sent = self._post_result(result, chat, user, via_bot=True)
        if chat["id"] == user["id"] or (chat["type"] in ("group", "supergroup") and chat["id"] not in self._not_member):
            self._enqueue("message", sent.message)  # its own private chat, and groups: "messages sent via this bot"
        if self.inline_feedback:
            chosen: dict[str, Any] = {"result_id": result_id, "from": user, "query": query.query}
            if sent.inline_message_id:
                chosen["inline_message_id"] = sent.inline_message_id
            self._enqueue("chosen_inline_result", chosen)
        return sent

    def press_inline(self: Any, inline_message_id: str, data: str, user: dict) -> str:
        """A user presses a button of an inline message: a callback_query with inline_message_id and
        chat_instance and no message, as Telegram sends it. Returns the callback query id."""
        where = self._inline_messages.get(inline_message_id)
        assert where is not None, f"unknown inline message {inline_message_id}"
        current = self._messages.get(where[0], {}).get(where[1]) or {}
        buttons = [
            b.get("callback_data")
            for row in (current.get("reply_markup") or {}).get("inline_keyboard", [])
            for b in row
        ]
        assert data in buttons, f"the inline message has no button with data {data!r} (has {buttons})"
        query_id = str(4_000_000_000_000_000_000 + next(self._ids))
        self._queries.add(query_id)
        self._enqueue(
            "callback_query",
            {
                "id": query_id,
                "from": user,
                "inline_message_id": inline_message_id,
                "chat_instance": str(7_000_000 + where[0]),
                "data": data,
            },
        )
        return query_id

    def start_with_payload(self: Any, user: dict, payload: str) -> dict:
        """The user opens t.me/<bot>?start=<payload>: the client sends `/start <payload>` in the private chat."""
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", payload):
            raise ValueError("a start payload is 1-64 characters of A-Z, a-z, 0-9, _ and -")
        return self.send_text(self.private_chat(user), user, f"/start {payload}")

    # ------------------------------------------------------- what the bot did

    def inline_message(self: Any, inline_message_id: str) -> dict | None:
        """The current state of an inline message (after edits); None if unknown."""
        where = self._inline_messages.get(inline_message_id)
        return self.message(*where) if where else None

    # ------------------------------------------------------------ API methods

    @_api("answerInlineQuery")
    def _answer_inline_query(self: Any, p: dict, files: dict) -> bool:
        raw = p.get("results")
        if raw is None or raw == "":
            raw = []
        if not isinstance(raw, list):
            raise ApiError(400, "Bad Request: expected an Array of inline query results")
        if len(raw) > INLINE_RESULTS_MAX:
            raise ApiError(400, "Bad Request: too many inline query results specified")
        results = []
        for value in raw:
            try:
                results.append(self._parse_result(value))
            except ValueError as exc:
                raise ApiError(400, f"Bad Request: can't parse inline query result: {exc}") from None
        button = p.get("button")
        if button not in (None, ""):
            self._check_results_button(button)
        for result in results:
            self._check_result_content(result)
        query = self._live_query(self.inline_queries, str(p.get("inline_query_id", "")), self.inline_answer_timeout)
        if len(str(p.get("next_offset") or "").encode()) > INLINE_ID_MAX_BYTES:
            raise ApiError(400, "Bad Request: NEXT_OFFSET_INVALID")
        ids: set[str] = set()
        for result in results:
            self._check_result_telegram(result)
            if result["id"] in ids:
                raise ApiError(400, "Bad Request: RESULT_ID_DUPLICATE")
            ids.add(result["id"])
        query.answer = self.inline_answers[query.id] = {**p, "results": results}
        return True

    @_api("editMessageMedia")
    async def _edit_message_media(self: Any, p: dict, files: dict) -> dict | bool:
        media = p.get("media")
        if not isinstance(media, dict):
            raise ApiError(400, "Bad Request: can't parse input media JSON object")
        try:
            kind = _field(media, "type")
        except ValueError as exc:
            raise ApiError(400, f"Bad Request: can't parse InputMedia: {exc}") from None
        source = media.get("media")
        upload = isinstance(source, str) and source.startswith("attach://")
        if not isinstance(source, str) or not source or (upload and source[9:] not in files):
            raise ApiError(400, "Bad Request: can't parse InputMedia: media not found")
        if kind not in ("photo", "document"):
            if kind in ("video", "animation", "audio", "live_photo"):
                raise NotImplementedError(f"the fake edits media to photos and documents only, not {kind}")
            raise ApiError(400, f'Bad Request: can\'t parse InputMedia: type "{kind}" is unsupported')
        inline = self._is_inline(p)
        caption = self._check_caption(media)
        if inline:
            _check_markup(p.get("reply_markup"))
            if upload:
                raise ApiError(400, INLINE_UPLOAD_REFUSED)
        msg = self._find(p, "edit")
        group = msg.get("media_group_id") and ("photo" if "photo" in msg else "document")
        if group and group != kind:
            raise ApiError(400, "Bad Request: can't use the media of the specified type in the album")
        content = await self._media_content(kind, source, files, inline)
        other = "document" if kind == "photo" else "photo"
        return self._edit(
            p,
            **{kind: content, other: None},
            text=None,
            entities=None,
            link_preview_options=None,
            caption=caption,
            caption_entities=media.get("caption_entities") or None,
        )

    # ---------------------------------------------------------------- internals

    @staticmethod
    def _is_inline(p: dict) -> bool:
        """The Bot API edits an inline message when neither chat_id nor message_id is given."""
        return p.get("chat_id") in (None, "") and p.get("message_id") in (None, "", 0)

    def _inline_target(self: Any, p: dict) -> dict:
        """The stored message an edit by inline_message_id applies to."""
        inline_message_id = str(p.get("inline_message_id") or "")
        if not inline_message_id:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        if not _BASE64URL.fullmatch(inline_message_id):
            raise ApiError(400, "Bad Request: invalid inline message identifier specified")
        _check_markup(p.get("reply_markup"))
        where = self._inline_messages.get(inline_message_id)
        msg = self._messages.get(where[0], {}).get(where[1]) if where else None
        if msg is None:
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        return msg

    def _new_inline_message_id(self: Any, chat_id: int, message_id: int) -> str:
        """Like Telegram's: a serialized inputBotInlineMessageID64 (dc, owner, id, access hash), base64url."""
        n = next(self._ids)
        raw = struct.pack("<iqiq", 2, chat_id, message_id, (n * 0x9E3779B97F4A7C15) % (1 << 63))
        inline_message_id = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        self._inline_messages[inline_message_id] = (chat_id, message_id)
        return inline_message_id

    @staticmethod
    def _live_query(queries: dict[str, BotQuery], query_id: str, timeout: float) -> BotQuery:
        """An inline or guest query that can still be answered: known, unanswered and not older than `timeout`."""
        query = queries.get(query_id)
        if query is None or query.answer is not None or time.monotonic() - query.at > timeout:
            raise ApiError(400, QUERY_INVALID)
        return query

    def _parse_result(self: Any, value: Any) -> dict:
        """What telegram-bot-api's get_inline_query_result demands of one InlineQueryResult (ValueError: its
        message). Types the fake does not model are refused loudly, not passed."""
        if not isinstance(value, dict):
            raise ValueError("Inline query result must be an object")
        result = dict(value)
        result["type"] = kind = _field(result, "type").lower()
        result["id"] = _field(result, "id")
        content = result.get("input_message_content")
        if kind == "article" and not isinstance(content, dict):
            _field(result, "message_text")  # the legacy field is the only other way
        if isinstance(content, dict):
            if not content.get("message_text"):
                if set(content) & {"latitude", "phone_number", "payload"}:
                    raise NotImplementedError("the fake sends text as input_message_content only")
                if kind == "article":
                    raise ValueError("Input message content is not specified")
                result.pop("input_message_content")
        if kind == "article":
            _field(result, "title")
        elif kind == "photo":
            if not result.get("photo_url"):
                _field(result, "photo_file_id")
        elif kind == "document":
            _field(result, "title")
            if result.get("document_url"):
                _field(result, "mime_type")
            else:
                _field(result, "document_file_id")
        elif kind in ("audio", "contact", "game", "gif", "location", "mpeg4_gif", "sticker", "venue", "video", "voice"):
            raise NotImplementedError(f"the fake does not model {kind} inline results")
        else:
            raise ValueError(f'type "{kind}" is unsupported for the inline query result')
        return result

    def _check_results_button(self: Any, button: Any) -> None:
        """The `button` of answerInlineQuery (telegram-bot-api's get_inline_query_results_button, then TDLib)."""
        prefix = "Bad Request: can't parse inline query results button: "
        if not isinstance(button, dict):
            raise ApiError(400, prefix + "InlineQueryResultsButton must be an Object")
        try:
            _field(button, "text")
            if "start_parameter" in button:
                start = _field(button, "start_parameter")
            elif "web_app" in button:
                return
            else:
                raise ValueError("InlineQueryResultsButton must have exactly one optional field")
        except ValueError as exc:
            raise ApiError(400, prefix + str(exc)) from None
        if not start:
            raise ApiError(400, "Bad Request: can't use empty start_parameter")
        if len(start) > INLINE_ID_MAX_BYTES:
            raise ApiError(400, "Bad Request: too long start_parameter specified")
        if not _BASE64URL.fullmatch(start):
            raise ApiError(400, "Bad Request: unallowed characters in start_parameter are used")

    def _check_result_content(self: Any, result: dict) -> None:
        """TDLib's checks of a result before it goes to Telegram: file ids and document URLs."""
        kind = result["type"]
        file_id = (
            result.get("photo_file_id")
            if kind == "photo" and not result.get("photo_url")
            else result.get("document_file_id")
            if kind == "document" and not result.get("document_url")
            else None
        )
        if file_id is not None:
            self._known_file(file_id, kind, "Bad Request: wrong remote file identifier specified: can't unserialize it")
        if (
            kind == "document"
            and result.get("document_url")
            and not str(result.get("mime_type", "")).startswith(("application/pdf", "application/zip"))
        ):
            raise ApiError(400, "Bad Request: unallowed document MIME type")

    @staticmethod
    def _check_result_telegram(result: dict) -> None:
        """Telegram's own refusals of a result (RPC errors of messages.setInlineBotResults)."""
        size = len(result["id"].encode())
        if size == 0:
            raise ApiError(400, "Bad Request: RESULT_ID_EMPTY")
        if size > INLINE_ID_MAX_BYTES:
            raise ApiError(400, "Bad Request: RESULT_ID_INVALID")
        if result["type"] == "article" and not str(result.get("title", "")).strip():
            raise ApiError(400, "Bad Request: ARTICLE_TITLE_EMPTY")
        if result["type"] == "photo" and result.get("photo_url") and not result.get("thumbnail_url"):
            raise ApiError(400, "Bad Request: PHOTO_THUMB_URL_EMPTY")
        text = (result.get("input_message_content") or {}).get("message_text") or result.get("message_text")
        if (
            text is not None
            and _visible_len(str(text), (result.get("input_message_content") or {}).get("parse_mode")) > TEXT_MAX
        ):
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        if (
            result.get("caption") is not None
            and _visible_len(str(result["caption"]), result.get("parse_mode")) > CAPTION_MAX
        ):
            raise ApiError(400, "Bad Request: MEDIA_CAPTION_TOO_LONG")
        _check_markup(result.get("reply_markup"))

    def _known_file(self: Any, file_id: str, kind: str, unknown: str) -> _File:
        """A file the fake stores, usable as `kind` (TDLib: "Can't use file of type Document as Photo")."""
        stored = self._files.get(file_id)
        if stored is None:
            raise ApiError(400, unknown)
        real = "Photo" if file_id in self._photo_sets else "Document"
        wanted = "Photo" if kind == "photo" else "Document"
        if real != wanted:
            raise ApiError(400, f"Bad Request: can't use file of type {real} as {wanted}")
        return stored

    def _result_content(self: Any, result: dict) -> dict[str, Any]:
        """The content of the message a chosen result (or guest answer) makes."""
        text_content = result.get("input_message_content") or (
            {"message_text": result["message_text"]} if result.get("message_text") else None
        )
        if text_content:
            return {"text": str(text_content["message_text"]), "entities": text_content.get("entities") or None}
        content: dict[str, Any] = {
            "caption": result.get("caption") or None,
            "caption_entities": result.get("caption_entities") or None,
        }
        if result["type"] == "photo":
            if result.get("photo_url"):  # Telegram fetches it; the fake keeps a placeholder of the stated size
                stored = self._store_file(b"", "photos", ext=".jpg")
                content["photo"] = [
                    {
                        "file_id": stored.file_id,
                        "file_unique_id": stored.file_unique_id,
                        "width": int(result.get("photo_width") or 0),
                        "height": int(result.get("photo_height") or 0),
                    }
                ]
            else:
                content["photo"] = copy.deepcopy(self._photo_sets[result["photo_file_id"]])
        else:
            if result.get("document_url"):
                name = str(result["document_url"]).rsplit("/", 1)[-1] or "file"
                stored = self._store_file(b"", "documents", file_name=name, mime_type=result["mime_type"])
            else:
                stored = self._files[result["document_file_id"]]
            content["document"] = self._document(stored)
        return content

    def _post_result(self: Any, result: dict, chat: dict, user: dict, *, via_bot: bool) -> InlineSent:
        """Put a result's message into a chat: sent by the user via the bot (inline mode) or by the bot as a guest
        called by the user (guest mode, which always gives an inline_message_id)."""
        chat = self._chats.get(chat["id"]) or self._register_chat(chat)
        markup = _inline_markup(result.get("reply_markup"))
        extra = {"via_bot": self.bot_user} if via_bot else {"guest_bot_caller_user": user}
        msg = self._new_message(
            chat, user if via_bot else self.bot_user, **extra, **self._result_content(result), reply_markup=markup
        )
        inline_message_id = None
        if markup or not via_bot:
            inline_message_id = self._new_inline_message_id(chat["id"], msg["message_id"])
        return InlineSent(copy.deepcopy(msg), inline_message_id)

    async def _media_content(self: Any, kind: str, source: str, files: dict, inline: bool) -> Any:
        """The photo sizes or document of an editMessageMedia: an upload (chat messages only), a stored file's
        file_id, or an http URL that Telegram fetches (photos up to 5 MB, other files up to 20 MB)."""
        if source.startswith(("http://", "https://")):
            data, ctype = await self._fetch_url(
                source,
                URL_PHOTO_MAX_BYTES if kind == "photo" else URL_FILE_MAX_BYTES,
                "Bad Request: MEDIA_EMPTY" if inline else BAD_FILE,
            )
            if kind == "photo":
                try:
                    return self._store_photo(data, check=True)
                except ApiError:
                    raise ApiError(400, "Bad Request: wrong type of the web page content") from None
            if ctype not in URL_DOCUMENT_TYPES:
                raise ApiError(400, "Bad Request: wrong type of the web page content")
            name = source.split("?", 1)[0].rsplit("/", 1)[-1] or "file"
            return self._document(self._store_file(data, "documents", file_name=name, mime_type=ctype))
        if not source.startswith("attach://"):
            stored = self._known_file(source, kind, "Bad Request: MEDIA_EMPTY" if inline else BAD_FILE)
            if kind == "photo":
                return copy.deepcopy(self._photo_sets[stored.file_id])
            return self._document(stored)
        if kind == "photo":
            return self._photo_content(source, files, "media")
        return self._document_content(source, files, "media")

    @staticmethod
    async def _fetch_url(url: str, limit: int, too_big: str) -> tuple[bytes, str]:
        """Fetch a URL as Telegram would. The fake reaches only 127.0.0.1/localhost: anything else is a URL that
        cannot be fetched ("failed to get HTTP URL content"), as a host Telegram cannot reach is."""
        host = (urllib.parse.urlsplit(url).hostname or "").lower()
        if host not in ("127.0.0.1", "localhost"):
            raise ApiError(400, "Bad Request: failed to get HTTP URL content")
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response,
            ):
                if response.status != 200:
                    raise ApiError(400, "Bad Request: failed to get HTTP URL content")
                data = bytearray()
                while len(data) <= limit and (chunk := await response.content.read(64 * 1024)):
                    data += chunk
                ctype = response.content_type
        except (aiohttp.ClientError, TimeoutError):
            raise ApiError(400, "Bad Request: failed to get HTTP URL content") from None
        if len(data) > limit:
            raise ApiError(400, too_big)
        return bytes(data), ctype


# ====================================================================== guest mode
# Bot API 10.0: a user mentions the bot in a chat it is not a member of; the bot gets a `guest_message` (a Message
# with `guest_query_id`, replies resolved from the query's reference messages) and answers once with
# answerGuestQuery(guest_query_id, result) -> SentGuestMessage {inline_message_id}. Sources: telegram-bot-api 10.0
# (Client.cpp: process_answer_guest_query_query, add_new_guest_query, UpdateType::GuestMessage "guest_message",
# check_chat_access's 403 texts), python-telegram-bot 22.8 (Update.guest_message, Message.guest_query_id,
# Message.guest_bot_caller_user, SentGuestMessage).


class _GuestMode:
    """Guest mode: `send_guest_message`, `answerGuestQuery`, and the 403 for sending to a chat the bot is not in."""

    def _init_guest(self: Any) -> None:
        self.guest_mode = True  # guest mode enabled in @BotFather: getMe says supports_guest_queries
        self.guest_answer_timeout = 10.0  # seconds a guest query can be answered in
        self.guest_queries: dict[str, BotQuery] = {}
        self.guest_answers: dict[str, dict] = {}  # guest query id -> the answerGuestQuery parameters, result parsed
        self._not_member: set[int] = set()  # chats the bot was summoned in as a guest, not a member of
        self.blocked_by: set[int] = set()  # users who blocked the bot (block_bot)

    def block_bot(self: Any, user: dict) -> None:
        """The user blocks the bot: sending to them is refused from now on."""
        self.blocked_by.add(user["id"])

    def send_guest_message(self: Any, chat: dict, user: dict, text: str, *, reply_to: dict | None = None) -> dict:
        """A user mentions the bot (`@bot ...` in ``text``) in ``chat``, which the bot is not a member of; the bot
        gets a guest_message carrying guest_query_id. Returns that message."""
        assert self.guest_mode, "guest mode is off in @BotFather: Telegram sends no guest messages"
        assert f"@{self.username}".lower() in text.lower(), "a guest message mentions the bot"
        chat = self._chats.get(chat["id"]) or self._register_chat(chat)
        self._not_member.add(chat["id"])
        self._users.setdefault(user["id"], dict(user))
        query_id = str(6_000_000_000_000_000_000 + next(self._ids))
        reply = None
        if reply_to is not None:
            reply = self._snapshot(chat["id"], reply_to["message_id"]) or copy.deepcopy(reply_to)
        entities = sorted(_command_entities(text) + _mention_entities(text), key=lambda e: e["offset"])
        msg = self._new_message(chat, user, reply_to=reply, text=text, entities=entities or None)
        update = {**msg, "guest_query_id": query_id}
        self.guest_queries[query_id] = BotQuery(query_id, dict(user), text, chat=dict(chat), message=update)
        self._enqueue("guest_message", update)
        return copy.deepcopy(update)

    @_api("answerGuestQuery")
    def _answer_guest_query(self: Any, p: dict, files: dict) -> dict:
        raw = p.get("result")
        if raw is None or raw == "":
            raise ApiError(400, "Bad Request: result isn't specified")
        try:
            result = self._parse_result(raw)
        except ValueError as exc:
            message = str(exc)
            raise ApiError(400, f"Bad Request: {message[:1].lower()}{message[1:]}") from None
        self._check_result_content(result)
        query = self._live_query(self.guest_queries, str(p.get("guest_query_id", "")), self.guest_answer_timeout)
        self._check_result_telegram(result)
        query.answer = self.guest_answers[query.id] = {**p, "result": result}
        sent = self._post_result(result, query.chat, query.user, via_bot=False)
        return {"inline_message_id": sent.inline_message_id}

    def _check_member(self: Any, chat_id: int) -> None:
        """Sending to a chat the bot is only a guest in, or to a user who blocked it: the 403 telegram-bot-api
        gives."""
        if chat_id in self.blocked_by:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat_id not in self._not_member:
            return
        kind = self._chat(chat_id)["type"]
        if kind == "private":
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        raise ApiError(403, f"Forbidden: bot is not a member of the {kind} chat")


class FakeBotAPI(StarPayments, _InlineMode, _GuestMode):
    """In-process fake of the Telegram Bot API (see module docstring)."""

    def __init__(self, token: str = "123456:TEST-TOKEN", username: str = "imagine_test_bot") -> None:
        self.token = token
        self.username = username
        self.bot_user = {"id": 999000, "is_bot": True, "first_name": "Imagine", "username": username}
        self.port = 0
        self.base_url = self.base_file_url = ""
        self.upload_max_bytes = UPLOAD_MAX_BYTES
        self.upload_bytes_per_second: float | None = None  # None: uploads are read as fast as they arrive
        self.calls: list[Call] = []
        self.answered: dict[str, dict] = {}
        self.commands: dict[tuple[str | None, str], list[dict]] = {}
        self.webhook: dict | None = None
        self._updates: list[dict] = []
        self._update_ids = itertools.count(1)
        self._ids = itertools.count(1)
        self._wakeup = asyncio.Event()
        self._allowed: list[str] | None = None
        self._users: dict[int, dict] = {self.bot_user["id"]: self.bot_user}
        self._chats: dict[int, dict] = {}
        self._admins: dict[int, list[int]] = {}
        self._messages: dict[int, dict[int, dict]] = {}
        self._last_message_id: dict[int, int] = {}
        self._files: dict[str, _File] = {}
        self._by_path: dict[str, _File] = {}
        self.downloads: list[tuple[str, int]] = []  # what the file server served: (file_id, bytes)
        self._photo_sets: dict[str, list[dict]] = {}
        self._queries: set[str] = set()
        self._failures: dict[str, list[ApiError]] = {}
        self._faults = _Faults()
        # awaited with each call once it has arrived, before it is answered: a test acts at that moment (cuts the
        # sender off from its database, pauses it) as Telegram takes an upload the sender has not recorded yet
        self.on_call: Callable[[Call], Awaitable[None]] | None = None
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        # webhook mode (see the section "webhook mode")
        self.webhook_deliveries: list[WebhookDelivery] = []
        self._webhook_wakeup = asyncio.Event()
        self._webhook_error: tuple[int, str] | None = None
        self._webhook_task: asyncio.Task | None = None
        self._init_payments()  # Telegram Stars (see the section "payments")
        self._init_inline()  # the sections "inline mode" and "guest mode"
        self._init_guest()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start serving on 127.0.0.1 on a free port."""
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        app = web.Application(client_max_size=BODY_MAX_BYTES)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._serve_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{self.port}/bot"
        self.base_file_url = f"http://127.0.0.1:{self.port}/file/bot"
        self._webhook_task = asyncio.create_task(self._webhook_sender(), name="fake-telegram-webhook")

    async def stop(self) -> None:
        """Stop the server; pending long polls return immediately."""
        self._stopping = True
        self._wake()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------- people and chats

    def user(
        self, id: int, first_name: str = "User", language_code: str | None = "en", username: str | None = None
    ) -> dict:
        """A (registered) human user."""
        user = {"id": id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self._users[id] = user
        return dict(user)

    def private_chat(self, user: dict) -> dict:
        chat = {"id": user["id"], "type": "private", "first_name": user.get("first_name", "User")}
        if user.get("username"):
            chat["username"] = user["username"]
        return self._register_chat(chat)

    def group(self, id: int, title: str = "Group", type: str = "supergroup", is_forum: bool = False) -> dict:
        chat: dict[str, Any] = {"id": id, "type": type, "title": title}
        if is_forum:
            chat["is_forum"] = True
        return self._register_chat(chat)

    def channel(self, id: int, title: str = "Channel") -> dict:
        return self._register_chat({"id": id, "type": "channel", "title": title})

    def set_admins(self, chat_id: int, user_ids: list[int]) -> None:
        """Set a chat's administrators; the first id is reported as the "creator"."""
        self._admins[chat_id] = list(user_ids)

    # --------------------------------------------------------- incoming updates

    def send_text(
        self,
        chat: dict,
        user: dict | None,
        text: str,
        *,
        reply_to: dict | None = None,
        message_thread_id: int | None = None,
        sender_chat: dict | None = None,
    ) -> dict:
        """A user (or channel) posts a text message; returns the message."""
        return self._incoming(
            chat,
            user,
            reply_to=reply_to,
            thread_id=message_thread_id,
            sender_chat=sender_chat,
            text=text,
            entities=_command_entities(text) or None,
        )

    def send_photo(
        self,
        chat: dict,
        user: dict | None,
        image_bytes: bytes,
        *,
        caption: str | None = None,
        reply_to: dict | None = None,
        media_group_id: str | None = None,
        message_thread_id: int | None = None,
    ) -> dict:
        """A user posts a photo (stored as a downloadable file)."""
        return self._incoming(
            chat,
            user,
            reply_to=reply_to,
            thread_id=message_thread_id,
            media_group_id=media_group_id,
            photo=self._store_photo(image_bytes, check=False),
            caption=caption,
            caption_entities=_command_entities(caption) or None,
        )

    def send_document(
        self,
        chat: dict,
        user: dict | None,
        data: bytes,
        file_name: str,
        mime_type: str,
        *,
        caption: str | None = None,
        reply_to: dict | None = None,
        media_group_id: str | None = None,
        message_thread_id: int | None = None,
    ) -> dict:
        """A user posts a file as a document."""
        stored = self._store_file(data, "documents", file_name=file_name, mime_type=mime_type)
        return self._incoming(
            chat,
            user,
            reply_to=reply_to,
            thread_id=message_thread_id,
            media_group_id=media_group_id,
            document=self._document(stored),
            caption=caption,
            caption_entities=_command_entities(caption) or None,
        )

    def send_media(self, chat: dict, user: dict | None, kind: str, *, caption: str | None = None) -> dict:
        """A user posts what is no picture: `sticker`, `voice`, `video`, `video_note`, `audio` or `animation` (a GIF,
        which Telegram sends with a `document` beside it), with the fields the Bot API documents as required."""
        n = next(self._ids)
        media: dict[str, Any] = {"file_id": f"CAACAgFake{n:06d}", "file_unique_id": f"AgADMedia{n:06d}"}
        media.update(
            {
                "sticker": {"type": "regular", "width": 512, "height": 512, "is_animated": False, "is_video": False},
                "voice": {"duration": 3},
                "video": {"width": 640, "height": 360, "duration": 5},
                "video_note": {"length": 240, "duration": 4},
                "audio": {"duration": 30},
                "animation": {"width": 320, "height": 240, "duration": 2, "mime_type": "video/mp4"},
            }[kind]
        )
        content: dict[str, Any] = {kind: media}
        if kind == "animation":
            content["document"] = dict(media, file_name="funny.gif.mp4")
        if caption is not None:
            content.update(caption=caption, caption_entities=_command_entities(caption) or None)
        return self._incoming(chat, user, reply_to=None, thread_id=None, **content)

    def edit_text(self, message: dict, new_text: str) -> dict:
        """The author edits a message (text, or caption for media)."""
        stored = self._messages[message["chat"]["id"]][message["message_id"]]
        key = "text" if "text" in stored else "caption"
        stored[key] = new_text
        stored.pop("entities" if key == "text" else "caption_entities", None)
        if entities := _command_entities(new_text):
            stored["entities" if key == "text" else "caption_entities"] = entities
        stored["edit_date"] = int(time.time())
        kind = "edited_channel_post" if stored["chat"]["type"] == "channel" else "edited_message"
        self._enqueue(kind, stored)
        return copy.deepcopy(stored)

    def press(self, message: dict, data: str, user: dict) -> str:
        """A user presses an inline button; returns the callback query id."""
        chat_id, message_id = message["chat"]["id"], message["message_id"]
        current = self._messages.get(chat_id, {}).get(message_id)
        if current is None:  # deleted: Telegram sends an InaccessibleMessage
            current = {"chat": message["chat"], "message_id": message_id, "date": 0}
        query_id = str(4_000_000_000_000_000_000 + next(self._ids))
        self._queries.add(query_id)
        self._enqueue(
            "callback_query",
            {
                "id": query_id,
                "from": user,
                "chat_instance": str(7_000_000 + chat_id),
                "data": data,
                "message": current,
            },
        )
        return query_id

    # ------------------------------------------------------- what the bot did

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def message(self, chat_id: int, message_id: int) -> dict | None:
        """Current state of a message (after edits); None if deleted or unknown."""
        msg = self._messages.get(chat_id, {}).get(message_id)
        return copy.deepcopy(msg) if msg is not None else None

    def bot_messages(self, chat_id: int) -> list[dict]:
        """Messages the bot sent to a chat and did not delete, oldest first."""
        return [
            copy.deepcopy(m)
            for m in self._messages.get(chat_id, {}).values()
            if m.get("from", {}).get("id") == self.bot_user["id"]
        ]

    def file_bytes(self, file_id: str) -> bytes:
        return self._files[file_id].data

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
        """Poll ``predicate`` every 20 ms until truthy and return its value."""
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out waiting for {what}; last calls: {self._summary()}")
            await asyncio.sleep(0.02)
        return value

    def fail_next(
        self,
        method: str,
        error_code: int = 400,
        description: str = "Bad Request: injected",
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` answer an error."""
        if retry_after is not None:
            error_code, description = 429, f"Too Many Requests: retry after {retry_after}"
        self._failures.setdefault(method.lower(), []).extend(
            ApiError(error_code, description, retry_after) for _ in range(times)
        )

    # ------------------------------------------------- faults of a Bot API under load

    def flood(self, retry_after: int, *, method: str | None = None, chat_id: int | None = None, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` (any if None) to ``chat_id`` (any if None) answer 429
        "Too Many Requests: retry after N" with ``parameters.retry_after``, as Telegram does."""
        self._faults.floods.append(_Flood(method.lower() if method else None, chat_id, retry_after, times))

    def limit_chats(self, per_second: float = 1.0, burst: int = 3) -> None:
        """Telegram's per-chat limit: new messages to one chat beyond ``burst`` at once and then ``per_second``
        get 429 with the seconds to wait (groups: pass 20/60)."""
        self._faults.per_second, self._faults.burst = per_second, float(burst)

    def reset_next(self, method: str, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` lose their connection halfway through the upload: the request is
        read in part, never recorded or applied, and the client gets no answer."""
        self._faults.resets[method.lower()] = self._faults.resets.get(method.lower(), 0) + times

    def refused(self, method: str | None = None) -> list[Call]:
        """Calls answered with an error (429s from ``flood``/``limit_chats`` among them)."""
        return [c for c in self.calls if c.error is not None and (method is None or c.method == method)]

    # ---------------------------------------------------------------- internals

    def _summary(self, n: int = 8) -> str:
        recent = [c for c in self.calls if c.method != "getUpdates"][-n:]
        if not recent:
            return "(none besides getUpdates)"
        parts = []
        for c in recent:
            args = ", ".join(f"{k}={v!r}" for k, v in c.params.items())
            parts.append(f"{c.method}({args[:100]}{'…' if len(args) > 100 else ''})")
        return "; ".join(parts)

    def _wake(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self._loop is None or running is self._loop:
            self._wake_waiters()
        else:
            self._loop.call_soon_threadsafe(self._wake_waiters)

    def _wake_waiters(self) -> None:
        self._wakeup.set()
        self._webhook_wakeup.set()

    def _enqueue(self, kind: str, obj: dict) -> None:
        self._updates.append({"update_id": next(self._update_ids), kind: copy.deepcopy(obj)})
        self._wake()

    def repeat_last_update(self) -> dict:
        """Put the newest pending update in the queue once more, same update_id (a server delivering it twice)."""
        again = copy.deepcopy(self._updates[-1])
        self._updates.append(again)
        self._wake()
        return again

    def _register_chat(self, chat: dict) -> dict:
        self._chats[chat["id"]] = dict(chat)
        return dict(chat)

    def _chat(self, chat_id: int) -> dict:
        """A known chat, or a minimal one for ids the test never declared."""
        if chat_id not in self._chats:
            if chat_id > 0:
                self._chats[chat_id] = {"id": chat_id, "type": "private", "first_name": "User"}
            else:
                self._chats[chat_id] = {"id": chat_id, "type": "supergroup", "title": "Group"}
        return self._chats[chat_id]

    def _chat_id(self, p: dict) -> int:
        value = p.get("chat_id")
        if isinstance(value, str) and value.startswith("@"):
            for chat in self._chats.values():
                if chat.get("username", "").lower() == value[1:].lower():
                    return chat["id"]
            raise ApiError(400, "Bad Request: chat not found")
        return _int(p, "chat_id")

    def _new_message(
        self,
        chat: dict,
        sender: dict | None,
        *,
        thread_id: int | None = None,
        reply_to: dict | None = None,
        sender_chat: dict | None = None,
        **content: Any,
    ) -> dict:
        chat_id = chat["id"]
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        msg: dict[str, Any] = {"message_id": message_id}
        if sender is not None:
            msg["from"] = copy.deepcopy(sender)
        if sender_chat is not None:
            msg["sender_chat"] = copy.deepcopy(sender_chat)
        msg["chat"] = copy.deepcopy(chat)
        msg["date"] = int(time.time())
        if thread_id is not None:
            msg["message_thread_id"] = thread_id
            if chat.get("is_forum"):
                msg["is_topic_message"] = True
        if reply_to is not None:
            msg["reply_to_message"] = reply_to
        msg.update({k: v for k, v in content.items() if v is not None})
        self._messages.setdefault(chat_id, {})[message_id] = msg
        return msg

    def _snapshot(self, chat_id: int, message_id: int) -> dict | None:
        """A message as embedded in reply_to_message (without its own reply)."""
        msg = self._messages.get(chat_id, {}).get(message_id)
        if msg is None:
            return None
        snap = copy.deepcopy(msg)
        snap.pop("reply_to_message", None)
        return snap

    def _incoming(
        self,
        chat: dict,
        user: dict | None,
        *,
        reply_to: dict | None,
        thread_id: int | None,
        sender_chat: dict | None = None,
        **content: Any,
    ) -> dict:
        chat = self._chats.get(chat["id"]) or self._register_chat(chat)
        if user is not None:
            self._users.setdefault(user["id"], dict(user))
        channel = chat["type"] == "channel"
        if channel:
            user, sender_chat = None, sender_chat or chat
        elif user is None:
            user, sender_chat = GROUP_ANONYMOUS_BOT, sender_chat or chat
        reply = None
        if reply_to is not None:
            reply = self._snapshot(chat["id"], reply_to["message_id"]) or copy.deepcopy(reply_to)
            reply.pop("reply_to_message", None)
        msg = self._new_message(chat, user, thread_id=thread_id, reply_to=reply, sender_chat=sender_chat, **content)
        self._enqueue("channel_post" if channel else "message", msg)
        return copy.deepcopy(msg)

    def _store_file(
        self,
        data: bytes,
        folder: str,
        *,
        ext: str | None = None,
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> _File:
        n = next(self._ids)
        if ext is None:
            ext = ("." + file_name.rsplit(".", 1)[1]) if file_name and "." in file_name else ""
        stored = _File(
            f"BQACAgFake{n:06d}", f"AgADFake{n:06d}", bytes(data), f"{folder}/file_{n}{ext}", file_name, mime_type
        )
        self._files[stored.file_id] = self._by_path[stored.file_path] = stored
        return stored

    def _store_photo(self, data: bytes, *, check: bool) -> list[dict]:
        """Validate an image like Telegram does and store it plus a thumbnail."""
        if check and len(data) > PHOTO_MAX_BYTES:
            raise ApiError(400, "Bad Request: file is too big")
        try:
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
                if check and (width + height > 10000 or max(width, height) > 20 * max(min(width, height), 1)):
                    raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
                im.load()
                thumb = im.convert("RGB")
                thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
                buf = io.BytesIO()
                thumb.save(buf, "JPEG", quality=70)
        except ApiError:
            raise
        except Exception as exc:  # anything Pillow cannot decode
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED") from exc
        sizes = []
        for blob, (w, h) in ((buf.getvalue(), thumb.size), (data, (width, height))):
            f = self._store_file(blob, "photos", ext=".jpg")
            sizes.append(
                {
                    "file_id": f.file_id,
                    "file_unique_id": f.file_unique_id,
                    "width": w,
                    "height": h,
                    "file_size": len(blob),
                }
            )
        for size in sizes:
            self._photo_sets[size["file_id"]] = sizes
        return copy.deepcopy(sizes)

    @staticmethod
    def _document(f: _File) -> dict:
        doc: dict[str, Any] = {"file_id": f.file_id, "file_unique_id": f.file_unique_id}
        if f.file_name:
            doc["file_name"] = f.file_name
        if f.mime_type:
            doc["mime_type"] = f.mime_type
        doc["file_size"] = len(f.data)
        return doc

    def _input_file(self, value: Any, files: dict, field_name: str) -> _File | tuple[str, bytes, str]:
        """Resolve an InputFile: an upload (tuple) or a previously stored file."""
        if value is None and field_name in files:
            return files[field_name]
        if isinstance(value, str) and value.startswith("attach://"):
            if value[9:] in files:
                return files[value[9:]]
            raise ApiError(400, f"Bad Request: file {value[9:]!r} not found in the request")
        if value is None or value == "":
            raise ApiError(400, f"Bad Request: there is no {field_name} in the request")
        if isinstance(value, str) and value in self._files:
            return self._files[value]
        raise ApiError(400, BAD_FILE)

    def _photo_content(self, value: Any, files: dict, field_name: str) -> list[dict]:
        source = self._input_file(value, files, field_name)
        if isinstance(source, _File):
            if source.file_id in self._photo_sets:
                return copy.deepcopy(self._photo_sets[source.file_id])
            raise ApiError(400, "Bad Request: can't use file of type Document as Photo")  # a file id keeps its type
        if len(source[1]) > self.upload_max_bytes:
            raise ApiError(413, "Request Entity Too Large")
        return self._store_photo(source[1], check=True)

    def _document_content(self, value: Any, files: dict, field_name: str) -> dict:
        source = self._input_file(value, files, field_name)
        if isinstance(source, _File) and source.file_id in self._photo_sets:
            raise ApiError(400, "Bad Request: can't use file of type Photo as Document")
        if isinstance(source, tuple):
            name, data, ctype = source
            if len(data) > self.upload_max_bytes:
                raise ApiError(413, "Request Entity Too Large")
            if not ctype or ctype == "application/octet-stream":
                ctype = mimetypes.guess_type(name)[0] or ctype or "application/octet-stream"
            source = self._store_file(data, "documents", file_name=name, mime_type=ctype)
        return self._document(source)

    def _reply_to(self, p: dict, chat_id: int) -> dict | None:
        params = p.get("reply_parameters")
        if not isinstance(params, dict):
            if p.get("reply_to_message_id") is None:
                return None
            params = {
                "message_id": p["reply_to_message_id"],
                "allow_sending_without_reply": p.get("allow_sending_without_reply"),
            }
        target_chat = int(params.get("chat_id") or chat_id)
        reply = self._snapshot(target_chat, int(params["message_id"]))
        if reply is None and not params.get("allow_sending_without_reply"):
            raise ApiError(400, "Bad Request: message to be replied not found")
        return reply

    def _check_caption(self, p: dict) -> str | None:
        caption = p.get("caption")
        if caption is not None and _visible_len(str(caption), p.get("parse_mode")) > CAPTION_MAX:
            raise ApiError(400, "Bad Request: message caption is too long")
        return caption or None

    def _bot_message(self, p: dict, chat_id: int, **content: Any) -> dict:
        self._check_member(chat_id)
        reply = self._reply_to(p, chat_id)
        thread_id = p.get("message_thread_id")
        msg = self._new_message(
            self._chat(chat_id),
            self.bot_user,
            reply_to=reply,
            thread_id=int(thread_id) if thread_id is not None else None,
            **content,
        )
        return copy.deepcopy(msg)

    def _find(self, p: dict, action: str) -> dict:
        if action == "edit" and self._is_inline(p):
            return self._inline_target(p)
        msg = self._messages.get(self._chat_id(p), {}).get(_int(p, "message_id"))
        if msg is None:
            raise ApiError(400, f"Bad Request: message to {action} not found")
        return msg

    def _edit(self, p: dict, **changes: Any) -> dict | bool:
        """Apply an edit (None removes a field); enforce "message is not modified". An inline message's edit
        answers True, not the Message."""
        msg = self._find(p, "edit")
        inline = self._is_inline(p)
        if not inline and msg.get("from", {}).get("id") != self.bot_user["id"]:
            raise ApiError(400, "Bad Request: message can't be edited")
        new = dict(msg)
        changes["reply_markup"] = _inline_markup(p.get("reply_markup"))
        for key, value in changes.items():
            if value is None:
                new.pop(key, None)
            else:
                new[key] = value
        if {**new, "edit_date": None} == {**msg, "edit_date": None}:
            raise ApiError(400, NOT_MODIFIED)
        new["edit_date"] = int(time.time())
        self._messages[msg["chat"]["id"]][msg["message_id"]] = new
        return True if inline else copy.deepcopy(new)

    def _member(self, chat_id: int, user_id: int) -> dict:
        user = self._users.get(user_id) or {"id": user_id, "is_bot": False, "first_name": "User"}
        admins = self._admins.get(chat_id, [])
        if admins and admins[0] == user_id:
            return {"status": "creator", "user": user, "is_anonymous": False}
        if user_id in admins:
            return {"status": "administrator", "user": user, **ADMIN_RIGHTS}
        return {"status": "member", "user": user}

    # ------------------------------------------------------------ HTTP layer

    async def _parse(self, request: web.Request) -> tuple[dict, dict]:
        params: dict[str, Any] = {k: _decode(k, v) for k, v in request.query.items()}
        files: dict[str, tuple[str, bytes, str]] = {}
        ctype = request.content_type
        if ctype == "application/json":
            body = await request.read()
            if body.strip():
                data = json.loads(body)
                if not isinstance(data, dict):
                    raise ApiError(400, "Bad Request: JSON object expected")
                params.update(data)
        elif ctype == "multipart/form-data":
            reader = await request.multipart()
            pace = UploadPace(self.upload_bytes_per_second)
            while (part := await reader.next()) is not None:
                if part.filename is not None:
                    content_type = part.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream")
                    data = bytearray()
                    async for chunk in pace.chunks(part):
                        data += chunk
                    files[part.name] = (part.filename, bytes(data), content_type)
                else:
                    params[part.name] = _decode(part.name, await part.text())
        elif ctype == "application/x-www-form-urlencoded":
            form = await request.post()
            params.update({k: _decode(k, v) for k, v in form.items() if isinstance(v, str)})
        return params, files

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return ApiError(401, "Unauthorized").response()
        name, handler = _API.get(request.match_info["method"].lower(), (request.match_info["method"], None))
        if self._faults.take_reset(name):
            return await self._faults.drop_connection(request)
        try:
            params, files = await self._parse(request)
        except ApiError as exc:
            return exc.response()
        except ValueError:
            return ApiError(400, "Bad Request: can't parse request body").response()
        self.calls.append(Call(name, params, files))
        if self.on_call is not None:
            await self.on_call(self.calls[-1])
        try:
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            if injected := self._failures.get(name.lower()):
                raise injected.pop(0)
            self._faults.check(name, params)
            result = handler(self, params, files)
            if inspect.isawaitable(result):
                result = await result
        except ApiError as exc:
            self.calls[-1].error = exc.code
            return exc.response()
        except Exception as exc:  # a bug in the fake or an unexpected request: make it loud
            return ApiError(500, f"Internal Server Error: fake failed: {exc!r}").response()
        return web.json_response({"ok": True, "result": result})

    async def _serve_file(self, request: web.Request) -> web.Response:
        stored = self._by_path.get(request.match_info["path"])
        if request.match_info["token"] != self.token or stored is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        self.downloads.append((stored.file_id, len(stored.data)))
        return web.Response(body=stored.data, content_type=stored.mime_type or "application/octet-stream")

    # ------------------------------------------------------------ API methods

    @_api("getMe")
    def _get_me(self, p: dict, files: dict) -> dict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": self.inline_mode,
            "supports_guest_queries": self.guest_mode,
        }

    @_api(
        "logOut",
        "close",
        "setChatMenuButton",
        "setMyDescription",
        "setMyShortDescription",
        "setMyName",
        "sendChatAction",
        "setMyDefaultAdministratorRights",
    )
    def _true(self, p: dict, files: dict) -> bool:
        return True

    def _confirm(self, offset: int | None) -> None:
        """Forget confirmed updates and those excluded by allowed_updates."""
        if offset is not None:
            if offset < 0:
                self._updates[:] = self._updates[offset:]
            else:
                self._updates[:] = [u for u in self._updates if u["update_id"] >= offset]
        if self._allowed:
            self._updates[:] = [u for u in self._updates if next(k for k in u if k != "update_id") in self._allowed]

    @_api("getUpdates")
    async def _get_updates(self, p: dict, files: dict) -> list[dict]:
        if self.webhook:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(p["offset"]) if p.get("offset") is not None else None
        limit = max(1, min(int(p.get("limit") or 100), 100))
        if isinstance(p.get("allowed_updates"), list):
            self._allowed = p["allowed_updates"] or None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(p.get("timeout") or 0)
        while True:
            self._confirm(offset)
            if self._updates or self._stopping or loop.time() >= deadline:
                return copy.deepcopy(self._updates[:limit])
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), deadline - loop.time())
            except TimeoutError:
                pass

    @_api("sendMessage")
    def _send_message(self, p: dict, files: dict) -> dict:
        chat_id = self._chat_id(p)
        text = p.get("text")
        text = "" if text is None else str(text)
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if _visible_len(text, p.get("parse_mode")) > TEXT_MAX:
            raise ApiError(400, "Bad Request: message is too long")
        return self._bot_message(
            p,
            chat_id,
            text=text,
            entities=p.get("entities") or None,
            reply_markup=_inline_markup(p.get("reply_markup")),
        )

    @_api("editMessageText")
    def _edit_message_text(self, p: dict, files: dict) -> dict:
        text = "" if p.get("text") is None else str(p["text"])
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if _visible_len(text, p.get("parse_mode")) > TEXT_MAX:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        if "text" not in self._find(p, "edit"):
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        return self._edit(p, text=text, entities=p.get("entities") or None)

    @_api("editMessageCaption")
    def _edit_message_caption(self, p: dict, files: dict) -> dict:
        caption = self._check_caption(p)
        if "text" in self._find(p, "edit"):
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        return self._edit(p, caption=caption, caption_entities=p.get("caption_entities") or None)

    @_api("editMessageReplyMarkup")
    def _edit_message_reply_markup(self, p: dict, files: dict) -> dict:
        return self._edit(p)

    @_api("deleteMessage")
    def _delete_message(self, p: dict, files: dict) -> bool:
        msg = self._find(p, "delete")
        del self._messages[msg["chat"]["id"]][msg["message_id"]]
        return True

    @_api("deleteMessages")
    def _delete_messages(self, p: dict, files: dict) -> bool:
        chat = self._messages.get(self._chat_id(p), {})
        for message_id in p.get("message_ids") or []:
            chat.pop(int(message_id), None)
        return True

    def _source(self, p: dict, missing: str, refused: str) -> tuple[dict, dict]:
        """The message `from_chat_id`/`message_id` name, and what of it a forward or a copy carries; refused as
        Telegram refuses an unknown chat or message (`missing`), and a service or protected one (`refused`)."""
        _required(p, "from_chat_id")
        _required(p, "message_id")
        source_chat = self._chat_id({"chat_id": p["from_chat_id"]})
        if source_chat not in self._chats:
            raise ApiError(400, "Bad Request: chat not found")
        original = self._messages.get(source_chat, {}).get(_int(p, "message_id"))
        if original is None:
            raise ApiError(400, f"Bad Request: {missing}")
        content = {k: copy.deepcopy(v) for k, v in original.items() if k in _FORWARDABLE}
        if not any(k in content for k in _FORWARDABLE_KINDS) or original.get("has_protected_content"):
            raise ApiError(400, f"Bad Request: {refused}")
        return original, content

    @_api("forwardMessage")
    def _forward_message(self, p: dict, files: dict) -> dict:
        """A copy of any message but a service one, as the bot's own in the target chat, with a `forward_origin`
        naming who wrote it; refused like Telegram for an unknown source chat or message, and a protected one."""
        chat_id = self._chat_id(p)
        original, content = self._source(p, "message to forward not found", "message can't be forwarded")
        if "from" in original and original.get("chat", {}).get("type") != "channel":
            origin = {"type": "user", "date": original["date"], "sender_user": copy.deepcopy(original["from"])}
        else:
            origin = {"type": "channel", "date": original["date"], "chat": copy.deepcopy(original["chat"])}
            origin["message_id"] = original["message_id"]
        if _to_bool(p.get("protect_content")):
            content["has_protected_content"] = True
        thread_id = p.get("message_thread_id")
        self._check_member(chat_id)
        msg = self._new_message(
            self._chat(chat_id),
            self.bot_user,
            thread_id=int(thread_id) if thread_id is not None else None,
            forward_origin=origin,
            **content,
        )
        return copy.deepcopy(msg)

    @_api("copyMessage")
    def _copy_message(self, p: dict, files: dict) -> dict:
        """The content of any message but a service, invoice or protected one, as a new message of the bot (no
        `forward_origin`); `caption` replaces a captioned kind's caption (a text keeps its text). A MessageId."""
        chat_id = self._chat_id(p)
        original, content = self._source(p, "message to copy not found", "the message can't be copied")
        if "caption" in p and any(k in content for k in ("photo", "document", "video", "audio", "animation", "voice")):
            content["caption"] = self._check_caption(p)
            content["caption_entities"] = p.get("caption_entities") or None
        self._check_member(chat_id)
        msg = self._new_message(
            self._chat(chat_id),
            self.bot_user,
            reply_to=self._reply_to(p, chat_id),
            thread_id=int(p["message_thread_id"]) if p.get("message_thread_id") is not None else None,
            reply_markup=_inline_markup(p.get("reply_markup")),
            **content,
        )
        return {"message_id": msg["message_id"]}

    @_api("answerCallbackQuery")
    def _answer_callback_query(self, p: dict, files: dict) -> bool:
        query_id = str(p.get("callback_query_id", ""))
        if query_id not in self._queries or query_id in self.answered:
            raise ApiError(400, QUERY_INVALID)
        self.answered[query_id] = dict(p)
        return True

    def _commands_key(self, p: dict) -> tuple[str | None, str]:
        scope = p.get("scope")
        key = None if scope in (None, {"type": "default"}) else json.dumps(scope, sort_keys=True)
        return key, p.get("language_code") or ""

    @_api("setMyCommands")
    def _set_my_commands(self, p: dict, files: dict) -> bool:
        commands = p.get("commands") or []
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        self.commands[self._commands_key(p)] = commands
        return True

    @_api("getMyCommands")
    def _get_my_commands(self, p: dict, files: dict) -> list[dict]:
        return self.commands.get(self._commands_key(p), [])

    @_api("deleteMyCommands")
    def _delete_my_commands(self, p: dict, files: dict) -> bool:
        self.commands.pop(self._commands_key(p), None)
        return True

    @_api("sendPhoto")
    def _send_photo(self, p: dict, files: dict) -> dict:
        chat_id = self._chat_id(p)
        caption = self._check_caption(p)
        photo = self._photo_content(p.get("photo"), files, "photo")
        return self._bot_message(
            p,
            chat_id,
            photo=photo,
            caption=caption,
            caption_entities=p.get("caption_entities") or None,
            reply_markup=_inline_markup(p.get("reply_markup")),
        )

    @_api("sendDocument")
    def _send_document(self, p: dict, files: dict) -> dict:
        chat_id = self._chat_id(p)
        caption = self._check_caption(p)
        document = self._document_content(p.get("document"), files, "document")
        return self._bot_message(
            p,
            chat_id,
            document=document,
            caption=caption,
            caption_entities=p.get("caption_entities") or None,
            reply_markup=_inline_markup(p.get("reply_markup")),
        )

    @_api("sendMediaGroup")
    def _send_media_group(self, p: dict, files: dict) -> list[dict]:
        chat_id = self._chat_id(p)
        media = p.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise ApiError(400, "Bad Request: wrong number of media items (must be 2-10)")
        contents = []
        for item in media:
            kind = item.get("type")
            if kind not in ("photo", "document"):
                raise ApiError(400, f"Bad Request: unsupported media type {kind!r}")
            content = {"caption": self._check_caption(item), "caption_entities": item.get("caption_entities") or None}
            if kind == "photo":
                content["photo"] = self._photo_content(item.get("media"), files, "media")
            else:
                content["document"] = self._document_content(item.get("media"), files, "media")
            contents.append(content)
        self._reply_to(p, chat_id)  # validate once before creating anything
        group_id = str(13_000_000_000_000_000 + next(self._ids))
        return [self._bot_message(p, chat_id, media_group_id=group_id, **c) for c in contents]

    @_api("getFile")
    def _get_file(self, p: dict, files: dict) -> dict:
        stored = self._files.get(str(p.get("file_id", "")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if len(stored.data) > DOWNLOAD_MAX_BYTES:
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    @_api("getChat")
    def _get_chat(self, p: dict, files: dict) -> dict:
        gifts = dict.fromkeys(
            ["unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription", "gifts_from_channels"], False
        )
        return {
            **self._chat(self._chat_id(p)),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": gifts,
        }

    @_api("getChatAdministrators")
    def _get_chat_administrators(self, p: dict, files: dict) -> list[dict]:
        chat_id = self._chat_id(p)
        if self._chat(chat_id)["type"] == "private":
            raise ApiError(400, "Bad Request: there are no administrators in the private chat")
        return [self._member(chat_id, uid) for uid in self._admins.get(chat_id, [])]

    @_api("getChatMember")
    def _get_chat_member(self, p: dict, files: dict) -> dict:
        return self._member(self._chat_id(p), _int(p, "user_id"))

    # ------------------------------------------------------------ webhook mode

    @_api("setWebhook")
    def _set_webhook(self, p: dict, files: dict) -> bool:
        secret = p.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        max_connections = int(p.get("max_connections") or 40)
        if not 1 <= max_connections <= 100:
            raise ApiError(400, "Bad Request: bad webhook: max_connections must be between 1 and 100")
        url = str(p.get("url") or "")
        if url and not url.startswith(("https://", "http://")):  # Telegram wants https; http is for tests
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        if p.get("drop_pending_updates"):
            self._updates.clear()
        if isinstance(p.get("allowed_updates"), list):
            self._allowed = p["allowed_updates"] or None
        self.webhook = dict(p) if url else None
        self._webhook_error = None
        self._wake()
        return True

    @_api("deleteWebhook")
    def _delete_webhook(self, p: dict, files: dict) -> bool:
        self.webhook = None
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return True

    @_api("getWebhookInfo")
    def _get_webhook_info(self, p: dict, files: dict) -> dict:
        info: dict[str, Any] = {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook:
            info["max_connections"] = int(self.webhook.get("max_connections") or 40)
            if self._allowed:
                info["allowed_updates"] = list(self._allowed)
        if self._webhook_error:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    async def _webhook_sender(self) -> None:
        """Telegram's side of a webhook: the oldest pending update is POSTed until a 2xx answer; a failure is
        retried after a growing pause (50 ms doubling to 1 s here, minutes at Telegram). One at a time."""
        pause = 0.0
        async with aiohttp.ClientSession() as session:
            while not self._stopping:
                self._webhook_wakeup.clear()
                hook = self.webhook
                if hook:
                    self._confirm(None)  # apply allowed_updates
                if not hook or not self._updates:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._webhook_wakeup.wait(), 1.0)
                    continue
                update = copy.deepcopy(self._updates[0])
                headers = (
                    {"X-Telegram-Bot-Api-Secret-Token": str(hook["secret_token"])} if hook.get("secret_token") else {}
                )
                status, error = None, ""
                try:
                    async with session.post(
                        str(hook["url"]), json=update, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
                    ) as response:
                        status = response.status
                        error = f"Wrong response from the webhook: {status} {response.reason}"
                        await response.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    error = f"Connection failed: {exc!r}"
                self.webhook_deliveries.append(WebhookDelivery(update, status))
                if status is not None and 200 <= status < 300:
                    self._updates[:] = [u for u in self._updates if u["update_id"] != update["update_id"]]
                    pause = 0.0
                    continue
                self._webhook_error = (int(time.time()), error)
                pause = min(max(pause * 2, 0.05), 1.0)
                await asyncio.sleep(pause)
