"""Turning an update into an Origin, and answering into the same chat and forum topic."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.ext import ContextTypes

from ..delivery import Target
from ..store import Origin


def origin_of(update: Update) -> Origin:
    message = update.effective_message
    chat = update.effective_chat
    user = update.effective_user
    sender = user.id if user else (message.sender_chat.id if message and message.sender_chat else chat.id)
    # Only a forum topic's thread id may be sent back: replies in plain supergroups carry one too, and sending
    # it there fails with "message thread not found".
    thread = message.message_thread_id if message and message.is_topic_message else None
    return Origin(
        chat_id=chat.id,
        user_id=sender,
        thread_id=thread,
        reply_to=message.message_id if message and not update.callback_query else None,
        lang=user.language_code if user else None,
    )


async def reply(
    context: ContextTypes.DEFAULT_TYPE, origin: Origin, text: str, markup: InlineKeyboardMarkup | None = None
) -> Message:
    target = Target(origin.chat_id, origin.thread_id, origin.reply_to)
    return await context.bot.send_message(text=text, reply_markup=markup, **target.kwargs())
