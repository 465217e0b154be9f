"""The domain: where a request came from, a request waiting on its keyboard, a job, remembered defaults.

Plain data, no Telegram types and no database: the handlers, the queue, the worker and every store backend share
these.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from .imagemodels import DEFAULT_MODEL, profile_for
from .options import AspectRatio, ImageRequest, Resolution


def new_id() -> str:
    """Short, unguessable, callback-data safe."""
    return secrets.token_urlsafe(6)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from and where its answers go."""

    chat_id: int
    user_id: int
    thread_id: int | None = None
    reply_to: int | None = None
    lang: str | None = None
    requester: str | None = None  # the person's name, in groups: whose request a keyboard or status line is
    # A message sent via the bot in any chat (inline mode, guest mode): the answers edit it, by this id; chat_id is
    # then the requester's private chat (their defaults, their credits, where 📄 sends the file).
    inline_message_id: str | None = None

    @property
    def inline(self) -> bool:
        return self.inline_message_id is not None


@dataclass(slots=True)
class PendingRequest:
    """A prompt waiting on the ratio/size keyboard."""

    id: str
    origin: Origin
    prompt: str
    aspect_ratio: AspectRatio
    size: Resolution
    message_id: int | None = None
    created_at: float = field(default_factory=time.time)
    references: tuple[str, ...] = ()  # reference image ids (see references.py), in order
    variants: int = 1
    ref_width: int | None = None  # the first reference's size, for "keep the original ratio"
    ref_height: int | None = None
    # A message near Telegram's length limit may be the first part of a longer one the app split: its raw text
    # and Telegram's date of it, until the next part joins or the moment passes.
    source_text: str | None = None
    source_date: float | None = None
    wants_prompt: bool = False  # pictures sent without words, waiting for the next text as their instruction
    album_id: str | None = None  # those pictures are an album: all of its parts are the references
    model: str = DEFAULT_MODEL  # the profile it is for; its ratio and size are the two fields above
    extra: dict[str, str] = field(default_factory=dict)  # that model's own options beyond ratio and size (quality)

    @property
    def options(self) -> dict[str, str]:
        """Every option of its model, ratio and size first (what `ImageRequest.options` holds)."""
        return {"ratio": self.aspect_ratio.value, "size": self.size.value, **self.extra}

    @property
    def request(self) -> ImageRequest:
        return ImageRequest(self.prompt, model=self.model, options=self.options)

    def use(self, model: str, options: dict[str, str]) -> None:
        """Make it a request for `model` with these choices (another model's are carried to this one's closest)."""
        carried = profile_for(model).carry(options)
        self.model = model
        self.aspect_ratio, self.size = AspectRatio(carried.pop("ratio")), Resolution(carried.pop("size"))
        self.extra = carried

    # The prompt helper: a rewrite shown under the prompt until ✓ Use it or ↩ Keep mine (set only through
    # `Pending.set_suggestion`), and the user's own words when `prompt` is their translation.
    suggestion: str | None = None
    original: str | None = None
    style: str | None = None  # the style or preset chosen (its name), applied when it is submitted


@dataclass(frozen=True, slots=True)
class AppliedStyle:
    """The style or preset a request is made with, fixed when it is submitted: its name (🔁 Again chooses it again),
    how captions and /history name it, the prompt sent upstream (the user's words stay the request's prompt) and
    the pictures it brought (kept apart from the user's own when the request is made again)."""

    name: str
    label: str
    prompt: str
    pictures: tuple[str, ...] = ()


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    MADE = "made"  # generated and kept; waiting for the rest of its request, or being delivered
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


class LineStage(IntEnum):
    """How far a request's status line has got; it only moves up, whichever process shows it."""

    NONE = 0  # a keyboard, or nothing yet
    QUEUED = 1  # waiting, shown by the process that queued it
    WORKING = 2  # its upstream call runs: generating, editing or upscaling
    DELIVERING = 3  # sending the result, or saying why there is none: the delivering process's last word


@dataclass(slots=True)
class Job:
    id: str
    origin: Origin
    request: ImageRequest
    status: JobStatus = JobStatus.QUEUED
    status_message_id: int | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    upstream_seconds: float | None = None
    error_kind: str | None = None
    request_id: str | None = None
    delivery: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    result_message_id: int | None = None
    photo_file_id: str | None = None
    document_file_id: str | None = None
    references: tuple[str, ...] = ()
    group_id: str | None = None  # the variants of one request share it; None for a single image
    variant: int = 1
    variants: int = 1
    upscale_of: str | None = None  # the job whose result this one re-renders larger
    extension: str | None = None  # of the original kept for it
    failure_values: dict = field(default_factory=dict)  # what its failure sentence names (which reference, …)
    sent: dict = field(default_factory=dict)  # what its delivery has sent so far (name → message id): never twice
    epoch: int = 0  # the fence: which claim of it this is (see Store.claim); a write names the epoch it holds
    original_prompt: str | None = None  # the user's own words when the prompt is the helper's translation of them

    style: AppliedStyle | None = None  # the style or preset it is made with

    @property
    def upstream_prompt(self) -> str:
        """What the image API is asked: the user's words in the style's template, or the words alone."""
        return self.style.prompt if self.style else self.request.prompt

    @property
    def group(self) -> str:
        return self.group_id or self.id

    @property
    def size_made(self) -> Resolution:
        """The size class of the image this job made (what ⬆ starts from); the one asked while none exists."""
        if self.width is None or self.height is None:
            return self.request.size
        return self.request.size_made(self.width, self.height)

    @property
    def label(self) -> str:
        """`16:9 · 2K`, and `· ×4` for a request of variants: the one way a request is named."""
        return self.request.label + (f" · ×{self.variants}" if self.variants > 1 else "")


@dataclass(slots=True)
class Prefs:
    """Remembered defaults of a user (private chats) or a chat (groups)."""

    aspect_ratio: AspectRatio | None = None
    size: Resolution | None = None
    always_original: bool = False
    language: str | None = None  # a user's choice over their Telegram language
    variants: int | None = None
    model: str | None = None  # the default model (when several are offered); None: the bot's
    extra: dict[str, str] = field(default_factory=dict)  # remembered choices of models' own options (quality)

    def choices(self) -> dict[str, str]:
        """The remembered options, ratio and size included, as a request's options name them."""
        chosen = {
            "ratio": self.aspect_ratio.value if self.aspect_ratio else None,
            "size": self.size.value if self.size else None,
        }
        return {**{k: v for k, v in chosen.items() if v}, **self.extra}

    translate: bool = False  # a user's: the prompt helper translates their prompts to English before generating


def prefs_scope(origin: Origin) -> tuple[str, int]:
    """Defaults belong to the user in a private chat and to the chat in groups and channels."""
    return ("user", origin.user_id) if origin.chat_id > 0 else ("chat", origin.chat_id)


@dataclass(frozen=True, slots=True)
class Reservation:
    """Credits a job takes from today's allowance; a None limit is no limit."""

    job_id: str
    user_id: int
    chat_id: int
    day: str
    credits: int
    user_limit: int | None
    chat_limit: int | None
