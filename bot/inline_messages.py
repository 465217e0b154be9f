"""Messages sent via the bot into chats it may not write to (inline mode, guest mode): edited by their
`inline_message_id` only, as a text while they are one and as a caption once they carry the picture; and the deep
link that opens the requester's private chat with the bot, where 📄 sends the original file.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict

from telegram import Bot, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden

from .delivery import CAPTION_MAX, ImageFile, Uploads, send_document
from .targets import Target

log = logging.getLogger(__name__)

ORIGINAL_PAYLOAD = "o_"  # `/start o_<job id>`: that job's original file, in the private chat
_KINDS_KEPT = 2000  # inline messages whose kind (text or picture) this process remembers


class _Kinds:
    """Which inline messages carry a picture now (their words are a caption), as last seen here: an edit tries that
    kind first, and the other when Telegram says the message has none of it (another process changed it)."""

    def __init__(self) -> None:
        self._captioned: OrderedDict[str, bool] = OrderedDict()

    def captioned(self, inline_message_id: str) -> bool:
        return self._captioned.get(inline_message_id, False)

    def seen(self, inline_message_id: str, captioned: bool) -> None:
        self._captioned[inline_message_id] = captioned
        self._captioned.move_to_end(inline_message_id)
        while len(self._captioned) > _KINDS_KEPT:
            self._captioned.popitem(last=False)


KINDS = _Kinds()


async def edit_inline(
    bot: Bot, inline_message_id: str, text: str, markup: InlineKeyboardMarkup | None, *, progress: bool = False
) -> None:
    """Put `text` (and `markup`) on an inline message, as its text or its caption. "Not modified" is no error;
    any other refusal is raised."""
    limits = {"progress": True} if progress else None
    order = (True, False) if KINDS.captioned(inline_message_id) else (False, True)
    for captioned in order:
        try:
            if captioned:
                await bot.edit_message_caption(
                    inline_message_id=inline_message_id,
                    caption=text[:CAPTION_MAX],
                    reply_markup=markup,
                    rate_limit_args=limits,  # type: ignore[call-arg]  # ExtBot's keyword; Bot's signature lacks it
                )
            else:
                await bot.edit_message_text(  # type: ignore[call-arg]  # rate_limit_args: ExtBot's keyword
                    text, inline_message_id=inline_message_id, reply_markup=markup, rate_limit_args=limits
                )
        except BadRequest as exc:
            message = exc.message.lower()
            if "not modified" in message:
                return
            if "there is no text" in message or "there is no caption" in message:
                continue
            raise
        KINDS.seen(inline_message_id, captioned)
        return
    raise BadRequest("the inline message has neither text nor caption to edit")


def deep_link(bot_username: str, payload: str) -> str:
    """`https://t.me/<bot>?start=<payload>`: opens the private chat; Start sends `/start <payload>`."""
    return f"https://t.me/{bot_username}?start={payload}"


def original_link(bot_username: str, job_id: str) -> str:
    return deep_link(bot_username, ORIGINAL_PAYLOAD + job_id)


async def send_original(
    bot: Bot,
    user_id: int,
    file_id: str | None,
    picture: ImageFile | None,
    caption_text: str,
    *,
    uploads: Uploads,
) -> bool:
    """The original file in the requester's private chat: by its stored file id, else uploaded. False when the
    user has not started the bot (Telegram refuses a first message to a user): the deep link is then the way."""
    try:
        if file_id is not None:
            await bot.send_document(user_id, file_id, caption=caption_text)
        elif picture is not None:
            async with uploads.heavy if uploads.too_big(picture) else contextlib.nullcontext():
                await send_document(bot, Target(user_id), picture, caption_text, uploads=uploads)
    except Forbidden as exc:
        log.info("user %s: private chat not open (%s)", user_id, exc.message)
        return False
    return True
