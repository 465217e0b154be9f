"""What a user can ask for: aspect ratio, resolution, the pixel table, and the flags typed into a prompt."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import cast

from .imagemodels import DEFAULT_MODEL, Option, Profile, UnknownModel, find_profile, nano_banana_2, profile_for
from .imagemodels.profile import ratio_text

MAX_PROMPT_CHARS = 32_000
VARIANT_CHOICES = (1, 2, 4)
SIZE_SLACK = 16  # pixels of rounding a result may differ by and still match the table


class AspectRatio(StrEnum):
    SQUARE = "1:1"
    PORTRAIT_2_3 = "2:3"
    LANDSCAPE_3_2 = "3:2"
    PORTRAIT_3_4 = "3:4"
    LANDSCAPE_4_3 = "4:3"
    PORTRAIT_4_5 = "4:5"
    LANDSCAPE_5_4 = "5:4"
    PORTRAIT_9_16 = "9:16"
    LANDSCAPE_16_9 = "16:9"
    ULTRAWIDE_21_9 = "21:9"

    @classmethod
    def parse(cls, text: str) -> AspectRatio:
        """Accept `16:9`, `16x9`, `16/9` (phones and habits differ); raise ValueError otherwise."""
        try:
            return cls(ratio_text(text))
        except ValueError:
            raise ValueError(text) from None


class Resolution(StrEnum):
    K1 = "1K"
    K2 = "2K"
    K4 = "4K"

    @classmethod
    def smallest(cls, sizes: Iterable[Resolution]) -> Resolution:
        order = list(cls)
        return min(sizes, key=order.index)

    @classmethod
    def parse(cls, text: str) -> Resolution:
        """Accept `2K` and the vendor's own lower-case `2k`; the API is always sent upper case."""
        try:
            return cls(text.strip().upper())
        except ValueError:
            raise ValueError(text) from None


#: nano-banana-2's pixel table keyed by the enums (gemini-3-pro-image shares it); every model's own is its profile's.
PIXELS: dict[tuple[AspectRatio, Resolution], tuple[int, int]] = {
    (AspectRatio(ratio), Resolution(size)): dims for (ratio, size), dims in nano_banana_2.PIXELS.items()
}


@dataclass(frozen=True, slots=True, init=False)
class ImageRequest:
    """One image to make: the unit that flows from a handler through the queue and a worker to the image client. It carries its model (a
    profile's name) and that model's options as data (`{"ratio": "16:9", "size": "2K", "quality": "high"}`), every
    option filled in; what it should produce, its label and its cost come from the profile.

    `ImageRequest(prompt, ratio, size)` is a nano-banana-2 request, as before there were profiles.
    """

    prompt: str
    model: str
    options: Mapping[str, str]

    def __init__(
        self,
        prompt: str,
        aspect_ratio: AspectRatio | str | None = None,
        size: Resolution | str | None = None,
        *,
        model: str = DEFAULT_MODEL,
        options: Mapping[str, str] | None = None,
    ) -> None:
        """Raises UnknownModel for a model no profile has, ValueError for an option it does not offer."""
        given = dict(options or {})
        if aspect_ratio is not None:
            given["ratio"] = str(aspect_ratio)
        if size is not None:
            given["size"] = str(size)
        object.__setattr__(self, "prompt", prompt)
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "options", MappingProxyType(profile_for(model).resolve(given)))

    def __hash__(self) -> int:
        return hash((self.prompt, self.model, tuple(self.options.items())))

    @property
    def profile(self) -> Profile:
        return profile_for(self.model)

    @property
    def aspect_ratio(self) -> AspectRatio:
        return AspectRatio(self.options["ratio"])

    @property
    def size(self) -> Resolution:
        return Resolution(self.options["size"])

    @property
    def expected_pixels(self) -> tuple[int, int]:
        return self.profile.expected_pixels(self.options)

    @property
    def label(self) -> str:
        """`16:9 · 2K`, and a model's own knobs after (`16:9 · 2K · high`)."""
        return self.profile.label_of(self.options)

    def matches(self, width: int, height: int) -> bool:
        """The one "size matches" rule: a few pixels of rounding are fine; a different shape or class is not."""
        want_w, want_h = self.expected_pixels
        return abs(width - want_w) <= SIZE_SLACK and abs(height - want_h) <= SIZE_SLACK

    def size_made(self, width: int, height: int) -> Resolution:
        """The size class an image of these pixels really is: the largest whose long side it reaches (an asked
        2K that came back at 1K is a 1K, so ⬆ offers 2K again; a model without 1K says its smallest)."""
        return Resolution(self.profile.size_made(self.options, width, height, SIZE_SLACK))

    def cost(self, credits: Mapping[str, int] | None = None) -> int:
        """Credits of this image: the profile's, with `credits` (this model's MODEL_CREDITS) over them."""
        return self.profile.cost(self.options, credits)

    def with_options(self, **changes: str) -> ImageRequest:
        """The same request with some options changed (`size="4K"` for an upscale)."""
        return ImageRequest(self.prompt, model=self.model, options={**self.options, **changes})

    def to_json(self) -> str:
        """Its model and options as one JSON value (the prompt is stored beside it):
        `{"model": "gpt-image-2", "options": {"ratio": "16:9", "size": "2K", "quality": "high"}}`."""
        return json.dumps(
            {"model": self.model, "options": dict(self.options)}, ensure_ascii=False, separators=(",", ":")
        )

    @classmethod
    def from_json(cls, prompt: str, value: str | None) -> ImageRequest:
        """The request `to_json` wrote. Lenient with what was stored by another version: no value or no model is
        nano-banana-2, a missing option its default, a choice the model no longer offers the closest it does.
        UnknownModel for a model no profile has (removed from the code)."""
        data = json.loads(value) if value else {}
        if not isinstance(data, dict):
            raise ValueError(f"not a stored request: {value!r}"[:200])
        profile = profile_for(str(data.get("model") or DEFAULT_MODEL))
        stored = data.get("options")
        stored = {str(k): str(v) for k, v in stored.items()} if isinstance(stored, dict) else {}
        return cls(prompt, model=profile.name, options=profile.carry(stored))


