"""Styles and presets as a request meets them: what a chat offers (its presets first, then the person's, then the
library), a name typed after `--style` found, a preset kept or removed, a list exported and imported.

Whose presets: in a group (or channel) the chat's, changed only by its admins (the handler asks Telegram); in a
private chat the person's own. Either way a request may use the chat's and the person's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from .models import AppliedStyle, Origin
from .store.presets import Presets, TooManyPresets
from .styles import Style, StyleLibrary, check_entry, closest_names

__all__ = ["BadPresetFile", "Scope", "StyleBook", "StyleGone", "TooManyPresets", "log_unoffered_models", "read_export"]

log = logging.getLogger(__name__)

EXPORT_KIND = "imagine-bot presets"
EXPORT_VERSION = 1


class StyleGone(Exception):
    """A keyboard's chosen style or preset is no longer offered (a preset removed meanwhile)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class BadPresetFile(Exception):
    """A file to import that is not an export of presets; `problems` says what is wrong, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose presets a chat changes: ("chat", id) in groups and channels, ("user", id) in a private chat."""

    kind: str
    id: int

    @classmethod
    def of(cls, origin: Origin) -> Scope:
        return cls("chat", origin.chat_id) if origin.chat_id < 0 else cls("user", origin.user_id)

    @property
    def shared(self) -> bool:
        """A group's: only its admins change it."""
        return self.kind == "chat"


class StyleBook:
    def __init__(self, library: StyleLibrary, presets: Presets) -> None:
        self.library = library
        self._presets = presets

    async def offered(self, origin: Origin) -> list[Style]:
        """The chat's presets, then the person's, then the library's styles; a name shadowed by one before it is
        left out, so a name always means the first of that name."""
        lists: list[Iterable[Style]] = []
        if origin.chat_id < 0:
            lists.append(await self._presets.list_presets("chat", origin.chat_id))
        lists.append(await self._presets.list_presets("user", origin.user_id))
        lists.append(self.library)
        seen: set[str] = set()
        offered = []
        for style in (s for group in lists for s in group):
            if style.name not in seen:
                seen.add(style.name)
                offered.append(style)
        return offered

    async def find(self, origin: Origin, typed: str) -> Style | None:
        """What `--style NAME` names: a name or a label (any language), the first offered that answers to it."""
        offered = await self.offered(origin)
        exact = next((s for s in offered if s.name == typed.casefold()), None)
        return exact or next((s for s in offered if s.answers_to(typed)), None)

    def label(self, name: str, lang: str | None) -> str:
        """How a chosen style is named on its keyboard: a library style by its label, a preset by its name."""
        style = next((s for s in self.library if s.name == name), None)
        return style.label(lang) if style else name

    async def closest(self, origin: Origin, typed: str) -> list[str]:
        return closest_names(typed, [s.name for s in await self.offered(origin)])

    async def applied(self, origin: Origin, name: str, prompt: str, lang: str | None) -> AppliedStyle:
        """The style a request is submitted with, fixed now; StyleGone when it is no longer offered."""
        style = await self.find(origin, name)
        if style is None:
            raise StyleGone(name)
        return AppliedStyle(style.name, style.label(lang), style.apply(prompt), style.pictures)

    async def presets(self, scope: Scope) -> list[Style]:
        return await self._presets.list_presets(scope.kind, scope.id)

    async def preset(self, scope: Scope, name: str) -> Style | None:
        return next((s for s in await self.presets(scope) if s.name == name.casefold()), None)

    async def save(self, scope: Scope, style: Style, by: int) -> bool:
        """Keep it (True: new, False: changed); TooManyPresets past the limit."""
        return await self._presets.save_preset(scope.kind, scope.id, style, by)

    async def delete(self, scope: Scope, name: str) -> bool:
        return await self._presets.delete_preset(scope.kind, scope.id, name)

    async def export(self, scope: Scope) -> bytes:
        """A file `import_file` reads: the presets with their templates, options and pictures (Telegram file ids,
        which this bot can use in any chat)."""
        entries = [
            {"name": s.name, "template": s.template, "options": dict(s.options), "pictures": list(s.pictures)}
            for s in await self.presets(scope)
        ]
        data = {"kind": EXPORT_KIND, "version": EXPORT_VERSION, "presets": entries}
        return json.dumps(data, ensure_ascii=False, indent=1).encode()


def log_unoffered_models(library: StyleLibrary, offered: list[str]) -> None:
    """Said once, at start: a style naming a model this bot does not offer (IMAGE_MODELS) is still offered, made
    with the model a request would have without it."""
    for style in library:
        model = style.options.get("model")
        if model is not None and model not in offered:
            log.warning(
                "style %s names model %s, which IMAGE_MODELS does not offer (%s): it is made with the usual model",
                style.name,
                model,
                ", ".join(offered),
            )


def read_export(data: bytes) -> list[Style]:
    """The presets of an exported file, every one checked as a style file's are; BadPresetFile otherwise."""
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadPresetFile(["not an export of presets"]) from None
    if not isinstance(parsed, dict) or parsed.get("kind") != EXPORT_KIND or not isinstance(parsed.get("presets"), list):
        raise BadPresetFile(["not an export of presets"])
    styles: list[Style] = []
    problems: list[str] = []
    for number, entry in enumerate(parsed["presets"], 1):
        style, wrong = check_entry(entry, f"preset {number}")
        problems += wrong
        if style is not None:
            styles.append(style)
    if problems:
        raise BadPresetFile(problems)
    return styles
