"""A result into an inline message (inline mode, guest mode).

Telegram takes no new upload into an inline message ("a new file can't be uploaded; use a previously uploaded file
via its file_id"), and a photo by URL only up to 5 MB. So the picture goes to the storage chat first
(INLINE_STORAGE_CHAT_ID), and the inline message is edited to that upload's file id: a photo (a preview when the
original is over the photo limits), else the file as a document. The original follows in the storage chat, so 📄 and
the deep link send it by file id. Where Telegram refuses media in that message, its text says so and links to the
private chat, where the file is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputMediaDocument, InputMediaPhoto
from telegram.error import BadRequest

from .. import delivery
from ..delivery import UPLOAD_TIMEOUT, DeliveryError, ImageFile, Uploads
from ..inline_messages import KINDS, edit_inline
from ..targets import Target

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InlineDelivered:
    kind: str  # "inline photo", "inline preview", "inline document" or "inline link" (media refused there)
    photo_file_id: str | None
    document_file_id: str | None


async def deliver_inline(
    bot: Bot,
    storage_chat_id: int,
    inline_message_id: str,
    picture: ImageFile,
    caption_text: str,
    markup: InlineKeyboardMarkup,
    *,
    uploads: Uploads,
    jpeg_caption: str,
    file_caption: str,
    refused: tuple[str, InlineKeyboardMarkup],
) -> InlineDelivered:
    """Upload to the storage chat, then edit the inline message to it. `refused`: the text and buttons the
    message gets when Telegram takes no media into it. Raises DeliveryError when the image reached nobody."""
    storage = Target(storage_chat_id)
    try:
        photo_id = await _stored_photo(bot, storage, picture, caption_text, uploads)
        kind = "inline photo" if uploads.fits_photo(picture.nbytes, picture.width, picture.height) else "inline preview"
        document_id = None
        if photo_id is None or not await _edited(
            bot, inline_message_id, InputMediaPhoto(photo_id, caption_text), markup
        ):
            document_id = await _stored_document(bot, storage, picture, caption_text, uploads, jpeg_caption)
            kind = "inline document"
            if not await _edited(bot, inline_message_id, InputMediaDocument(document_id, caption_text), markup):
                text, buttons = refused
                await edit_inline(bot, inline_message_id, text, buttons)
                return InlineDelivered("inline link", photo_id, document_id)
        KINDS.seen(inline_message_id, captioned=True)
        if document_id is None:  # the original beside it, for 📄: best effort, the picture is out
            try:
                document_id = await _stored_document(bot, storage, picture, file_caption, uploads, jpeg_caption)
            except Exception as exc:
                log.warning("original not kept in the storage chat: %s", exc)
        return InlineDelivered(kind, photo_id, document_id)
    except DeliveryError:
        raise
    except Exception as exc:  # the storage chat refused, a network failure…: the job ends with a clear line
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc


async def _stored_photo(
    bot: Bot, storage: Target, picture: ImageFile, caption_text: str, uploads: Uploads
) -> str | None:
    """The picture (or its JPEG preview) as a photo in the storage chat; None where Telegram refuses it as one."""
    as_photo = uploads.fits_photo(picture.nbytes, picture.width, picture.height)
    try:
        if as_photo:
            with picture.path.open("rb") as handle:
                message = await bot.send_photo(
                    storage.chat_id,
                    handle,
                    caption=caption_text,
                    filename=picture.filename,
                    write_timeout=UPLOAD_TIMEOUT,
                    read_timeout=UPLOAD_TIMEOUT,
                )
        else:
            preview = await asyncio.to_thread(delivery.make_preview, picture.path)
            message = await bot.send_photo(
                storage.chat_id,
                preview,
                caption=caption_text,
                filename="preview.jpg",
                write_timeout=UPLOAD_TIMEOUT,
                read_timeout=UPLOAD_TIMEOUT,
            )
    except BadRequest as exc:  # Photo_invalid_dimensions, Image_process_failed: the file always works
        log.warning("storage chat refused the photo (%s); the file goes instead", exc.message)
        return None
    return message.photo[-1].file_id if message.photo else None


async def _stored_document(
    bot: Bot, storage: Target, picture: ImageFile, caption_text: str, uploads: Uploads, jpeg_caption: str
) -> str:
    async with uploads.heavy if uploads.too_big(picture) else contextlib.nullcontext():
        message = await delivery.send_document(
            bot, storage, picture, caption_text, uploads=uploads, jpeg_caption=jpeg_caption
        )
    if message.document is None:
        raise DeliveryError("the storage chat kept no document")
    return message.document.file_id


async def _edited(
    bot: Bot, inline_message_id: str, media: InputMediaPhoto | InputMediaDocument, markup: InlineKeyboardMarkup | None
) -> bool:
    """The inline message now shows `media`; False when Telegram refuses that media there."""
    try:
        await bot.edit_message_media(media, inline_message_id=inline_message_id, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" in exc.message.lower():
            return True
        log.warning("inline message %s refused the %s: %s", inline_message_id, media.type, exc.message)
        return False
    return True


def link_keyboard(text: str, url: str, *rows: Sequence[InlineKeyboardButton]) -> InlineKeyboardMarkup:
    """A URL button first (the deep link to the private chat), then the rows given."""
    return InlineKeyboardMarkup([[InlineKeyboardButton(text, url=url)], *rows])