def closest_ratio(width: int, height: int) -> AspectRatio:
    """The listed ratio nearest a picture's own shape (compared on a log scale, so 2:1 and 1:2 weigh the same):
    what an edit starts from in a chat, 🖼 Keep ratio and the CLI alike."""
    target = math.log(width / height)
    return min(
        AspectRatio, key=lambda r: abs(math.log(PIXELS[(r, Resolution.K1)][0] / PIXELS[(r, Resolution.K1)][1]) - target)
    )


def describe_size(width: int, height: int) -> str:
    """`5504×3072 (16:9 · 4K)` when it matches a table entry, else the bare pixels."""
    for (ratio, size), dims in PIXELS.items():
        if dims == (width, height):
            return f"{width}×{height} ({ratio} · {size})"
    return f"{width}×{height}"


class OptionError(ValueError):
    """A flag in the prompt has a value we don't know; carries what to tell the user."""

    def __init__(self, flag: str, value: str, valid: list[str], model: str | None = None) -> None:
        super().__init__(f"{flag} {value!r}")
        self.flag, self.value, self.valid, self.model = flag, value, valid, model  # model: whose choices these are


@dataclass(frozen=True, slots=True)
class ParsedPrompt:
    prompt: str
    aspect_ratio: AspectRatio | None = None
    size: Resolution | None = None
    variants: int | None = None
    unknown: tuple[str, ...] = ()  # flags of other bots (`--v 6`), taken out of the prompt and named to the user
    model: str | None = None  # `--model`: the profile's name (read only when models are on offer)
    options: Mapping[str, str] = field(default_factory=dict)  # models' own flags (`--quality high`), not yet checked
    unknown_model: str | None = None  # a `--model` naming none on offer (read with `lenient_model`): ask which
    improve: bool = False  # `--improve`: the prompt helper rewrites it before the keyboard (read only when it is on)
    style: str | None = None  # `--style NAME`: a style's or preset's name or label as typed, found later

    def choose(self, profile: Profile, base: Mapping[str, str] | None = None) -> tuple[dict[str, str], tuple[str, ...]]:
        """This prompt's options for `profile`: `base` (a default or a preference, moved to this model's closest
        choices), then the flags. OptionError for a value the model does not offer; the flags the model does not
        take come back (`--quality high`) to be named as unknown flags are."""
        options = profile.carry(base or {})
        asked = {"ratio": self.aspect_ratio, "size": self.size, **self.options}
        not_taken = []
        for name, value in asked.items():
            if value is None:
                continue
            try:
                option = profile.option(name)
            except KeyError:
                not_taken.append(f"--{name} {value}")
                continue
            if str(value) not in option.choices:
                raise OptionError(option.flag, str(value), list(option.choices), model=profile.name)
            options[name] = str(value)
        return options, tuple(not_taken)


