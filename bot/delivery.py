"""Getting an image into a chat: photo when Telegram accepts it, else a preview plus the untouched original.

Knows Telegram's limits and nothing of the image API.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps
from telegram import (
    Bot,
    InlineKeyboardMarkup,
    InputFile,
    InputMediaDocument,
    InputMediaPhoto,
    Message,
)
from telegram.error import BadRequest

from . import fitting
from .models import Job
from .options import describe_size
from .targets import Target, send_kwargs
from .texts import t

log = logging.getLogger(__name__)

MB = 1024 * 1024  # Telegram's MB, as in the 10 MB of a photo
HEAVY_DELIVERY_MB = 96  # what previewing, fitting and uploading one image over 10 MB takes in memory, roughly
PHOTO_MAX_BYTES = 10 * MB
PHOTO_MAX_SIDES = 10_000
PHOTO_MAX_RATIO = 20
CAPTION_MAX = 1024
PREVIEW_MAX_SIDE = 2560
UPLOAD_TIMEOUT = 600.0
_REDUCIBLE = ("L", "LA", "RGB", "RGBA", "CMYK", "I", "F", "PA")


class DeliveryError(Exception):
    """Telegram did not take the image."""

    kind = "telegram"


@dataclass(frozen=True, slots=True)
class Uploads:
    """What Telegram takes from this bot, and what making an original fit it needs.

    `max_bytes`: TELEGRAM_MAX_UPLOAD_MB (50 MB on the cloud Bot API, up to 2,000 MB on a self-hosted server).
    `heavy`: the gate of heavy image work (previews, fitting), one per `memory` bytes of IMAGE_MEMORY_MB; whoever
    sends a picture over `max_bytes` holds it. `spool`: where the fitted copy waits for its upload."""

    max_bytes: int
    spool: Path
    heavy: asyncio.Semaphore
    memory: int

    def too_big(self, picture: ImageFile) -> bool:
        return picture.nbytes > self.max_bytes

    def fits_photo(self, size: int, width: int, height: int) -> bool:
        """Telegram's photo rules, within this upload limit too (below 10 MB only on a test's Bot API)."""
        return size <= self.max_bytes and fits_photo(size, width, height)


@dataclass(frozen=True, slots=True)
class ImageFile:
    """An image file to send and what it is. Uploads stream it from disk: a 50 MB original is never whole in memory."""

    path: Path
    nbytes: int
    width: int
    height: int
    filename: str


@dataclass(frozen=True, slots=True)
class Delivered:
    kind: str  # "photo", "preview", "document", "photo+document" or "preview+document"
    message: Message  # the message that carries the buttons
    document: Message | None = None  # the original, when it followed the photo

    @property
    def photo_file_id(self) -> str | None:
        return self.message.photo[-1].file_id if self.message.photo else None

    @property
    def document_file_id(self) -> str | None:
        carrier = self.document or self.message
        return carrier.document.file_id if carrier.document else None


def fits_photo(size: int, width: int, height: int) -> bool:
    """Telegram's sendPhoto rules: ≤ 10 MB, width + height ≤ 10,000, sides ratio ≤ 20."""
    return (
        size <= PHOTO_MAX_BYTES
        and width + height <= PHOTO_MAX_SIDES
        and max(width, height) <= PHOTO_MAX_RATIO * max(1, min(width, height))
    )


