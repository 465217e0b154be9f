"""Inline keyboards and the callback-data codec: `<action>:<id>[:<arg>]`, ASCII, at most 64 bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from .imagemodels import Option, Profile, profile_for
from .models import Job, Prefs
from .options import VARIANT_CHOICES, AspectRatio, Resolution
from .stars import Pack
from .texts import LANGUAGES, t

RATIOS_PER_ROW = 5
MODELS_PER_ROW = 2  # model labels are longer than a ratio: two fit a phone's row


class Action(StrEnum):
    RATIO = "r"  # move the ✓ to a ratio (pending request)
    SIZE = "s"  # move the ✓ to a size (pending request)
    GENERATE = "g"
    DISMISS = "x"  # cancel the keyboard
    CANCEL = "c"  # cancel a queued or running job
    AGAIN = "a"
    CHANGE = "m"
    ORIGINAL = "o"
    RESEND = "h"  # send a finished result again by its stored file id
    UPSCALE = "u"  # re-render a result at a larger size (arg: the size)
    VARIANTS = "v"  # choose ×1 / ×2 / ×4 on a pending request
    KEEP_RATIO = "k"  # pick the ratio closest to the first reference image
    PREFS = "p"  # a /settings button; the id names the scope (u<user id> or c<chat id>)
    DROP_PICTURES = "d"  # make a new image from the words alone, without the request's pictures
    REOPEN = "e"  # bring a cancelled keyboard back, prompt and choices as they were
    HELP = "i"  # a /help section (the id names it; `main` is the first screen)
    HISTORY_PAGE = "l"  # a /history page (the id is the owner's id; arg: d or f, made or not made, and the page)
    MODEL = "y"  # switch a pending request's model (arg: the profile's name), when several are offered
    MODEL_OPTION = "z"  # a model's own option on a pending request (arg: `<option>.<choice>`, `quality.high`)
    BUY_PACK = "b"  # a credit pack under /buy: its invoice (the id is the pack's credits; arg: its Stars)
    SHOP = "B"  # 🛒 under a refusal for credits: the packs (the id is the user's id)
    IMPROVE = "w"  # the prompt helper on a pending request: ✨ Improve; arg y: ✓ Use it, n: ↩ Keep mine
    TRANSLATE = "W"  # the /settings switch "Translate my prompts to English" (the id: u<user id>)
    STYLE = "t"  # the 🎨 Style page of a pending request (arg: o open, p<n> a page, c<key> choose, n none, b back)
    PRESET = "T"  # a /presets button: a new keyboard with that preset chosen (id: the chat; arg: its key)
    INLINE_WAIT = "j"  # ✖ on an inline message before its job exists (the moment until chosen_inline_result)
    PREFS_OPTION = "q"  # a /settings button for the default model's own option (id: the scope; arg: `quality.high`)


# The families of buttons, one handler each (see `Callback.matching`).
KEYBOARD_ACTIONS = frozenset(
    {
        Action.RATIO,
        Action.SIZE,
        Action.VARIANTS,
        Action.KEEP_RATIO,
        Action.GENERATE,
        Action.DISMISS,
        Action.DROP_PICTURES,
        Action.REOPEN,
        Action.MODEL,
        Action.MODEL_OPTION,
    }
)  # their id: a pending request
RESULT_ACTIONS = frozenset({Action.AGAIN, Action.CHANGE, Action.UPSCALE, Action.ORIGINAL, Action.RESEND})

HELP_SECTIONS = ("options", "edit", "results", "commands")
BUY_START = "buy"  # the deep link's start parameter: the private chat opened on the packs
HELP_MAIN = "main"


@dataclass(frozen=True, slots=True)
class Callback:
    action: Action
    id: str
    arg: str = ""

    def encode(self) -> str:
        data = f"{self.action}:{self.id}" + (f":{self.arg}" if self.arg else "")
        if len(data.encode()) > 64:
            raise ValueError("callback data over 64 bytes")
        return data

    @classmethod
    def decode(cls, data: str | None) -> Callback | None:
        """Anything we did not make (old versions, other bots, junk) decodes to None."""
        parts = (data or "").split(":")
        if len(parts) not in (2, 3) or not parts[1]:
            return None
        try:
            action = Action(parts[0])
        except ValueError:
            return None
        return cls(action, parts[1], parts[2] if len(parts) == 3 else "")

    @classmethod
    def matching(cls, *actions: Action) -> Callable[[object], bool]:
        """A `CallbackQueryHandler` pattern: callback data of ours whose action is one of `actions`."""
        wanted = frozenset(actions)

        def pattern(data: object) -> bool:
            callback = cls.decode(data) if isinstance(data, str) else None
            return callback is not None and callback.action in wanted

        return pattern

    @classmethod
    def undecodable(cls, data: object) -> bool:
        """A `CallbackQueryHandler` pattern: data we did not make (old versions, other bots, junk)."""
        return not isinstance(data, str) or cls.decode(data) is None


def ratio_arg(ratio: AspectRatio) -> str:
    return ratio.value.replace(":", "x")


def _button(text: str, action: Action, id_: str, arg: str = "") -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=Callback(action, id_, arg).encode())


def _mark(label: str, selected: bool) -> str:
    return f"✓ {label}" if selected else label


def choice_keyboard(
    pending_id: str,
    ratio: AspectRatio,
    size: Resolution,
    lang: str | None,
    *,
    variants: int = 1,
    keep_ratio: bool = False,
    profile: Profile | None = None,
    extra: dict[str, str] | None = None,
    models: list[Profile] | None = None,
    cost: int | None = None,
    helper: bool = False,
    suggestion: bool = False,
    style_label: str | None = None,
    variants_row: bool = True,
) -> InlineKeyboardMarkup:
    """The request's keyboard, its rows from `profile`'s table (nano-banana-2's: the 10 ratios and 1K/2K/4K). With
    several `models` a model row comes first, the model's own options (`extra`: their choices now) after the
    sizes, and ✨ Generate says the cost; with one, none of that. With the prompt helper (`helper`) ✨ Improve, or ✓ Use it /
    ↩ Keep mine under a rewrite shown (`suggestion`). `style_label` names the chosen style on the 🎨 button."""
    profile = profile or profile_for("nano-banana-2")
    rows = []
    if models and len(models) > 1:
        buttons = [_button(_mark(m.label, m.name == profile.name), Action.MODEL, pending_id, m.name) for m in models]
        rows += [buttons[i : i + MODELS_PER_ROW] for i in range(0, len(buttons), MODELS_PER_ROW)]
    ratios = [
        _button(_mark(r, r == ratio.value), Action.RATIO, pending_id, ratio_arg(AspectRatio(r)))
        for r in profile.option("ratio").choices
    ]
    rows += [ratios[i : i + RATIOS_PER_ROW] for i in range(0, len(ratios), RATIOS_PER_ROW)]
    if keep_ratio:
        rows.append([_button(t("keep_ratio", lang), Action.KEEP_RATIO, pending_id)])
        rows.append([_button(t("drop_pictures", lang), Action.DROP_PICTURES, pending_id)])
    rows.append(
        [_button(_mark(s, s == size.value), Action.SIZE, pending_id, s) for s in profile.option("size").choices]
    )
    for option in profile.extra_options:
        chosen = (extra or {}).get(option.name, option.default)
        rows.append(
            [
                _button(
                    _mark(choice_label(option, c, lang), c == chosen),
                    Action.MODEL_OPTION,
                    pending_id,
                    f"{option.name}.{c}",
                )
                for c in option.choices
            ]
        )
    if variants_row:  # an inline message holds one picture: no ×2 / ×4 there
        rows.append(
            [_button(_mark(f"×{n}", n == variants), Action.VARIANTS, pending_id, str(n)) for n in VARIANT_CHOICES]
        )
    style = t("style_chosen_button", lang, label=style_label) if style_label else t("style_button", lang)
    rows.append([_button(style, Action.STYLE, pending_id, "o")])
    if helper and suggestion:
        rows.append(
            [
                _button(t("helper_use_it", lang), Action.IMPROVE, pending_id, "y"),
                _button(t("helper_keep_mine", lang), Action.IMPROVE, pending_id, "n"),
            ]
        )
    elif helper:
        rows.append([_button(t("helper_improve", lang), Action.IMPROVE, pending_id)])
    generate = t("generate", lang)
    if models and len(models) > 1 and cost is not None:
        generate = t("generate_cost", lang, credits=cost * variants)
    rows.append(
        [_button(generate, Action.GENERATE, pending_id), _button(t("cancel", lang), Action.DISMISS, pending_id)]
    )
    return InlineKeyboardMarkup(rows)


def choice_label(option: Option, choice: str, lang: str | None) -> str:
    """A choice as a button shows it: its own text (`High`) where the option has them, else as it is (`16:9`)."""
    return t(f"{option.label_key}_{choice}", lang) if option.choice_keys else choice


STYLES_PER_ROW = 2
STYLE_ROWS = 5  # a page of ten names and its ◀ ▶ fit a phone's screen under the message


def style_key(name: str) -> str:
    """A style's or preset's name in callback data: short, ASCII, the same for the same name (names may be in any
    script and 32 letters long)."""
    return hashlib.sha1(name.encode()).hexdigest()[:10]


def style_pages(count: int) -> int:
    return max(1, -(-count // (STYLES_PER_ROW * STYLE_ROWS)))


def style_keyboard(
    pending_id: str, styles: Sequence[tuple[str, str]], chosen: str | None, page: int, lang: str | None
) -> InlineKeyboardMarkup:
    """The 🎨 page: "No style", then the offered styles (name, label) as buttons, ✓ on the chosen one, ◀ n/m ▶
    and ◀ Back to the keyboard."""
    per_page = STYLES_PER_ROW * STYLE_ROWS
    pages = style_pages(len(styles))
    page = min(max(page, 0), pages - 1)
    shown = styles[page * per_page : (page + 1) * per_page]
    buttons = [
        _button(_mark(label, name == chosen), Action.STYLE, pending_id, "c" + style_key(name)) for name, label in shown
    ]
    rows = [[_button(_mark(t("style_none", lang), chosen is None), Action.STYLE, pending_id, "n")]]
    rows += [buttons[i : i + STYLES_PER_ROW] for i in range(0, len(buttons), STYLES_PER_ROW)]
    nav = []
    if page > 0:
        nav.append(_button("◀", Action.STYLE, pending_id, f"p{page - 1}"))
    if pages > 1:
        nav.append(_button(f"{page + 1}/{pages}", Action.STYLE, pending_id, f"p{page}"))
    if page < pages - 1:
        nav.append(_button("▶", Action.STYLE, pending_id, f"p{page + 1}"))
    if nav:
        rows.append(nav)
    rows.append([_button(t("style_back", lang), Action.STYLE, pending_id, "b")])
    return InlineKeyboardMarkup(rows)


def presets_keyboard(chat_id: int, presets: Sequence[tuple[str, str]]) -> InlineKeyboardMarkup:
    """/presets: a button per preset (name, label); a tap opens a keyboard with it chosen."""
    buttons = [_button(label, Action.PRESET, str(chat_id), style_key(name)) for name, label in presets]
    return InlineKeyboardMarkup([buttons[i : i + STYLES_PER_ROW] for i in range(0, len(buttons), STYLES_PER_ROW)])


def reopen_keyboard(pending_id: str, lang: str | None) -> InlineKeyboardMarkup:
    """Under a cancelled keyboard: the prompt is kept, one tap brings the choices back."""
    return InlineKeyboardMarkup([[_button(t("start_again", lang), Action.REOPEN, pending_id)]])


def status_keyboard(job_id: str, lang: str | None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[_button(t("cancel_job", lang), Action.CANCEL, job_id)]])


def inline_wait_keyboard(token: str, lang: str | None) -> InlineKeyboardMarkup:
    """On a result chosen from an inline query (or a guest answer), until its job exists; Telegram gives an
    inline_message_id only to a message with buttons."""
    return InlineKeyboardMarkup([[_button(t("cancel_job", lang), Action.INLINE_WAIT, token)]])


def retry_keyboard(job_id: str, lang: str | None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[_button(t("again", lang), Action.AGAIN, job_id), _button(t("change", lang), Action.CHANGE, job_id)]]
    )


def _larger(size: Resolution, tiers: tuple[str, ...] | None = None) -> list[Resolution]:
    """The sizes above `size` among `tiers` (a model's; all of 1K/2K/4K when not given)."""
    order = [Resolution(s) for s in tiers] if tiers else list(Resolution)
    return order[order.index(size) + 1 :] if size in order else []


def result_keyboard(
    job_id: str,
    lang: str | None,
    *,
    with_original: bool,
    size: Resolution | None = None,
    tiers: tuple[str, ...] | None = None,
) -> InlineKeyboardMarkup:
    """Under one image: 🔁 📐 📄, and ⬆ for each size above the one made (of `tiers`, the model's sizes)."""
    row = [_button(t("again", lang), Action.AGAIN, job_id), _button(t("change", lang), Action.CHANGE, job_id)]
    if with_original:
        row.append(_button(t("original", lang), Action.ORIGINAL, job_id))
    rows = [row]
    if size is not None and _larger(size, tiers):
        rows.append([_button(f"⬆ {s.value}", Action.UPSCALE, job_id, s.value) for s in _larger(size, tiers)])
    return InlineKeyboardMarkup(rows)


def album_keyboard(
    job_ids: list[str],
    lang: str | None,
    *,
    with_originals: bool,
    size: Resolution,
    tiers: tuple[str, ...] | None = None,
) -> InlineKeyboardMarkup:
    """Under an album of variants: 🔁 📐, then ⬆ n (that one at 4K, where the model has 4K) and 📄 n (that one's
    original file)."""
    rows = [
        [_button(t("again", lang), Action.AGAIN, job_ids[0]), _button(t("change", lang), Action.CHANGE, job_ids[0])]
    ]
    if size != Resolution.K4 and Resolution.K4 in _larger(
        size, tiers
    ):  # each says where it goes: "⬆ 2" alone reads like "two of them"
        rows.append(
            [_button(f"⬆ {n} · 4K", Action.UPSCALE, jid, Resolution.K4.value) for n, jid in enumerate(job_ids, 1)]
        )
    if with_originals:
        rows.append([_button(f"📄 {n}", Action.ORIGINAL, jid) for n, jid in enumerate(job_ids, 1)])
    return InlineKeyboardMarkup(rows)


def prefs_keyboard(
    scope_key: str,
    prefs: Prefs,
    ratio: AspectRatio,
    size: Resolution,
    lang: str | None,
    *,
    models: list[Profile] | None = None,
    model: str | None = None,
    helper: bool = False,
    options: Sequence[Option] = (),
    ratios: Sequence[AspectRatio] = tuple(AspectRatio),
    sizes: Sequence[Resolution] = tuple(Resolution),
) -> InlineKeyboardMarkup:
    """/settings: the default model (several `models` offered; ✓ on `model`, the effective one), ratio and size (the
    `ratios` and `sizes` that model offers), that model's own `options` (a row each) and count (✓ on the effective one), the always-send-original switch and (a user's) language, and with the prompt helper (`helper`) their translate switch. No Done: every tap is
    saved."""
    rows = []
    if models and len(models) > 1:
        buttons = [_button(_mark(m.label, m.name == model), Action.PREFS, scope_key, "m" + m.name) for m in models]
        rows += [buttons[i : i + MODELS_PER_ROW] for i in range(0, len(buttons), MODELS_PER_ROW)]
    buttons = [_button(_mark(r.value, r == ratio), Action.PREFS, scope_key, "r" + ratio_arg(r)) for r in ratios]
    rows += [buttons[i : i + RATIOS_PER_ROW] for i in range(0, len(buttons), RATIOS_PER_ROW)]
    rows.append([_button(_mark(s.value, s == size), Action.PREFS, scope_key, "s" + s.value) for s in sizes])
    for option in options:  # the default model's own knobs (gpt-image-2's Quality): a row each, ✓ on the remembered
        chosen = prefs.extra.get(option.name, option.default)
        rows.append(
            [
                _button(
                    _mark(choice_label(option, c, lang), c == chosen),
                    Action.PREFS_OPTION,
                    scope_key,
                    f"{option.name}.{c}",
                )
                for c in option.choices
            ]
        )
    rows.append(
        [_button(_mark(f"×{n}", n == (prefs.variants or 1)), Action.PREFS, scope_key, f"v{n}") for n in VARIANT_CHOICES]
    )
    switch = t("prefs_original_on" if prefs.always_original else "prefs_original_off", lang)
    rows.append([_button(switch, Action.PREFS, scope_key, "o")])
    if scope_key.startswith("u"):  # the language is a person's choice, not a chat's; "" is the app's own
        choices = {"": t("prefs_language_app", lang), **LANGUAGES}
        rows.append(
            [
                _button(_mark(name, (prefs.language or "") == code), Action.PREFS, scope_key, "l" + code)
                for code, name in choices.items()
            ]
        )
        if helper:
            switch = t("prefs_translate_on" if prefs.translate else "prefs_translate_off", lang)
            rows.append([_button(switch, Action.TRANSLATE, scope_key)])
    return InlineKeyboardMarkup(rows)


def history_keyboard(
    requests: list[list[Job]],
    first: int,
    lang: str | None,
    *,
    owner: int,
    kind: str,
    page: int,
    pages: int,
    switch: tuple[str, str] | None,
) -> InlineKeyboardMarkup | None:
    """Under a /history page, numbered like its lines: 📤 n sends that result again, 🔁 n makes it anew; then
    ◀ ▶ and the switch to the other list (`switch`: its kind and label)."""
    numbered = list(enumerate(requests, start=first))
    resend = [
        _button(f"📤 {n}", Action.RESEND, jobs[0].id)
        for n, jobs in numbered
        if any(job.photo_file_id or job.document_file_id for job in jobs)
    ]
    rows = [row for row in (resend, [_button(f"🔁 {n}", Action.AGAIN, jobs[0].id) for n, jobs in numbered]) if row]
    nav = []
    if page > 0:
        nav.append(_button("◀", Action.HISTORY_PAGE, str(owner), f"{kind}{page - 1}"))
    if page < pages - 1:
        nav.append(_button("▶", Action.HISTORY_PAGE, str(owner), f"{kind}{page + 1}"))
    if switch is not None:
        nav.append(_button(switch[1], Action.HISTORY_PAGE, str(owner), f"{switch[0]}0"))
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(rows) if rows else None


def help_keyboard(section: str | None, lang: str | None) -> InlineKeyboardMarkup:
    """Under /help: a button per section (✓ on the one shown), and ◀ Back to the first screen."""
    buttons = [
        _button(_mark(t(f"help_{name}_button", lang), name == section), Action.HELP, name) for name in HELP_SECTIONS
    ]
    rows = [buttons[:2], buttons[2:]]
    if section is not None:
        rows.append([_button(t("help_back", lang), Action.HELP, HELP_MAIN)])
    return InlineKeyboardMarkup(rows)


def packs_keyboard(packs: tuple[Pack, ...], lang: str | None) -> InlineKeyboardMarkup:
    """Under /buy: one button per pack, its invoice."""
    return InlineKeyboardMarkup(
        [
            [
                _button(
                    t("buy_pack", lang, credits=p.credits, stars=p.stars), Action.BUY_PACK, str(p.credits), str(p.stars)
                )
            ]
            for p in packs
        ]
    )


def buy_link(bot_username: str) -> str:
    """The deep link that opens the private chat with the bot on its packs (`/start buy`)."""
    return f"https://t.me/{bot_username}?start={BUY_START}"


def shop_keyboard(user_id: int, bot_username: str, lang: str | None, *, private: bool) -> InlineKeyboardMarkup:
    """🛒 under a refusal for credits: the packs here in a private chat; elsewhere the private chat, opened on them
    (invoices go to the person)."""
    if private:
        return InlineKeyboardMarkup([[_button(t("buy_button", lang), Action.SHOP, str(user_id))]])
    return InlineKeyboardMarkup([[InlineKeyboardButton(t("buy_open_private", lang), url=buy_link(bot_username))]])