# Phones turn "--" into an em or en dash; accept all three.
_DASHES = r"(?:--|—|–)"
_RATIO_FLAG = re.compile(
    rf"(?<!\S){_DASHES}(?:aspect-ratio|aspect|ratio|ar)(?=[\s=]|$)(?:\s*=\s*|\s+)?(?P<v>\S+)?", re.IGNORECASE
)
_SIZE_FLAG = re.compile(
    rf"(?<!\S){_DASHES}(?:size|resolution|res)(?=[\s=]|$)(?:\s*=\s*|\s+)?(?P<v>\S+)?", re.IGNORECASE
)
_SIZE_SHORT = re.compile(rf"(?<!\S){_DASHES}(?P<v>[124]k)(?!\S)", re.IGNORECASE)
_MODEL_FLAG = re.compile(rf"(?<!\S){_DASHES}model(?=[\s=]|$)(?:\s*=\s*|\s+)?(?P<v>\S+)?", re.IGNORECASE)
_IMPROVE_FLAG = re.compile(rf"(?<!\S){_DASHES}improve(?!\S)", re.IGNORECASE)


def asks_improve(text: str) -> bool:
    """Does the text have `--improve` (read when the prompt helper is on), whatever else its flags say?"""
    return _IMPROVE_FLAG.search(text) is not None


_STYLE_FLAG = re.compile(rf"(?<!\S){_DASHES}style(?=[\s=]|$)(?:\s*=\s*|\s+)?(?P<v>(?!{_DASHES})\S+)?", re.IGNORECASE)
_VARIANTS_FLAG = re.compile(rf"(?<!\S){_DASHES}(?:variants|n)(?=[\s=]|$)(?:\s*=\s*|\s+)?(?P<v>\S+)?", re.IGNORECASE)
# Other bots' habits (Midjourney's above all). `--` before any word is a flag; a phone's dash before a word is
# ordinary prose ("—and"), so with a dash only these names count.
_FOREIGN_NAMES = (
    "v|version|no|seed|sameseed|style|stylize|s|chaos|c|q|quality|iw|sref|sw|cref|cw|oref|ow|tile|weird|w|raw|"
    "niji|stop|repeat|r|hd|video|draft|p|profile|personalize|exp|turbo|fast|relax|test|testp|creative|uplight|upbeta"
)
# Flags that take no value: the word after them is the prompt's.
_VALUELESS = frozenset("tile raw hd video draft turbo fast relax test testp creative uplight upbeta".split())
_FOREIGN_FLAG = re.compile(
    rf"(?<!\S)(?:--(?P<name>[A-Za-z][\w-]*)|[—–](?P<dash_name>{_FOREIGN_NAMES}))(?=[\s=]|$)"
    rf"(?:(?:\s*=\s*|\s+)(?P<v>(?!{_DASHES})\S+))?",
    re.IGNORECASE,
)


# Never meaningful in a prompt, wherever they are: zero-width space, word joiner, BOM.
_DROP = dict.fromkeys(map(ord, "\u200b\u2060\ufeff"))
# Blank-looking letters (Hangul fillers, braille blank) that otherwise count as text.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f")


def strip_controls(text: str) -> str:
    """Control characters out (newlines stay, tabs become spaces), and the zero-width characters of _DROP."""
    return "".join(
        " " if ch == "\t" else ch for ch in text.translate(_DROP) if ch in "\n\t" or unicodedata.category(ch) != "Cc"
    )


def is_blank(text: str) -> bool:
    """Nothing visible: only spaces, format characters and blank fillers. Format characters such as the zero-width
    joiner stay inside visible text (emoji sequences and some scripts need them), but alone they are no prompt."""
    return all(
        ch.isspace() or ch in _BLANK_LETTERS or unicodedata.category(ch) in ("Cf", "Zs", "Zl", "Zp") for ch in text
    )


def parse_variants(text: str) -> int:
    """`4`, `x4` or `×4`, one of VARIANT_CHOICES; raise ValueError otherwise."""
    value = text.strip().lstrip("x×")
    if not value.isdigit() or int(value) not in VARIANT_CHOICES:
        raise ValueError(text)
    return int(value)


