"""Every sentence a user can see, one TOML file per language in bot/locales (read once, at import). Handlers and
services ask for a key; a language without a key falls back to English."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from datetime import datetime
from importlib import resources

# Telegram's language_code is an IETF tag: zh-hant, zh-TW, zh-HK and zh-MO read Traditional characters.
_TRADITIONAL = {"hant", "tw", "hk", "mo"}


def _load() -> dict[str, dict[str, str]]:
    """Every `<code>.toml` in bot/locales, English first (it is the fallback and the list of keys)."""
    files = [f for f in resources.files(__package__).joinpath("locales").iterdir() if f.name.endswith(".toml")]
    texts = {f.name.removesuffix(".toml"): tomllib.loads(f.read_text(encoding="utf-8")) for f in files}
    return {code: texts[code] for code in sorted(texts, key=lambda code: (code != "en", code))}


TEXTS: dict[str, dict[str, str]] = _load()
EN, ZH, ZH_HANT = TEXTS["en"], TEXTS["zh"], TEXTS["zh-hant"]
LANGUAGES = {code: texts["language_name"] for code, texts in TEXTS.items()}  # {"en": "English", …}


def language(code: str | None) -> str:
    """Telegram's `language_code` (`zh-hans`, `zh-TW`, `zh-Hant-HK`, `en-GB`…) → one of LANGUAGES; English otherwise."""
    parts = (code or "en").replace("_", "-").lower().split("-")
    if parts[0] == "zh":
        return "zh-hant" if _TRADITIONAL & set(parts[1:]) else "zh"
    return parts[0] if parts[0] in TEXTS else "en"


def t(key: str, lang: str | None = None, **values: object) -> str:
    template = TEXTS[language(lang)].get(key) or EN[key]
    return template.format(**values)


def for_requester(prompt: str, requester: str | None, lang: str | None) -> str:
    """In a group, whose request a keyboard or status line is (`for Alice: a red fox`); elsewhere the prompt."""
    return t("for_requester", lang, name=requester, prompt=prompt) if requester else prompt


def join_list(items: Iterable[object], lang: str | None = None) -> str:
    """`1, 2 or 4` in English, `1、2 或 4` in Chinese."""
    words = [str(item) for item in items]
    if len(words) < 2:
        return "".join(words)
    return t("list_sep", lang).join(words[:-1]) + t("list_last", lang) + words[-1]


def resets_text(resets_at: datetime, now: datetime, lang: str | None) -> str:
    left = max(0, int((resets_at - now).total_seconds()))
    tz = resets_at.tzname() or "UTC"
    return t("resets", lang, time=resets_at.strftime("%H:%M"), tz=tz, hours=left // 3600, minutes=left % 3600 // 60)
