"""One image model as data: its options, how a request for it is built, what it answers and what it costs.

The image client, the CLI and the chat read a Profile; none of them knows a model by name. Every profile has a
`ratio` option (some of the 10 ratios) and a `size` option (some of the tiers 1K/2K/4K): the keyboard, the pixel
check and upscale are built on those two; a model's own knobs (gpt-image-2's `quality`) are further options.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
TIERS = ("1K", "2K", "4K")


def ratio_text(text: str) -> str:
    """`16:9`, `16x9`, `16/9`, `16×9` (phones and habits differ) → `16:9`."""
    return re.sub(r"\s+", "", text).lower().replace("x", ":").replace("/", ":").replace("×", ":")


def upper_text(text: str) -> str:
    """`2k` (the vendor's own habit) → `2K`."""
    return text.strip().upper()


def lower_text(text: str) -> str:
    return text.strip().lower()


@dataclass(frozen=True, slots=True)
class Option:
    """One knob of a model: its choices and default, its keyboard row and its prompt flag."""

    name: str  # the key in ImageRequest.options: `ratio`, `size`, `quality`
    choices: tuple[str, ...]
    default: str
    label_key: str  # the text key (bot/locales) naming its keyboard row
    flags: tuple[str, ...]  # the prompt's and the CLI's flag names without dashes, the first the one shown
    normalise: Callable[[str], str] = lower_text  # what a user typed → the form of `choices`
    scale: tuple[str, ...] = ()  # the ordered scale the choices come from (tiers): closest() moves along it
    choice_keys: bool = False  # each choice is shown through the text key `<label_key>_<choice>`, not verbatim

    def __post_init__(self) -> None:
        if self.default not in self.choices:
            raise ValueError(f"option {self.name}: default {self.default!r} is not one of {self.choices}")

    @property
    def flag(self) -> str:
        return f"--{self.flags[0]}"

    def parse(self, text: str) -> str:
        """The choice `text` names; ValueError when it names none."""
        value = self.normalise(text)
        if value not in self.choices:
            raise ValueError(text)
        return value

    def closest(self, value: str) -> str:
        """The choice nearest `value` (a choice of another model): itself if offered, else its nearest on the scale
        (the smaller on a tie: 1K becomes 2K where there is no 1K), else the default."""
        if value in self.choices:
            return value
        if value in self.scale:
            at = self.scale.index(value)
            offered = [c for c in self.choices if c in self.scale]
            if offered:
                return min(offered, key=lambda c: (abs(self.scale.index(c) - at), self.scale.index(c)))
        return self.default


def ratio_option(choices: tuple[str, ...] = RATIOS, default: str = "1:1") -> Option:
    return Option(
        "ratio",
        choices,
        default,
        "option_ratio",
        ("ar", "aspect", "aspect-ratio", "ratio"),
        normalise=ratio_text,
        scale=RATIOS,
    )


def size_option(choices: tuple[str, ...] = TIERS, default: str | None = None) -> Option:
    return Option(
        "size",
        choices,
        default or choices[0],
        "option_size",
        ("size", "resolution", "res"),
        normalise=upper_text,
        scale=TIERS,
    )


@dataclass(frozen=True, slots=True)
class References:
    """How reference pictures (an edit) travel, and how many a call takes."""

    via: Literal["multipart", "inline_data", "data_uri"]  # `image` parts / Gemini inline parts / JSON `image` list
    most: int
    with_outputs: int | None = None  # references + images made at most (Seedream: 15)

    def allowed(self, outputs: int = 1) -> int:
        """How many references a call making `outputs` images may send."""
        return self.most if self.with_outputs is None else min(self.most, self.with_outputs - outputs)


Fields = Callable[[Mapping[str, str], tuple[int, int], int], dict[str, object]]


@dataclass(frozen=True, slots=True)
class Profile:
    """A model the bot can offer. `fields(options, pixels, count)` gives the request's model-specific fields (the
    size knob, `n`, `quality`); the client adds the prompt, the model id and the references as `api` says."""

    name: str  # the profile's name: IMAGE_MODELS, `--model`, what jobs store
    label: str  # a short button label that fits a phone and names the model (a brand: the same in every language)
    aliases: tuple[str, ...]  # more names for `--model`
    options: tuple[Option, ...]
    pixels: Mapping[tuple[str, str], tuple[int, int]]  # (ratio, size) → (width, height) it should make
    credits: Mapping[str, int]  # choice → credits; a request costs their product (a choice not listed counts 1)
    api: Literal["images", "gemini"]  # OpenAI-style images API, or Gemini's generateContent
    path: str  # generation (and JSON-carried edits); `{model}` stands for the gateway's model id
    fields: Fields
    key_header: Literal["bearer", "x-goog-api-key"] = "bearer"
    edit_path: str | None = None  # multipart edits go here; None: references travel in the JSON to `path`
    references: References = field(default_factory=lambda: References("multipart", 14))
    max_outputs: int = 1  # images one call may return (`n`)
    answer: Literal["data", "candidates"] = "data"  # `data[].url|b64_json`, or Gemini's `inlineData` parts
    prompt_limit: int = 32_000

    def __post_init__(self) -> None:
        names = [o.name for o in self.options]
        if names[:2] != ["ratio", "size"] or len(set(names)) != len(names):
            raise ValueError(f"profile {self.name}: options must start with ratio and size, once each")
        ratio, size = self.options[0], self.options[1]
        if not set(ratio.choices) <= set(RATIOS) or not set(size.choices) <= set(TIERS):
            raise ValueError(f"profile {self.name}: ratios must come from {RATIOS}, sizes from {TIERS}")
        missing = [(r, s) for r in ratio.choices for s in size.choices if (r, s) not in self.pixels]
        if missing:
            raise ValueError(f"profile {self.name}: no pixels for {missing}")
        choices = {c for o in self.options for c in o.choices}
        if unknown := set(self.credits) - choices:
            raise ValueError(f"profile {self.name}: credits for choices it does not have: {sorted(unknown)}")
        if (self.references.via == "multipart") != (self.edit_path is not None):
            raise ValueError(f"profile {self.name}: multipart references need an edit_path, and only they")

    def option(self, name: str) -> Option:
        for option in self.options:
            if option.name == name:
                return option
        raise KeyError(name)

    @property
    def extra_options(self) -> tuple[Option, ...]:
        """The model's own knobs beyond ratio and size."""
        return self.options[2:]

    def defaults(self) -> dict[str, str]:
        return {o.name: o.default for o in self.options}

    def resolve(self, given: Mapping[str, str]) -> dict[str, str]:
        """Every option's choice, in the profile's order: `given` (values in their canonical form), defaults for the
        rest. ValueError naming the option for an unknown name or a value not offered."""
        if unknown := set(given) - {o.name for o in self.options}:
            raise ValueError(f"{self.name} has no option {', '.join(sorted(unknown))}")
        out = {}
        for option in self.options:
            value = given.get(option.name, option.default)
            if value not in option.choices:
                raise ValueError(f"{self.name}: {option.name} {value!r} is not one of {', '.join(option.choices)}")
            out[option.name] = value
        return out

    def carry(self, options: Mapping[str, str]) -> dict[str, str]:
        """Another model's choices moved to this one: each option kept where offered, else its closest (16:9 stays
        16:9; 1K where there is no 1K becomes the smallest tier); the model's own knobs at their defaults."""
        return {o.name: o.closest(options[o.name]) if o.name in options else o.default for o in self.options}

    def expected_pixels(self, options: Mapping[str, str]) -> tuple[int, int]:
        return self.pixels[(options["ratio"], options["size"])]

    def size_made(self, options: Mapping[str, str], width: int, height: int, slack: int) -> str:
        """The tier an image of these pixels really is: the largest whose long side it reaches (the smallest tier
        if it reaches none)."""
        want_w, want_h = self.expected_pixels(options)
        if abs(width - want_w) <= slack and abs(height - want_h) <= slack:
            return options["size"]
        tiers = self.option("size").choices
        made = tiers[0]
        for tier in tiers:
            if max(width, height) >= max(self.pixels[(options["ratio"], tier)]) - slack:
                made = tier
        return made

    def label_of(self, options: Mapping[str, str]) -> str:
        """`16:9 · 2K`, then the model's own knobs (`16:9 · 2K · high`)."""
        return " · ".join(options[o.name] for o in self.options)

    def cost(self, options: Mapping[str, str], credits: Mapping[str, int] | None = None) -> int:
        """Credits of one image with these choices: the product of each choice's credits (`credits` overriding the
        profile's own); a choice not listed counts 1."""
        table = {**self.credits, **(credits or {})}
        return math.prod(table.get(options[o.name], 1) for o in self.options)

    def gateway_path(self, model_id: str, edit: bool) -> str:
        return (self.edit_path if edit and self.edit_path else self.path).format(model=model_id)

    def max_references(self, outputs: int = 1) -> int:
        return self.references.allowed(outputs)
