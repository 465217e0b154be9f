"""A pending request's life, as the handlers see it: started with the right defaults, changed on its keyboard, taken
exactly once, submitted as one job per variant. The handlers say it in Telegram; this keeps it in the database.
"""

from __future__ import annotations

import logging

from .config import Settings
from .imagemodels import Profile, profile_for
from .jobs.queue import JobQueue
from .models import AppliedStyle, Job, Origin, PendingRequest, Prefs, new_id, prefs_scope
from .options import AspectRatio, ImageRequest, ParsedPrompt, Resolution, closest_ratio
from .references import Reference
from .store.pending import Pending
from .store.prefs import PrefsTable
from .style_service import StyleBook
from .styles import Style

log = logging.getLogger(__name__)


class TooManyPictures(Exception):
    """A style's or preset's pictures and the request's own together are more than the model takes."""

    def __init__(self, style: str, own: int, added: int, limit: int, model: str) -> None:
        super().__init__(f"{style}: {own} + {added} pictures, {model} takes {limit}")
        self.style, self.own, self.added, self.limit, self.model = style, own, added, limit, model


def with_pictures(own: tuple[str, ...], style: Style | AppliedStyle, model: str = "nano-banana-2") -> tuple[str, ...]:
    """The request's own pictures first (the first gives 🖼 Keep ratio its shape), then the style's not among them;
    TooManyPictures past the model's limit."""
    request = ImageRequest("", model=model)
    added = tuple(p for p in style.pictures if p not in own)
    limit = request.profile.max_references()
    if len(own) + len(added) > limit:
        name = style.label if isinstance(style, AppliedStyle) else style.name
        raise TooManyPictures(name, len(own), len(added), limit, request.model)
    return own + added


