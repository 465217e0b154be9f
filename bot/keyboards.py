"""Inline keyboards and the callback-data codec: `<action>:<id>[:<arg>]`, ASCII, at most 64 bytes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from .models import Job, Prefs
from .options import VARIANT_CHOICES, AspectRatio, Resolution
from .texts import LANGUAGES, t

RATIOS_PER_ROW = 5


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
    INLINE_WAIT = "j"  # ✖ on an inline message before its job exists (the moment until chosen_inline_result)


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
    }
)  # their id: a pending request
RESULT_ACTIONS = frozenset({Action.AGAIN, Action.CHANGE, Action.UPSCALE, Action.ORIGINAL, Action.RESEND})

HELP_SECTIONS = ("options", "edit", "results", "commands")
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
    variants_row: bool = True,
) -> InlineKeyboardMarkup:
    ratios = [_button(_mark(r.value, r == ratio), Action.RATIO, pending_id, ratio_arg(r)) for r in AspectRatio]
    rows = [ratios[i : i + RATIOS_PER_ROW] for i in range(0, len(ratios), RATIOS_PER_ROW)]
    if keep_ratio:
        rows.append([_button(t("keep_ratio", lang), Action.KEEP_RATIO, pending_id)])
        rows.append([_button(t("drop_pictures", lang), Action.DROP_PICTURES, pending_id)])
    rows.append([_button(_mark(s.value, s == size), Action.SIZE, pending_id, s.value) for s in Resolution])
    if variants_row:  # an inline message holds one picture: no ×2 / ×4 there
        rows.append(
            [_button(_mark(f"×{n}", n == variants), Action.VARIANTS, pending_id, str(n)) for n in VARIANT_CHOICES]
        )
    rows.append(
        [
            _button(t("generate", lang), Action.GENERATE, pending_id),
            _button(t("cancel", lang), Action.DISMISS, pending_id),
        ]
    )
    return InlineKeyboardMarkup(rows)


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


def _larger(size: Resolution) -> list[Resolution]:
    order = list(Resolution)
    return order[order.index(size) + 1 :]


def result_keyboard(
    job_id: str, lang: str | None, *, with_original: bool, size: Resolution | None = None
) -> InlineKeyboardMarkup:
    """Under one image: 🔁 📐 📄, and ⬆ for each size above the one made."""
    row = [_button(t("again", lang), Action.AGAIN, job_id), _button(t("change", lang), Action.CHANGE, job_id)]
    if with_original:
        row.append(_button(t("original", lang), Action.ORIGINAL, job_id))
    rows = [row]
    if size is not None and _larger(size):
        rows.append([_button(f"⬆ {s.value}", Action.UPSCALE, job_id, s.value) for s in _larger(size)])
    return InlineKeyboardMarkup(rows)


def album_keyboard(
    job_ids: list[str], lang: str | None, *, with_originals: bool, size: Resolution
) -> InlineKeyboardMarkup:
    """Under an album of variants: 🔁 📐, then ⬆ n (that one at 4K) and 📄 n (that one's original file)."""
    rows = [
        [_button(t("again", lang), Action.AGAIN, job_ids[0]), _button(t("change", lang), Action.CHANGE, job_ids[0])]
    ]
    if size != Resolution.K4:  # each says where it goes: "⬆ 2" alone reads like "two of them"
        rows.append(
            [_button(f"⬆ {n} · 4K", Action.UPSCALE, jid, Resolution.K4.value) for n, jid in enumerate(job_ids, 1)]
        )
    if with_originals:
        rows.append([_button(f"📄 {n}", Action.ORIGINAL, jid) for n, jid in enumerate(job_ids, 1)])
    return InlineKeyboardMarkup(rows)


def prefs_keyboard(
    scope_key: str, prefs: Prefs, ratio: AspectRatio, size: Resolution, lang: str | None
) -> InlineKeyboardMarkup:
    """/settings: the default ratio, size and count (✓ on the effective one), the always-send-original switch and
    (a user's) language. No Done: every tap is saved."""
    ratios = [_button(_mark(r.value, r == ratio), Action.PREFS, scope_key, "r" + ratio_arg(r)) for r in AspectRatio]
    rows = [ratios[i : i + RATIOS_PER_ROW] for i in range(0, len(ratios), RATIOS_PER_ROW)]
    rows.append([_button(_mark(s.value, s == size), Action.PREFS, scope_key, "s" + s.value) for s in Resolution])
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
