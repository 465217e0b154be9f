"""/settings: remembered defaults per user (private chats) or per chat (groups, admins only)."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, ContextTypes

from ..imagemodels import Profile, profile_for
from ..keyboards import Action, Callback, choice_label, prefs_keyboard
from ..menus import Command
from ..models import Prefs, prefs_scope
from ..options import VARIANT_CHOICES, AspectRatio, Resolution
from ..services import Services, get_services
from ..texts import LANGUAGES, language, t
from .replies import Answer, edit_quietly, is_chat_admin, origin_for, reply, user_lang


def scope_key(scope: str, scope_id: int) -> str:
    return f"{scope[0]}{scope_id}"


def parse_scope_key(key: str) -> tuple[str, int] | None:
    try:
        return {"u": "user", "c": "chat"}[key[0]], int(key[1:])
    except (KeyError, IndexError, ValueError):
        return None


async def may_change(context: ContextTypes.DEFAULT_TYPE, scope: str, scope_id: int, user_id: int) -> bool:
    """A user changes their own defaults; a chat's defaults belong to its admins."""
    if scope == "user" or user_id == scope_id:  # the user themself, or a channel / anonymous admin as the chat
        return scope_id == user_id
    return await is_chat_admin(context, scope_id, user_id)


def _effective(services: Services, prefs: Prefs) -> tuple[AspectRatio, Resolution]:
    """The remembered ratio and size (else the bot's), each the closest the default model offers (1K on a model
    without 1K is its smallest tier), as a request there starts; what is remembered stays for another model."""
    settings = services.settings
    profile = profile_for(_model(services, prefs))
    ratio = profile.option("ratio").closest((prefs.aspect_ratio or settings.default_aspect_ratio).value)
    size = profile.option("size").closest((prefs.size or settings.default_size).value)
    return AspectRatio(ratio), Resolution(size)


async def settings_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    services = get_services(context)
    origin = await origin_for(update, context)
    scope, scope_id = prefs_scope(origin)
    if not await may_change(context, scope, scope_id, origin.user_id):
        await reply(context, origin, t("prefs_admins_only", origin.lang))
        return
    prefs = await services.prefs.get_prefs(scope, scope_id)
    ratio, size = _effective(services, prefs)
    markup = _keyboard(services, scope_key(scope, scope_id), prefs, ratio, size, origin.lang)
    app_lang = update.effective_user.language_code if update.effective_user else None
    helper = services.prompts is not None
    text = _panel(scope, prefs, ratio, size, origin.lang, app_lang, helper) + _model_row(services, prefs, origin.lang)
    await reply(context, origin, text, markup)


def _model(services: Services, prefs: Prefs) -> str:
    """The default model in effect: the remembered one while it is offered, else the bot's."""
    offered = services.settings.offered
    return prefs.model if prefs.model in offered else services.settings.default_model


def _keyboard(
    services: Services, key: str, prefs: Prefs, ratio: AspectRatio, size: Resolution, lang: str | None
) -> InlineKeyboardMarkup:
    models = [profile_for(name) for name in services.settings.offered]
    model = _model(services, prefs)
    profile = profile_for(model)
    return prefs_keyboard(
        key,
        prefs,
        ratio,
        size,
        lang,
        models=models,
        model=model,
        helper=services.prompts is not None,
        options=profile.extra_options,
        ratios=[AspectRatio(r) for r in profile.option("ratio").choices],
        sizes=[Resolution(s) for s in profile.option("size").choices],
    )


def _model_row(services: Services, prefs: Prefs, lang: str | None) -> str:
    """The panel's line for the default model, when several are offered; then one for each of its own options
    (whatever the number of models: they are that model's knobs, not a word about models)."""
    profile = profile_for(_model(services, prefs))
    text = t("prefs_row_model", lang, model=profile.label) if len(services.settings.offered) > 1 else ""
    for option in profile.extra_options:
        value = choice_label(option, prefs.extra.get(option.name, option.default), lang)
        text += t("prefs_row_option", lang, option=t(option.label_key, lang), value=value)
    return text


async def on_prefs_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    answer = Answer(update)
    try:
        assert update.callback_query is not None  # a CallbackQueryHandler's update
        callback = Callback.decode(update.callback_query.data)
        assert callback is not None  # its pattern let only our own data through
        await _on_prefs_button(update, context, callback, answer)
    finally:
        await answer()