def make_preview(path: Path, max_side: int = PREVIEW_MAX_SIDE) -> bytes:
    """A JPEG small enough to be a photo, turned as the original's EXIF says. CPU-bound: run it off the event loop.

    One full-size bitmap at most, and only for as long as it takes to shrink it: JPEG decodes at a reduced scale
    (draft); any other format is box-reduced by a whole factor right after decoding (one small copy, not the
    full-size intermediate a resampling filter makes), and everything else happens on the small picture."""
    with Image.open(path) as opened:
        img: Image.Image = opened
        img.draft("RGB", (max_side, max_side))  # JPEG decodes at a reduced scale; other formats ignore it
        if img.mode not in _REDUCIBLE:  # palette, 1-bit, 16-bit grey: Pillow reduces none of them
            img = img.convert("RGBA" if img.mode == "P" else "L")
        factor = -(-max(img.size) // max_side)
        if factor > 1:
            img = img.reduce(factor)
        img = ImageOps.exif_transpose(img)
        if img.mode in ("RGBA", "LA"):
            background = Image.new("RGB", img.size, (255, 255, 255))
            background.paste(img, mask=img.getchannel("A"))
            img = background
        elif img.mode != "RGB":
            img = img.convert("RGB")
        out = io.BytesIO()
        img.save(out, "JPEG", quality=88)
        return out.getvalue()


def details_line(job: Job, *, named: bool = False) -> str:
    """The one details line of a result: what was asked (the style first, when it had one) and what came back;
    `named` (several models offered) names the model (`GPT Image 2 · 16:9 · 2K · high · 2048×1152`)."""
    width, height = job.width or 0, job.height or 0
    asked = f"{job.request.profile.label} · {job.request.label}" if named else job.request.label
    style = f"🎨 {job.style.label} · " if job.style else ""
    if job.request.matches(width, height):
        return f"{style}{asked} · {width}×{height}"
    actual = describe_size(width, height)
    return style + "⚠️ " + t("size_mismatch", job.origin.lang, asked=asked, actual=actual)


def album_details(jobs: list[Job], *, named: bool = False) -> str:
    """The details of an album: each different line once."""
    return " · ".join(dict.fromkeys(details_line(job, named=named) for job in jobs))


def caption(prompt: str, details: str) -> str:
    """Prompt first, then the details line; the prompt is trimmed so the whole fits Telegram's 1,024. No words (a
    preset's template alone made it): the details line alone."""
    if not prompt:
        return details
    tail = f"\n\n{details}"
    room = CAPTION_MAX - len(tail)
    if len(prompt) > room:
        prompt = prompt[: room - 1].rstrip() + "…"
    return prompt + tail


def safe_filename(prompt: str, ratio: str, size: str, extension: str) -> str:
    """`red-fox-in-snow_16x9_4K.png`, `雪地里的红狐狸_3x4_1K.png`: the prompt's words in its own script (Telegram
    shows Unicode names), without path or control characters, short enough for a file list. The one file-name
    helper: results, originals and the CLI all name files here."""
    # letters, digits and the marks some scripts write vowels with (Devanagari, Thai…); anything else separates
    kept = "".join(c if unicodedata.category(c)[0] in "LNM" else "-" for c in unicodedata.normalize("NFKC", prompt))
    slug = re.sub(r"-+", "-", kept).strip("-").lower()[:48].rstrip("-") or "image"
    return f"{slug}_{ratio.replace(':', 'x')}_{size}.{extension}"


async def send_document(
    bot: Bot,
    target: Target,
    picture: ImageFile,
    caption_text: str,
    markup: InlineKeyboardMarkup | None = None,
    *,
    uploads: Uploads,
    jpeg_caption: str | None = None,
) -> Message:
    """The file byte for byte: Telegram must not treat it as a photo or recompress it. Over the upload limit, the
    copy that fits (see `fitted`), with `jpeg_caption` when that is a JPEG; the caller holds `uploads.heavy`."""
    async with fitted(picture, uploads) as (sent, lossy):
        with _streamed(sent) as document:
            return await bot.send_document(
                document=document,
                caption=jpeg_caption or caption_text if lossy else caption_text,
                reply_markup=markup,
                disable_content_type_detection=True,
                write_timeout=UPLOAD_TIMEOUT,
                read_timeout=UPLOAD_TIMEOUT,
                **send_kwargs(target),
            )


@contextlib.asynccontextmanager
async def fitted(picture: ImageFile, uploads: Uploads) -> AsyncIterator[tuple[ImageFile, bool]]:
    """The picture as Telegram will take it, and whether that copy lost anything: the picture itself when it is
    within the upload limit; else a copy with the same pixels (PNG without its metadata, recompressed, or lossless
    WEBP) or, failing that, a full-resolution JPEG (True). The copy is removed afterwards."""
    if not uploads.too_big(picture):
        yield picture, False
        return
    try:
        made = await asyncio.to_thread(fitting.fit, picture.path, uploads.max_bytes, uploads.spool, uploads.memory)
    except fitting.CannotFit as exc:
        raise DeliveryError(str(exc)) from None
    try:
        log.info(
            "original of %d bytes is over the %d-byte upload limit: sending a %s %s of %d bytes",
            picture.nbytes,
            uploads.max_bytes,
            "lossless" if made.lossless else "full-resolution",
            made.extension,
            made.nbytes,
        )
        name = f"{Path(picture.filename).stem}.{made.extension}"
        yield ImageFile(made.path, made.nbytes, picture.width, picture.height, name), not made.lossless
    finally:
        await asyncio.to_thread(made.path.unlink, missing_ok=True)


@contextlib.contextmanager
def _streamed(picture: ImageFile, *, attach: bool = False) -> Iterator[InputFile]:
    """The picture's file as PTB upload that httpx reads in chunks while sending, instead of PTB reading it whole
    into memory first (what it does with bytes, paths and file objects alike)."""
    with picture.path.open("rb") as handle:
        yield InputFile(handle, filename=picture.filename, attach=attach, read_file_handle=False)


def _preview_file(picture: ImageFile, jpeg: bytes, *, attach: bool = False) -> InputFile:
    """The JPEG preview, named after its original (`fox_16x9_4K.jpg`), not by PTB's guess from the bytes."""
    return InputFile(jpeg, filename=f"{Path(picture.filename).stem}.jpg", attach=attach)


async def deliver(
    bot: Bot,
    target: Target,
    picture: ImageFile,
    caption_text: str,
    markup: Callable[[bool], InlineKeyboardMarkup],
    *,
    uploads: Uploads,
    jpeg_caption: str | None = None,
    file_caption: str | None = None,
    with_original: bool = False,
) -> Delivered:
    """Send the picture the best way Telegram allows; `with_original` adds the file even when a photo fits.

    `markup(original_button)` builds the buttons. Kinds: "photo", "photo+document", "preview+document", "document",
    and "preview" when the original could not follow the preview. An original over the upload limit goes as the
    copy that fits, with `jpeg_caption` when that is a JPEG. A file that follows the photo carries `file_caption`
    (it says it is the original, not the prompt again). Raises DeliveryError when nothing was sent.
    """
    try:
        as_photo = uploads.fits_photo(picture.nbytes, picture.width, picture.height)
        add_document = with_original or not as_photo
        try:
            with (
                _streamed(picture)
                if as_photo
                else contextlib.nullcontext(
                    _preview_file(picture, await asyncio.to_thread(make_preview, picture.path))
                ) as photo
            ):
                message = await bot.send_photo(
                    photo=photo,
                    caption=caption_text,
                    reply_markup=markup(not add_document),
                    write_timeout=UPLOAD_TIMEOUT,
                    read_timeout=UPLOAD_TIMEOUT,
                    **send_kwargs(target),
                )
        except BadRequest as exc:
            # Photo_invalid_dimensions, Image_process_failed, too big…: the file itself always works.
            log.warning("sendPhoto refused (%s); sending the original as a document", exc.message)
            message = await send_document(
                bot, target, picture, caption_text, markup(False), uploads=uploads, jpeg_caption=jpeg_caption
            )
            return Delivered("document", message)
        kind = "photo" if as_photo else "preview"
        if not add_document:
            return Delivered(kind, message)
        try:
            document = await send_document(
                bot,
                Target(target.chat_id, target.thread_id, message.message_id),
                picture,
                file_caption or caption_text,
                uploads=uploads,
                jpeg_caption=jpeg_caption,
            )
        except Exception as exc:  # the photo is there; the finisher tells the user the file is missing
            log.warning("original could not follow the %s: %s", kind, exc)
            return Delivered(kind, message)
        return Delivered(f"{kind}+document", message, document)
    except DeliveryError:
        raise
    except Exception as exc:  # any TelegramError or upload failure: the job must end with a clear line
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class AlbumDelivered:
    kind: str  # "album" or "album+documents"
    photos: list[Message]  # one per picture, in order
    documents: list[Message]  # the originals, in order, when they were sent
    buttons: Message  # the message under the album that carries the buttons


async def deliver_album(
    bot: Bot,
    target: Target,
    pictures: list[ImageFile],
    caption_text: str,
    summary: str,
    markup: Callable[[bool], InlineKeyboardMarkup],
    *,
    uploads: Uploads,
    jpeg_caption: str | None = None,
    with_original: bool = False,
) -> AlbumDelivered:
    """Several pictures as one album (albums can't carry buttons, so they go in a message under it).

    Photos that fit go as they are, others as previews; the originals follow as an album of files when any picture
    needed a preview or `with_original` asks for them; one over the upload limit as the copy that fits, a JPEG
    with `jpeg_caption`. Raises DeliveryError when the album could not be sent.
    """
    try:
        fits = [uploads.fits_photo(p.nbytes, p.width, p.height) for p in pictures]
        previews = [
            None if ok else _preview_file(p, await asyncio.to_thread(make_preview, p.path), attach=True)
            for p, ok in zip(pictures, fits, strict=True)
        ]  # one at a time: one bitmap
        with contextlib.ExitStack() as files:
            photos = [
                preview or files.enter_context(_streamed(p, attach=True))
                for p, preview in zip(pictures, previews, strict=True)
            ]
            media = [InputMediaPhoto(photo, caption=caption_text if i == 0 else None) for i, photo in enumerate(photos)]
            try:
                sent = await bot.send_media_group(
                    media=media, write_timeout=UPLOAD_TIMEOUT, read_timeout=UPLOAD_TIMEOUT, **send_kwargs(target)
                )
            except BadRequest as exc:
                log.warning("album of photos refused (%s); sending the originals as files", exc.message)
                sent = ()
        add_documents = with_original or not all(fits) or not sent
        documents: list[Message] = []
        if add_documents:
            async with contextlib.AsyncExitStack() as files:
                documents_media: list[InputMediaDocument] = []
                for i, p in enumerate(pictures):  # one at a time: one bitmap when one must be made to fit
                    sent_file, lossy = await files.enter_async_context(fitted(p, uploads))
                    text = (jpeg_caption or caption_text) if lossy else caption_text if i == 0 else None
                    documents_media.append(
                        InputMediaDocument(
                            files.enter_context(_streamed(sent_file, attach=True)),
                            caption=text,
                            disable_content_type_detection=True,
                        )
                    )
                first = sent[0].message_id if sent else target.reply_to
                documents = list(
                    await bot.send_media_group(
                        media=documents_media,
                        write_timeout=UPLOAD_TIMEOUT,
                        read_timeout=UPLOAD_TIMEOUT,
                        **send_kwargs(Target(target.chat_id, target.thread_id, first)),
                    )
                )
        anchor = (sent or documents)[0].message_id
        buttons = await bot.send_message(
            text=summary,
            reply_markup=markup(not add_documents),
            **send_kwargs(Target(target.chat_id, target.thread_id, anchor)),
        )
        return AlbumDelivered("album+documents" if documents else "album", list(sent), documents, buttons)
    except Exception as exc:  # any TelegramError or upload failure: the job must end with a clear line
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
