"""The prompt helper on a keyboard (PROMPT_MODEL set): ✨ Improve asks the chat model for a rewrite, shown in the
keyboard message; ✓ Use it makes it the prompt, ↩ Keep mine drops it. Generating never waits for the helper."""

from __future__ import annotations

from telegram import Update
from telegram.ext import CallbackQueryHandler, ContextTypes

from ..keyboards import Action, Callback
from ..menus import Command
from ..services import get_services
from ..texts import t
from .dialogue import improve_later, show_keyboard
from .replies import Answer, may_press, user_lang


async def on_improve(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    answer = Answer(update)
    query = update.callback_query
    assert query is not None  # routed here by its pattern: a callback query of ours
    callback = Callback.decode(query.data)
    assert callback is not None  # the pattern matched only data we made
    try:
        await _on_improve(update, context, callback, answer)
    finally:
        await answer()


async def _on_improve(update: Update, context: ContextTypes.DEFAULT_TYPE, callback: Callback, answer: Answer) -> None:
    query = update.callback_query
    assert query is not None
    services = get_services(context)
    lang = await user_lang(context, query.from_user)
    pending = await services.requests.get(callback.id)
    if not await may_press(context, answer, lang, pending, query.from_user.id):
        return
    assert pending is not None  # may_press answered for a request that is gone
    if services.prompts is None or callback.arg not in ("", "y", "n"):  # the helper was turned off since
        await answer(t("expired", lang))
        return
    if query.message is not None:
        pending.message_id = query.message.message_id
    if not callback.arg:
        await answer(t("helper_working", lang))
        if not pending.suggestion:  # a rewrite is shown already: this tap came from before it
            improve_later(context, services, pending)
        return
    await answer()
    if pending.suggestion and callback.arg == "y":
        # the accepted rewrite is the prompt now, shown in the caption as any prompt; a translation it replaced
        # is no longer what is generated, so the words beside it go too
        pending.prompt, pending.original = pending.suggestion, None
    pending.suggestion = None
    await services.requests.set_suggestion(pending.id, None)
    await show_keyboard(context, services, pending)


COMMANDS: list[Command] = []
HANDLERS = [CallbackQueryHandler(on_improve, pattern=Callback.matching(Action.IMPROVE))]