async def _on_prefs_button(
    update: Update, context: ContextTypes.DEFAULT_TYPE, callback: Callback, answer: Answer
) -> None:
    query = update.callback_query
    assert query is not None  # a CallbackQueryHandler's update
    lang = await user_lang(context, query.from_user)
    services = get_services(context)
    scope = parse_scope_key(callback.id)
    if callback.action == Action.TRANSLATE:  # the prompt helper's switch: a button of its own, no argument
        callback = Callback(Action.PREFS, callback.id, "t")
    elif callback.action == Action.PREFS_OPTION and callback.arg:  # the default model's own option: `quality.high`
        callback = Callback(Action.PREFS, callback.id, "q" + callback.arg)
    if scope is None or not callback.arg:
        await answer(t("expired", lang))
        return
    if not await may_change(context, *scope, query.from_user.id):
        await answer(t("prefs_admins_only", lang) if scope[0] == "chat" else t("not_yours", lang))
        return
    prefs = await services.prefs.get_prefs(*scope)
    kind, value = callback.arg[0], callback.arg[1:]
    try:
        if kind == "m" and value in services.settings.offered:
            prefs.model = value
        elif kind == "r":  # checked against the default model now: a button from before it changed is stale
            prefs.aspect_ratio = AspectRatio(_default_profile(services, prefs).option("ratio").parse(value))
        elif kind == "s":
            prefs.size = Resolution(_default_profile(services, prefs).option("size").parse(value))
        elif kind == "v" and value.isdigit() and int(value) in VARIANT_CHOICES:
            prefs.variants = int(value)
        elif kind == "o":
            prefs.always_original = not prefs.always_original
        elif kind == "l" and (value in LANGUAGES or not value) and scope[0] == "user":
            prefs.language = value or None  # none: the Telegram app's language again
            lang = value or query.from_user.language_code
        elif kind == "t" and scope[0] == "user" and services.prompts is not None:
            prefs.translate = not prefs.translate
        elif kind == "q":
            name, _, choice = value.partition(".")
            prefs.extra[name] = _own_option(services, prefs, name, choice)
        elif kind != "d":  # d: the Done button of panels sent before every tap was saved
            raise ValueError(kind)
    except ValueError:
        await answer(t("expired", lang))
        return
    ratio, size = _effective(services, prefs)
    if kind == "d":
        original = t("on" if prefs.always_original else "off", lang)
        await answer()
        await edit_quietly(
            query.edit_message_text(
                t("prefs_saved", lang, ratio=ratio, size=size, variants=prefs.variants or 1, original=original)
            )
        )
        return
    await services.prefs.save_prefs(*scope, prefs)
    await answer()
    if kind == "l" and prefs.language:  # the command menu follows the choice, here in this private chat
        await services.menu.set_private(context.bot, scope[1], lang, chosen=True)
    elif kind == "l":
        await services.menu.reset_private(context.bot, scope[1], lang)
    markup = _keyboard(services, callback.id, prefs, ratio, size, lang)
    helper = services.prompts is not None
    text = _panel(scope[0], prefs, ratio, size, lang, query.from_user.language_code, helper) + _model_row(
        services, prefs, lang
    )
    await edit_quietly(query.edit_message_text(text, reply_markup=markup))


def _default_profile(services: Services, prefs: Prefs) -> Profile:
    return profile_for(_model(services, prefs))


def _own_option(services: Services, prefs: Prefs, name: str, choice: str) -> str:
    """A choice of the default model's own option, checked against that model now (ValueError: a button from
    before the default model changed, or not ours)."""
    option = next((o for o in profile_for(_model(services, prefs)).extra_options if o.name == name), None)
    if option is None:
        raise ValueError(name)
    return option.parse(choice)


def _panel(
    scope: str,
    prefs: Prefs,
    ratio: AspectRatio,
    size: Resolution,
    lang: str | None,
    app_lang: str | None,
    helper: bool = False,
) -> str:
    """The title, then what each row of buttons sets, in their order, with its value now."""
    original = t("on" if prefs.always_original else "off", lang)
    text = t("prefs_title_user" if scope == "user" else "prefs_title_chat", lang)
    text += t("prefs_rows", lang, ratio=ratio, size=size, variants=prefs.variants or 1, original=original)
    if scope == "user":
        chosen = LANGUAGES.get(prefs.language or "")
        name = chosen or t("prefs_language_app_value", lang, name=LANGUAGES[language(app_lang)])
        text += t("prefs_row_language", lang, language=name)
        if helper:
            text += t("prefs_row_translate", lang, value=t("on" if prefs.translate else "off", lang))
    return text


COMMANDS = [Command("settings", settings_command, private=4, group=6)]
HANDLERS = [
    CallbackQueryHandler(
        on_prefs_button, pattern=Callback.matching(Action.PREFS, Action.TRANSLATE, Action.PREFS_OPTION)
    )
]