def parse_prompt(
    text: str,
    models: Sequence[str] | None = None,
    *,
    lenient_model: bool = False,
    improve: bool = False,
    styles: bool = False,
) -> ParsedPrompt:
    """Split flags (`--ar 16:9`, `--aspect 16:9`, `--size 2k`, `--2k`, `--n 4`) from the prompt, anywhere in it.

    With `models` (the profile names on offer) also `--model NAME` (a name or an alias) and the flags of those
    models' own options (`--quality high`), checked against the model later (ParsedPrompt.choose); without it,
    those are other bots' flags, as before there were several models. With `improve` (the prompt helper is on)
    also `--improve`, which takes no value; without it, it is another bot's flag.
    With `styles` (the chat offers styles),
    `--style NAME` is ours (a model's own `--style` option comes first); without it, another bot's.
    Control characters go first; a prompt with nothing visible left is empty. The last occurrence of a flag wins.
    Raises OptionError for a value that is not valid; with `lenient_model` a `--model` naming none on offer is
    taken out and kept in `unknown_model` instead (the chat shows the models to pick from).
    """
    found: dict[str, object] = {}
    extra: dict[str, str] = {}
    text = strip_controls(text)

    def taker(flag: str, parse: Callable[[str], object], valid: list[str]) -> Callable[[re.Match[str]], str]:
        def take(match: re.Match[str]) -> str:
            value = match.group("v") or ""
            try:
                found[flag] = parse(value)
            except (ValueError, UnknownModel):
                raise OptionError(flag, value, valid) from None
            return " "

        return take

    if models:
        take_model = taker("--model", lambda v: find_profile(v, list(models)).name, list(models))

        def model_or_unknown(match: re.Match[str]) -> str:
            try:
                taken = take_model(match)
                found.pop("unknown model", None)
                return taken
            except OptionError as exc:
                if not lenient_model:
                    raise
                found["unknown model"] = exc.value
                found.pop("--model", None)
                return " "

        text = _MODEL_FLAG.sub(model_or_unknown, text)
        for flag, option in _model_flags(models).items():
            text = _option_flag(flag).sub(_extra_taker(option, extra), text)
    if improve:
        text, improvements = _IMPROVE_FLAG.subn(" ", text)
        found["--improve"] = improvements > 0
    if styles:
        text = _STYLE_FLAG.sub(taker("--style", _style_name, []), text)
    take_size = taker("--size", Resolution.parse, [s.value for s in Resolution])
    text = _VARIANTS_FLAG.sub(taker("--n", parse_variants, [str(n) for n in VARIANT_CHOICES]), text)
    text = _RATIO_FLAG.sub(taker("--ar", AspectRatio.parse, [r.value for r in AspectRatio]), text)
    text = _SIZE_FLAG.sub(take_size, text)
    text = _SIZE_SHORT.sub(take_size, text)
    unknown: list[str] = []
    text = _FOREIGN_FLAG.sub(lambda match: _take_foreign(match, unknown), text)
    prompt = re.sub(r"[ \t]{2,}", " ", text).strip()
    prompt = "" if is_blank(prompt) else prompt
    return ParsedPrompt(
        prompt,
        cast(AspectRatio | None, found.get("--ar")),
        cast(Resolution | None, found.get("--size")),
        cast(int | None, found.get("--n")),
        tuple(unknown),
        cast(str | None, found.get("--model")),
        extra,
        cast(str | None, found.get("unknown model")),
        bool(found.get("--improve")),
        cast(str | None, found.get("--style")),
    )


def _style_name(value: str) -> str:
    """`--style` needs a name; which style it is, the chat's offer says (StyleBook.find)."""
    if not value.strip():
        raise ValueError(value)
    return value.strip()


def _model_flags(models: Sequence[str]) -> dict[str, Option]:
    """Flag name → option, for the own options of the models on offer (ratio and size have their flags above)."""
    flags: dict[str, Option] = {}
    for name in models:
        for option in profile_for(name).extra_options:
            for flag in option.flags:
                flags.setdefault(flag, option)
    return flags


def _option_flag(flag: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\S){_DASHES}{re.escape(flag)}(?=[\s=]|$)(?:\s*=\s*|\s+)?(?P<v>\S+)?", re.IGNORECASE)


def _extra_taker(option: Option, extra: dict[str, str]) -> Callable[[re.Match[str]], str]:
    """A model's own flag out of the prompt, its value in the option's form; which model takes it is checked later."""

    def take(match: re.Match[str]) -> str:
        value = match.group("v") or ""
        if not value:
            raise OptionError(option.flag, value, list(option.choices))
        extra[option.name] = option.normalise(value)
        return " "

    return take


def _take_foreign(match: re.Match[str], unknown: list[str]) -> str:
    """Out of the prompt and into the list; a valueless flag gives its next word back to the prompt."""
    name = (match.group("name") or match.group("dash_name")).lower()
    value = match.group("v")
    if value is not None and name in _VALUELESS:
        unknown.append(f"--{name}")
        return f" {value}"
    unknown.append(f"--{name} {value}" if value is not None else f"--{name}")
    return " "
