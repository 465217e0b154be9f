"""A style: a name, labels per language, a prompt template with a `{prompt}` slot, default options, pictures.

The library is read once: the built-in styles (`builtin.toml`, in the package) and, when STYLES_FILE names one, an
operator's file of the same shape that extends them (a style of the same name replaces the built-in one) or, with
`replace = true`, stands alone. Every mistake in a file is one line, so a start can name them all at once.
"""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..imagemodels import PROFILES, UnknownModel, find_profile, profile_for
from ..options import AspectRatio, Resolution
from ..texts import LANGUAGES, language

MAX_NAME_CHARS = 32
MAX_TEMPLATE_CHARS = 2000
MAX_PICTURES = 14  # per style or preset; with a request's own pictures, within the model's limit
MAX_PRESETS = 50  # per chat or person
SLOT = "{prompt}"
_NAME = re.compile(rf"[\w-]{{1,{MAX_NAME_CHARS}}}")  # letters (any script), digits, _ and -


def _model(text: str) -> str:
    """A model's profile name, from its name or an alias (which models this bot offers is the settings' to say)."""
    try:
        return find_profile(text).name
    except UnknownModel:
        raise ValueError(text) from None


# What a style's options may set, and how each value is checked (the user's own choices override them).
OPTIONS = {"ratio": AspectRatio.parse, "size": Resolution.parse, "model": _model}


def valid_name(name: str) -> bool:
    return bool(_NAME.fullmatch(name))


