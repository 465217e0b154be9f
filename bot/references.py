"""Reference pictures for edits, as the engine sees them: ids that survive restarts, what can be refused before
anything is downloaded, and the refusal itself. Nothing here imports Telegram: `bot/telegram_references.py` finds
them in messages and fetches them for the worker.

An id is `tg:<file_id>` (a picture in Telegram, downloaded with getFile), `job:<job id>` (one of our own
originals, e.g. the result an upscale starts from) or `file:<path>` (a picture of STYLES_FILE's; only those paths are
read). Ids survive restarts; bytes are fetched only when needed.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_REFERENCES = 14
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # what the public Bot API lets a bot download


@dataclass(frozen=True, slots=True)
class Reference:
    id: str
    name: str  # for messages: the file name, or "photo"
    width: int | None = None
    height: int | None = None
    nbytes: int | None = None
    mime_type: str | None = None


class UnusableReference(Exception):
    """A reference that cannot be used; `kind` picks the sentence, `number` and `name` say which one, `cause`
    what went wrong underneath (for the log, never the chat)."""

    def __init__(self, kind: str, number: int, name: str, cause: str = "") -> None:
        super().__init__(f"reference {number} ({name}): {kind}" + (f": {cause}" if cause else ""))
        self.kind, self.number, self.name, self.cause = kind, number, name, cause


def check(references: list[Reference]) -> None:
    """What can be told before downloading anything: too large for the Bot API, animated, or not a picture."""
    for number, ref in enumerate(references, start=1):
        if ref.nbytes and ref.nbytes > DOWNLOAD_LIMIT:
            raise UnusableReference("too_big", number, ref.name)
        if ref.mime_type == "image/gif":
            raise UnusableReference("animated", number, ref.name)
        if ref.mime_type and not ref.mime_type.startswith("image/"):
            raise UnusableReference("not_image", number, ref.name)
