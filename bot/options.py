"""What a user can ask for: aspect ratio, resolution, the pixel table, and the flags typed into a prompt."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

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
        value = re.sub(r"\s+", "", text).lower().replace("x", ":").replace("/", ":").replace("×", ":")
        try:
            return cls(value)
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


PIXELS: dict[tuple[AspectRatio, Resolution], tuple[int, int]] = {
    (AspectRatio(ratio), Resolution(size)): dims
    for ratio, row in {
        "1:1": ((1024, 1024), (2048, 2048), (4096, 4096)),
        "2:3": ((848, 1264), (1696, 2528), (3392, 5056)),
        "3:2": ((1264, 848), (2528, 1696), (5056, 3392)),
        "3:4": ((896, 1200), (1792, 2400), (3584, 4800)),
        "4:3": ((1200, 896), (2400, 1792), (4800, 3584)),
        "4:5": ((928, 1152), (1856, 2304), (3712, 4608)),
        "5:4": ((1152, 928), (2304, 1856), (4608, 3712)),
        "9:16": ((768, 1376), (1536, 2752), (3072, 5504)),
        "16:9": ((1376, 768), (2752, 1536), (5504, 3072)),
        "21:9": ((1584, 672), (3168, 1344), (6336, 2688)),
    }.items()
    for size, dims in zip(("1K", "2K", "4K"), row, strict=True)
}


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """One image to make: the unit that flows from a handler through the queue and a worker to the image client."""

    prompt: str
    aspect_ratio: AspectRatio
    size: Resolution

    @property
    def expected_pixels(self) -> tuple[int, int]:
        return PIXELS[(self.aspect_ratio, self.size)]

    @property
    def label(self) -> str:
        return f"{self.aspect_ratio} · {self.size}"

    def matches(self, width: int, height: int) -> bool:
        """The one "size matches" rule: a few pixels of rounding are fine; a different shape or class is not."""
        want_w, want_h = self.expected_pixels
        return abs(width - want_w) <= SIZE_SLACK and abs(height - want_h) <= SIZE_SLACK

    def size_made(self, width: int, height: int) -> Resolution:
        """The size class an image of these pixels really is: the largest whose long side it reaches (an asked
        2K that came back at 1K is a 1K, so ⬆ offers 2K again)."""
        if self.matches(width, height):
            return self.size
        made = Resolution.K1
        for size in Resolution:
            if max(width, height) >= max(PIXELS[(self.aspect_ratio, size)]) - SIZE_SLACK:
                made = size
        return made


def closest_ratio(width: int, height: int) -> AspectRatio:
    """The listed ratio nearest a picture's own shape (compared on a log scale, so 2:1 and 1:2 weigh the same):
    what an edit starts from in a chat, 🖼 Keep ratio and the CLI alike."""
    target = math.log(width / height)
    return min(AspectRatio, key=lambda r: abs(math.log(PIXELS[(r, Resolution.K1)][0] / PIXELS[(r, Resolution.K1)][1])
                                              - target))


def describe_size(width: int, height: int) -> str:
    """`5504×3072 (16:9 · 4K)` when it matches a table entry, else the bare pixels."""
    for (ratio, size), dims in PIXELS.items():
        if dims == (width, height):
            return f"{width}×{height} ({ratio} · {size})"
    return f"{width}×{height}"


class OptionError(ValueError):
    """A flag in the prompt has a value we don't know; carries what to tell the user."""

    def __init__(self, flag: str, value: str, valid: list[str]) -> None:
        super().__init__(f"{flag} {value!r}")
        self.flag, self.value, self.valid = flag, value, valid


@dataclass(frozen=True, slots=True)
class ParsedPrompt:
    prompt: str
    aspect_ratio: AspectRatio | None = None
    size: Resolution | None = None
    variants: int | None = None
    unknown: tuple[str, ...] = ()  # flags of other bots (`--v 6`), taken out of the prompt and named to the user


# Phones turn "--" into an em or en dash; accept all three.
_DASHES = r"(?:--|—|–)"
_RATIO_FLAG = re.compile(
    rf"(?<!\S){_DASHES}(?:aspect-ratio|aspect|ratio|ar)(?=[\s=]|$)(?:\s*=\s*|\s+)?(?P<v>\S+)?", re.IGNORECASE
)
_SIZE_FLAG = re.compile(rf"(?<!\S){_DASHES}(?:size|resolution|res)(?=[\s=]|$)(?:\s*=\s*|\s+)?(?P<v>\S+)?", re.IGNORECASE)
_SIZE_SHORT = re.compile(rf"(?<!\S){_DASHES}(?P<v>[124]k)(?!\S)", re.IGNORECASE)
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
        " " if ch == "\t" else ch for ch in text.translate(_DROP)
        if ch in "\n\t" or unicodedata.category(ch) != "Cc"
    )


def is_blank(text: str) -> bool:
    """Nothing visible: only spaces, format characters and blank fillers. Format characters such as the zero-width
    joiner stay inside visible text (emoji sequences and some scripts need them), but alone they are no prompt."""
    return all(ch.isspace() or ch in _BLANK_LETTERS or unicodedata.category(ch) in ("Cf", "Zs", "Zl", "Zp")
               for ch in text)


def parse_variants(text: str) -> int:
    """`4`, `x4` or `×4`, one of VARIANT_CHOICES; raise ValueError otherwise."""
    value = text.strip().lstrip("x×")
    if not value.isdigit() or int(value) not in VARIANT_CHOICES:
        raise ValueError(text)
    return int(value)


def parse_prompt(text: str) -> ParsedPrompt:
    """Split flags (`--ar 16:9`, `--aspect 16:9`, `--size 2k`, `--2k`, `--n 4`) from the prompt, anywhere in it.

    Control characters go first; a prompt with nothing visible left is empty. The last occurrence of a flag wins.
    Raises OptionError for a value that is not valid.
    """
    found: dict[str, object] = {}
    text = strip_controls(text)

    def taker(flag: str, parse: Callable[[str], object], valid: list[str]) -> Callable[[re.Match[str]], str]:
        def take(match: re.Match[str]) -> str:
            value = match.group("v") or ""
            try:
                found[flag] = parse(value)
            except ValueError:
                raise OptionError(flag, value, valid) from None
            return " "

        return take

    take_size = taker("--size", Resolution.parse, [s.value for s in Resolution])
    text = _VARIANTS_FLAG.sub(taker("--n", parse_variants, [str(n) for n in VARIANT_CHOICES]), text)
    text = _RATIO_FLAG.sub(taker("--ar", AspectRatio.parse, [r.value for r in AspectRatio]), text)
    text = _SIZE_FLAG.sub(take_size, text)
    text = _SIZE_SHORT.sub(take_size, text)
    unknown: list[str] = []
    text = _FOREIGN_FLAG.sub(lambda match: _take_foreign(match, unknown), text)
    prompt = re.sub(r"[ \t]{2,}", " ", text).strip()
    prompt = "" if is_blank(prompt) else prompt
    return ParsedPrompt(prompt, found.get("--ar"), found.get("--size"), found.get("--n"),  # type: ignore[arg-type]
                        tuple(unknown))


def _take_foreign(match: re.Match[str], unknown: list[str]) -> str:
    """Out of the prompt and into the list; a valueless flag gives its next word back to the prompt."""
    name = (match.group("name") or match.group("dash_name")).lower()
    value = match.group("v")
    if value is not None and name in _VALUELESS:
        unknown.append(f"--{name}")
        return f" {value}"
    unknown.append(f"--{name} {value}" if value is not None else f"--{name}")
    return " "