def _key(text: str) -> str:
    """What a typed name is compared by: letters and digits only, case folded (`Oil painting` = `oil-painting`)."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


@dataclass(frozen=True, slots=True)
class Style:
    """A built-in style, an operator's, or a preset (`owner`: "builtin", "chat" or "user")."""

    name: str
    template: str
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)  # {"ratio": "16:9", "size": "2K", "model": "gpt-image-2"}
    pictures: tuple[str, ...] = ()  # reference ids: `tg:<file_id>` (a preset) or `file:<path>` (a style file)
    owner: str = "builtin"

    def label(self, lang: str | None) -> str:
        return self.labels.get(language(lang)) or self.labels.get("en") or self.name

    @property
    def has_slot(self) -> bool:
        """Its template has a place for the user's words (without one, it may be the whole prompt)."""
        return SLOT in self.template

    def apply(self, prompt: str) -> str:
        """The prompt sent upstream: the user's words in the slot, or first when the template has none."""
        prompt = prompt.strip()
        if SLOT not in self.template:
            return f"{prompt}. {self.template}" if prompt else self.template
        text = self.template.replace(SLOT, prompt)
        if not prompt:  # "…figurine {prompt}." without words: no stray space or comma left behind
            text = re.sub(r"\s+([,.;:])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip(" ,;:")
        return text.strip()

    def answers_to(self, typed: str) -> bool:
        """Its name or a label in any language, as a person may type it after `--style`."""
        wanted = _key(typed)
        return bool(wanted) and wanted in {_key(self.name), *(_key(label) for label in self.labels.values())}


class StyleFileError(Exception):
    """A style file with mistakes: one line each, in `problems`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def check_entry(entry: Any, where: str, base: Path | None = None) -> tuple[Style | None, list[str]]:
    """One style of a file (or of an exported preset list) as a Style, or the lines saying what is wrong with it.

    `base`: the folder pictures are named relative to (a style file), else pictures must be Telegram file ids."""
    if not isinstance(entry, dict):
        return None, [f"{where}: a style is a table with name and template"]
    problems: list[str] = []
    name = entry.get("name")
    if not isinstance(name, str) or not valid_name(name):
        problems.append(f"{where}: name must be 1–{MAX_NAME_CHARS} letters, digits, _ or -, not {name!r}")
        name = "?"
    else:
        where = f"{where} ({name})"
    template = entry.get("template")
    if not isinstance(template, str) or not template.strip():
        problems.append(f"{where}: template is missing")
    elif len(template) > MAX_TEMPLATE_CHARS:
        problems.append(f"{where}: template has {len(template)} characters, at most {MAX_TEMPLATE_CHARS}")
    labels = entry.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) and v.strip() for v in labels.values()):
        problems.append(f"{where}: labels must be a table of language = text")
        labels = {}
    unknown_langs = sorted(set(labels) - set(LANGUAGES))
    if unknown_langs:
        problems.append(
            f"{where}: labels for unknown languages {', '.join(unknown_langs)} (use {', '.join(LANGUAGES)})"
        )
    options = _options(entry.get("options", {}), where, problems)
    pictures = _pictures(entry.get("pictures", []), where, base, problems)
    unknown = sorted(set(entry) - {"name", "template", "labels", "options", "pictures"})
    if unknown:
        problems.append(f"{where}: unknown keys {', '.join(unknown)}")
    if problems:
        return None, problems
    assert isinstance(template, str)  # a missing or empty one is a problem above
    return Style(name.casefold(), template.strip(), MappingProxyType(dict(labels)), options, pictures), []


def _options(value: Any, where: str, problems: list[str]) -> Mapping[str, str]:
    if not isinstance(value, dict):
        problems.append(
            f'{where}: options must be a table, e.g. {{ ratio = "16:9", size = "2K", model = "gpt-image-2" }}'
        )
        return {}
    options: dict[str, str] = {}
    extras: dict[str, Any] = {}
    for key, raw in value.items():
        parse = OPTIONS.get(key)
        if parse is None:
            extras[key] = raw
            continue
        try:
            parsed = parse(str(raw))
        except ValueError:
            if key == "model":
                problems.append(f"{where}: model {raw!r} is not one the bot knows (use {', '.join(PROFILES)})")
            else:
                problems.append(f"{where}: {key} {raw!r} is not one the bot offers")
            continue
        options[key] = parsed if isinstance(parsed, str) else parsed.value
    if "model" in options:  # its ratio and size must be ones that model makes
        profile = profile_for(options["model"])
        for key in ("ratio", "size"):
            choices = profile.option(key).choices
            if key in options and options[key] not in choices:
                problems.append(f"{where}: {profile.label} has no {key} {options[key]} (use {', '.join(choices)})")
    options.update(_model_options(extras, options.get("model"), where, problems))
    return MappingProxyType(options)


def _model_options(extras: Mapping[str, Any], model: str | None, where: str, problems: list[str]) -> dict[str, str]:
    """A model's own options (`quality = "high"`): the style's model's, or, naming none, any model's that has
    them (a request uses them when its model takes them)."""
    profiles = [profile_for(model)] if model else list(PROFILES.values())
    known = [*OPTIONS, *dict.fromkeys(o.name for p in profiles for o in p.extra_options)]
    kept: dict[str, str] = {}
    for key, raw in extras.items():
        choices = [o for p in profiles for o in p.extra_options if o.name == key]
        if not choices:
            problems.append(f"{where}: unknown option {key!r} (use {', '.join(known)})")
            continue
        for option in choices:
            try:
                kept[key] = option.parse(str(raw))
                break
            except ValueError:
                continue
        else:
            valid = ", ".join(dict.fromkeys(c for o in choices for c in o.choices))
            problems.append(f"{where}: {key} {raw!r} is not one the bot offers (use {valid})")
    return kept


def _pictures(value: Any, where: str, base: Path | None, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.append(f"{where}: pictures must be a list of {'paths' if base else 'picture ids'}")
        return ()
    if len(value) > MAX_PICTURES:
        problems.append(f"{where}: {len(value)} pictures, at most {MAX_PICTURES}")
        return ()
    ids: list[str] = []
    for raw in value:
        if base is None:
            if not raw.startswith("tg:") or len(raw) < 4:
                problems.append(f"{where}: {raw!r} is not a picture kept by Telegram")
            ids.append(raw)
            continue
        path = (base / raw).resolve()
        if not path.is_file():
            problems.append(f"{where}: picture {raw!r} is not a file ({path})")
        ids.append(f"file:{path}")
    return tuple(ids)


class StyleLibrary:
    """The styles on offer in the order shown, read once at start."""

    def __init__(self, styles: Iterable[Style]) -> None:
        self.styles: tuple[Style, ...] = tuple(styles)

    def __iter__(self) -> Iterator[Style]:
        return iter(self.styles)

    def __len__(self) -> int:
        return len(self.styles)

    @property
    def picture_files(self) -> frozenset[Path]:
        """The operator's reference pictures: the only files a job may read by path."""
        return frozenset(
            Path(p.removeprefix("file:")) for s in self.styles for p in s.pictures if p.startswith("file:")
        )


def _parse(data: dict[str, Any], where: str, base: Path | None) -> tuple[list[Style], list[str]]:
    problems: list[str] = []
    entries = data.get("style", [])
    if not isinstance(entries, list):
        return [], [f"{where}: write each style as a [[style]] table"]
    unknown = sorted(set(data) - {"style", "replace"})
    if unknown:
        problems.append(f"{where}: unknown keys {', '.join(unknown)} (a file has [[style]] tables and replace)")
    if not isinstance(data.get("replace", False), bool):
        problems.append(f"{where}: replace must be true or false")
    styles: list[Style] = []
    seen: set[str] = set()
    for number, entry in enumerate(entries, 1):
        style, wrong = check_entry(entry, f"{where}: style {number}", base)
        problems += wrong
        if style is not None:
            if style.name in seen:
                problems.append(f"{where}: style {number} ({style.name}): the name is used twice")
            seen.add(style.name)
            styles.append(style)
    return styles, problems


@functools.cache
def builtin_styles() -> tuple[Style, ...]:
    text = resources.files(__package__).joinpath("builtin.toml").read_text(encoding="utf-8")
    styles, problems = _parse(tomllib.loads(text), "builtin.toml", None)
    if problems:  # a mistake of ours, caught by the tests
        raise StyleFileError(problems)
    return tuple(styles)


def load_library(path: Path | None) -> StyleLibrary:
    """The built-in styles, extended or replaced by the file at `path`; StyleFileError naming every mistake."""
    if path is None:
        return StyleLibrary(builtin_styles())
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StyleFileError([f"{where}: cannot be read ({exc.strerror or exc})"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise StyleFileError([f"{where}: not TOML ({exc})"]) from None
    styles, problems = _parse(data, where, path.parent)
    if problems:
        raise StyleFileError(problems)
    if data.get("replace", False):
        return StyleLibrary(styles)
    own = {s.name: s for s in styles}
    kept = [own.pop(s.name, s) for s in builtin_styles()]
    return StyleLibrary([*kept, *own.values()])


def closest_names(typed: str, names: Iterable[str], count: int = 3) -> list[str]:
    """The names nearest what was typed (by spelling), for "no style X; did you mean …"."""
    names = list(dict.fromkeys(names))
    keyed = {_key(n): n for n in names}
    close = difflib.get_close_matches(_key(typed), list(keyed), n=count, cutoff=0.5)
    return [keyed[k] for k in close] or names[:count]
