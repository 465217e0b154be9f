"""Reference pictures on the Telegram side: found in messages, collected from albums, measured at intake, and
fetched for the worker (`ReferenceFetcher` is the engine's `ReferenceSource`, given to it at start).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from PIL import Image
from telegram import Bot, Message
from telegram.error import TelegramError

from .imagegen import NotAnImageError, TooManyPixelsError, inspect_image
from .originals import OriginalsStore
from .references import DOWNLOAD_LIMIT, Reference, UnusableReference
from .store import Store

ALBUM_QUIET_SECONDS = 2.0
KEPT_SECONDS = 15 * 60  # how long a file measured at intake waits for its job; a later job downloads it again


def from_message(message: Message | None) -> list[Reference]:
    """The picture a message carries: its largest photo size, or a document (photos sent "without compression")."""
    if message is None:
        return []
    if message.photo:
        best = message.photo[-1]
        return [Reference(f"tg:{best.file_id}", "photo", best.width, best.height, best.file_size, "image/jpeg")]
    if message.document:
        doc = message.document
        return [Reference(f"tg:{doc.file_id}", doc.file_name or "file", None, None, doc.file_size, doc.mime_type)]
    return []


# What else a message may carry, none of it a picture to edit; a user sending one is told so by name. An animation
# (a GIF) also comes with a `document`, so it is looked at first.
UNUSABLE_MEDIA = (
    "animation",
    "sticker",
    "video",
    "video_note",
    "voice",
    "audio",
    "venue",
    "location",
    "contact",
    "poll",
    "dice",
    "game",
    "story",
)


def unusable_media(message: Message) -> str | None:
    """The kind of a message's content the bot cannot use (`"sticker"`, `"voice"`, …), or None."""
    return next((kind for kind in UNUSABLE_MEDIA if getattr(message, kind, None)), None)


class ReferenceFetcher:
    """Turns reference ids into checked image files, in order, for as long as a job runs.

    They wait in the spool folder, not in memory: an edit with 14 pictures of 20 MB may run for minutes, and the
    image client uploads them from the files.
    """

    def __init__(
        self,
        bot: Bot,
        originals: OriginalsStore,
        spool_dir: Path,
        style_files: frozenset[Path] = frozenset(),
        keep_measured: bool = False,
    ) -> None:
        self._bot = bot
        self._originals = originals
        self._spool = spool_dir
        self._style_files = style_files  # `file:<path>` may name only these: the style file's own pictures
        self._keep_measured = keep_measured  # only where the job may run: a file kept elsewhere helps nobody

    async def measured(self, ref: Reference, number: int = 1) -> Reference:
        """A picture sent as a file, downloaded once at intake: its real size (for the ratio it keeps) and a refusal
        of what the image service cannot take, before a credit is reserved. Photos come measured by Telegram. When
        this process runs jobs the file is kept a while, so the job that uses it need not download it again."""
        if ref.width and ref.height:
            return ref
        file_id = ref.id.partition(":")[2]
        path = self._spool / f"probe-{uuid.uuid4().hex}.part"
        try:
            await self._download(number, file_id, path)
            try:
                _, width, height, animated = await asyncio.to_thread(_measure, path)
            except TooManyPixelsError:
                raise UnusableReference("too_many_pixels", number, ref.name) from None
            except NotAnImageError as exc:
                raise UnusableReference("not_image", number, ref.name, exc.detail) from None
            if animated:
                raise UnusableReference("animated", number, ref.name)
            if self._keep_measured:
                await asyncio.to_thread(self._keep, path, self._kept(file_id))
        finally:
            path.unlink(missing_ok=True)
        return dataclasses.replace(ref, width=width, height=height)

    def _kept(self, file_id: str) -> Path:
        return self._spool / f"kept-{hashlib.sha256(file_id.encode()).hexdigest()[:32]}.part"

    def _keep(self, path: Path, kept: Path) -> None:
        """Keep a measured file under its id's name, and let go of those kept longer than `KEPT_SECONDS`."""
        os.replace(path, kept)
        too_old = time.time() - KEPT_SECONDS
        for other in self._spool.glob("kept-*.part"):
            with contextlib.suppress(FileNotFoundError):
                if other.stat().st_mtime < too_old:
                    other.unlink()

    async def _download(self, number: int, file_id: str, path: Path) -> None:
        try:
            file = await self._bot.get_file(file_id)
            if file.file_size and file.file_size > DOWNLOAD_LIMIT:
                raise UnusableReference("too_big", number, "image")
            data = await file.download_as_bytearray()
        except TelegramError as exc:
            too_big = "too big" in str(exc).lower()
            cause = f"{type(exc).__name__}: {exc.message}"
            raise UnusableReference("too_big" if too_big else "download", number, "image", cause) from exc
        await asyncio.to_thread(path.write_bytes, data)

    @contextlib.asynccontextmanager
    async def fetched(self, ids: tuple[str, ...]) -> AsyncIterator[list[Path]]:
        """The pictures as files, removed when the block ends (whatever it raised)."""
        paths: list[Path] = []
        try:
            fetches = [self._one(number, ref_id, paths) for number, ref_id in enumerate(ids, 1)]
            yield list(await asyncio.gather(*fetches))
        finally:
            for path in paths:
                path.unlink(missing_ok=True)

    async def _one(self, number: int, ref_id: str, paths: list[Path]) -> Path:
        kind, _, value = ref_id.partition(":")
        path = self._spool / f"ref-{uuid.uuid4().hex}.part"
        if kind == "job":
            original = await self._originals.fetch(value)
            if original is None:
                raise UnusableReference("gone", number, "image")
            paths.append(path)
            await asyncio.to_thread(_link_or_copy, original, path)  # its own name: a prune cannot take it away
        elif kind == "tg":
            paths.append(path)
            if not await asyncio.to_thread(_reused, self._kept(value), path):
                await self._download(number, value, path)
        elif kind == "file" and Path(value) in self._style_files:
            paths.append(path)
            try:
                await asyncio.to_thread(_link_or_copy, Path(value), path)
            except OSError as exc:
                raise UnusableReference("gone", number, Path(value).name, str(exc)) from None
        else:
            raise UnusableReference("gone", number, "image")
        try:
            await asyncio.to_thread(inspect_image, path)  # a pixel bomb is refused from its header, unopened
        except TooManyPixelsError:
            raise UnusableReference("too_many_pixels", number, "image") from None
        except NotAnImageError as exc:
            raise UnusableReference("not_image", number, "image", exc.detail) from None
        return path


