"""Where a message goes, and the Bot API arguments that put it there: the chat side's one idea of a destination.

The engine never sends anything, so this lives on the Telegram side; a request's `Origin` (plain domain data) says
where it came from, and `Target.of` turns that into where its answers go.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import ReplyParameters

from .models import Origin


@dataclass(frozen=True, slots=True)
class Target:
    """A chat, its forum topic, and the message a new one answers."""

    chat_id: int
    thread_id: int | None = None
    reply_to: int | None = None

    @classmethod
    def of(cls, origin: Origin) -> Target:
        """Where the answers to a request go: its chat and topic, replying to the message that asked."""
        return cls(origin.chat_id, origin.thread_id, origin.reply_to)


def send_kwargs(target: Target) -> dict:
    """The Bot API arguments that put a message at `target`: its chat, topic, and the message it answers."""
    reply = ReplyParameters(target.reply_to, allow_sending_without_reply=True) if target.reply_to else None
    return {"chat_id": target.chat_id, "message_thread_id": target.thread_id, "reply_parameters": reply}