class RequestService:
    def __init__(
        self, pending: Pending, prefs: PrefsTable, queue: JobQueue, settings: Settings, styles: StyleBook
    ) -> None:
        self._pending = pending
        self._prefs = prefs
        self._queue = queue
        self._settings = settings
        self._styles = styles
        self._unoffered_said: set[tuple[str, int, str, str]] = set()

    async def start(
        self,
        origin: Origin,
        parsed: ParsedPrompt,
        references: list[Reference],
        message_id: int | None,
        style: Style | None = None,
        prefs: Prefs | None = None,
    ) -> tuple[PendingRequest, tuple[str, ...]]:
        """A new request (not stored yet): flags first, then the style's own options, then an edit's first picture's
        own shape (as 🖼 Keep ratio would pick it), then the remembered defaults of the user or chat, then the bot's;
        for the model `--model`, then the style's, then the remembered one (each if offered), then the bot's
        default. Also the flags that model does not take (`--quality high` for nano-banana-2), to be named as unknown
        flags are. OptionError for a value it does not offer (`--size 1K` for Seedream). `prefs`: the defaults of the
        user or chat, when the caller has read them already."""
        if prefs is None:
            prefs = await self._prefs.get_prefs(*prefs_scope(origin))
        first = references[0] if references else None
        picture_ratio = closest_ratio(first.width, first.height) if first and first.width and first.height else None
        profile = self.model_of(parsed.model, prefs, style)
        base = {"ratio": self._settings.default_aspect_ratio.value, "size": self._settings.default_size.value}
        base.update(prefs.choices())
        if picture_ratio:
            base["ratio"] = picture_ratio.value
        style_ratio, style_size = style_options(style)
        if style_ratio:
            base["ratio"] = style_ratio.value
        if style_size:
            base["size"] = style_size.value
        base.update(model_options(style))
        options, not_taken = parsed.choose(profile, base)
        pending = PendingRequest(
            new_id(),
            origin,
            parsed.prompt,
            AspectRatio(options["ratio"]),
            Resolution(options["size"]),
            message_id,
            references=tuple(r.id for r in references),
            variants=parsed.variants or prefs.variants or 1,
            ref_width=references[0].width if references else None,
            ref_height=references[0].height if references else None,
            style=style.name if style else None,
        )
        pending.use(profile.name, options)
        return pending, not_taken

    async def default_request(self, origin: Origin) -> ImageRequest:
        """What a request here starts as with no flags: the remembered model and choices, else the bot's."""
        prefs = await self._prefs.get_prefs(*prefs_scope(origin))
        profile = self.model_of(None, prefs)
        base = {"ratio": self._settings.default_aspect_ratio.value, "size": self._settings.default_size.value}
        base.update(prefs.choices())
        return ImageRequest("", model=profile.name, options=profile.carry(base))

    def model_of(self, asked: str | None, prefs: Prefs, style: Style | None = None) -> Profile:
        """The model a new request is for: the one asked, else its style's, else the remembered one, each while it
        is offered, else the bot's default."""
        offered = self._settings.offered
        for name in (asked, style.options.get("model") if style else None, prefs.model):
            if name in offered:
                return profile_for(name)
        return profile_for(self._settings.default_model)

    async def wait_for_words(
        self, origin: Origin, references: list[Reference], message_id: int, album_id: str | None
    ) -> None:
        """Pictures sent without words, kept for the next text as their instruction."""
        first = references[0]
        size = self._settings.default_size
        ratio = (
            closest_ratio(first.width, first.height)
            if first.width and first.height
            else self._settings.default_aspect_ratio
        )
        await self._pending.save_pending(
            PendingRequest(
                new_id(),
                origin,
                "",
                ratio,
                size,
                message_id,
                references=tuple(r.id for r in references),
                ref_width=first.width,
                ref_height=first.height,
                wants_prompt=True,
                album_id=album_id,
            )
        )

    def choose_style(self, pending: PendingRequest, style: Style) -> None:
        """A style chosen on an open request (its 🎨 page, or `--style` in a later part of a split prompt): its
        model (when offered) and its ratio and size replace the current ones; the user's taps after this, and flags
        applied after it, override them."""
        ratio, size = style_options(style)
        options = {
            **pending.options,
            **({"ratio": ratio.value} if ratio else {}),
            **({"size": size.value} if size else {}),
            **model_options(style),
        }
        pending.style = style.name
        pending.use(self.style_model(pending, style), options)

    def unoffered_model(self, origin: Origin, style: Style) -> str | None:
        """A preset's model that IMAGE_MODELS does not offer (any more): its requests are made with the usual
        model, and the user is told so when picking it; logged once per preset and model in this process (a style
        file's are logged at start)."""
        model = style.options.get("model")
        if model is None or model in self._settings.offered or style.owner == "builtin":
            return None
        key = (style.owner, origin.chat_id if style.owner == "chat" else origin.user_id, style.name, model)
        if key not in self._unoffered_said:
            self._unoffered_said.add(key)
            log.warning(
                "preset %s (%s %s) names model %s, which IMAGE_MODELS does not offer (%s): made with the usual model",
                style.name,
                key[0],
                key[1],
                model,
                ", ".join(self._settings.offered),
            )
        return model

    def style_model(self, pending: PendingRequest, style: Style) -> str:
        """The model an open request is made with once `style` is chosen on it: the style's while it is offered,
        else the request's own (what its pictures are counted against)."""
        model = style.options.get("model")
        return model if model in self._settings.offered else pending.model

    async def wait_for_style_words(self, origin: Origin, style: Style, message_id: int) -> None:
        """A preset tapped under /presets whose template wants words: kept for the text that says what to make
        (`message_id`: the question asked, which that text may reply to)."""
        await self._pending.save_pending(
            PendingRequest(
                new_id(),
                origin,
                "",
                self._settings.default_aspect_ratio,
                self._settings.default_size,
                message_id,
                wants_prompt=True,
                style=style.name,
            )
        )

    def image_model(self, pending: PendingRequest) -> str:
        """The image model its jobs will be made with, as chosen on its keyboard or by `--model` (what the prompt
        helper writes for)."""
        return pending.model

    async def set_suggestion(self, pending_id: str, suggestion: str | None) -> bool:
        """The prompt helper's rewrite shown on its keyboard (None: none); False when the request is gone."""
        return await self._pending.set_suggestion(pending_id, suggestion)

    async def save(self, pending: PendingRequest) -> None:
        """Its keyboard is shown, or a choice on it changed it."""
        await self._pending.save_pending(pending)

    async def get(self, pending_id: str) -> PendingRequest | None:
        return await self._pending.get_pending(pending_id)

    async def take(self, pending_id: str) -> PendingRequest | None:
        """Remove and return it: of two quick taps on Generate, on any processes, only one gets it."""
        return await self._pending.take_pending(pending_id)

    async def for_source(self, chat_id: int, user_id: int, message_id: int) -> PendingRequest | None:
        """The open keyboard a user's message started (an edit of that message changes its prompt)."""
        return await self._pending.pending_for_source(chat_id, user_id, message_id)

    async def latest(self, chat_id: int, user_id: int, since: float, *, wants_prompt: bool) -> PendingRequest | None:
        """A user's newest request in a chat made after `since`: pictures waiting for words (`wants_prompt`), or a
        keyboard whose prompt may go on in the next message."""
        return await self._pending.latest_pending(chat_id, user_id, since, wants_prompt=wants_prompt)

    async def drop_waiting_pictures(self, chat_id: int, user_id: int) -> None:
        """Pictures waiting for words are forgotten once other pictures come with their words."""
        await self._pending.drop_waiting_pictures(chat_id, user_id)

    async def submit(self, pending: PendingRequest, upscale_of: str | None = None) -> None:
        """Queue the request as one job per variant (the first takes over the keyboard message as its status line).

        With a style, what goes upstream is its template applied, and its pictures join the request's own (not
        for an upscale: that starts from the result alone).

        Raises what `JobQueue.submit` raises: ShuttingDown, QueueFull, QuotaExceeded; StyleGone, TooManyPictures."""
        request = pending.request
        references, style = pending.references, None
        if pending.style:
            style = await self._styles.applied(pending.origin, pending.style, pending.prompt, pending.origin.lang)
            if upscale_of is None:
                references = with_pictures(references, style, request.model)
        group_id = new_id() if pending.variants > 1 else None
        jobs = [
            Job(
                new_id(),
                pending.origin,
                request,
                status_message_id=pending.message_id if n == 1 else None,
                references=references,
                group_id=group_id,
                variant=n,
                variants=pending.variants,
                upscale_of=upscale_of,
                original_prompt=pending.original,
                style=style,
            )
            for n in range(1, pending.variants + 1)
        ]
        await self._queue.submit(*jobs)


def style_options(style: Style | None) -> tuple[AspectRatio | None, Resolution | None]:
    """A style's default ratio and size, where it has them."""
    options = style.options if style else {}
    ratio, size = options.get("ratio"), options.get("size")
    return (AspectRatio(ratio) if ratio else None, Resolution(size) if size else None)


def model_options(style: Style | None) -> dict[str, str]:
    """A preset's model-specific options (`quality`): a request for a model that takes them starts with them."""
    options = style.options if style else {}
    return {k: v for k, v in options.items() if k not in ("ratio", "size", "model")}