def _measure(path: Path) -> tuple[str, int, int, bool]:
    """Format and size as `inspect_image` checks them, and whether the picture moves (an animated WEBP or PNG; a
    phone's MPO has more frames, but they are pictures of one moment and the first is sent as a JPEG)."""
    fmt, width, height = inspect_image(path)
    with Image.open(path) as img:
        animated = fmt in ("PNG", "WEBP") and bool(getattr(img, "is_animated", False))
    return fmt, width, height, animated


def _reused(kept: Path, target: Path) -> bool:
    """The file measured at intake as the job's own, unless it is gone or was kept too long."""
    try:
        if kept.stat().st_mtime < time.time() - KEPT_SECONDS:
            return False
        _link_or_copy(kept, target)
    except FileNotFoundError:
        return False
    return True


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class AlbumCollector:
    """Telegram sends an album as separate messages sharing a media_group_id; this gathers them in the database,
    so the parts may reach different processes. Albums are kept for a day (the inbox prunes them): a later reply
    to any of their photos finds all of them."""

    def __init__(self, store: Store, quiet: float = ALBUM_QUIET_SECONDS, poll: float = 0.25) -> None:
        self._store = store
        self._quiet = quiet
        self._poll = poll

    async def add(self, message: Message) -> None:
        refs = [_stored(ref) for ref in from_message(message)]
        await self._store.albums.add_album_part(message.chat.id, message.media_group_id or "", message.message_id, refs)

    async def references(self, chat_id: int, media_group_id: str) -> list[Reference]:
        refs, _ = await self._store.albums.album(chat_id, media_group_id)
        return [_restored(ref) for ref in refs]

    async def replied_to(self, message: Message) -> list[Reference]:
        """The pictures of the message `message` replies to: all of its album's parts when it is one."""
        quoted = message.reply_to_message
        if quoted is None:
            return []
        if quoted.media_group_id:
            album = await self.references(quoted.chat.id, quoted.media_group_id)
            if album:
                return album
        return from_message(quoted)

    async def complete(
        self, chat_id: int, media_group_id: str, on_progress: Callable[[int], Awaitable[None]]
    ) -> list[Reference]:
        """Wait until no new part came for `quiet` seconds; `on_progress(count)` hears each new count."""
        reported = 0
        while True:
            refs, newest = await self._store.albums.album(chat_id, media_group_id)
            if len(refs) != reported:
                reported = len(refs)
                await on_progress(reported)
            if time.time() - newest >= self._quiet:
                return [_restored(ref) for ref in refs]
            await asyncio.sleep(self._poll)


def _stored(ref: Reference) -> dict:
    """An album part's picture as its row keeps it (the byte count under `size`, as since the first release)."""
    row = dataclasses.asdict(ref)
    row["size"] = row.pop("nbytes")
    return row


def _restored(row: dict) -> Reference:
    values = dict(row)
    values["nbytes"] = values.pop("size", None)
    return Reference(**values)
