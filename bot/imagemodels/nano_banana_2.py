"""nano-banana-2 on DMXAPI's OpenAI-style images API (docs/IMAGE-API.md): `aspect_ratio` + `size` 1K/2K/4K, one
image a call, references as multipart `image` parts to `/v1/images/edits`, `data[].url` or `b64_json` answers."""

from __future__ import annotations

from collections.abc import Mapping

from .profile import RATIOS, TIERS, Profile, References, ratio_option, size_option

#: (ratio, size) → (width, height) as the vendor makes them; gemini-3-pro-image makes the same.
PIXELS: dict[tuple[str, str], tuple[int, int]] = {
    (ratio, size): dims
    for ratio, row in zip(
        RATIOS,
        (
            ((1024, 1024), (2048, 2048), (4096, 4096)),
            ((848, 1264), (1696, 2528), (3392, 5056)),
            ((1264, 848), (2528, 1696), (5056, 3392)),
            ((896, 1200), (1792, 2400), (3584, 4800)),
            ((1200, 896), (2400, 1792), (4800, 3584)),
            ((928, 1152), (1856, 2304), (3712, 4608)),
            ((1152, 928), (2304, 1856), (4608, 3712)),
            ((768, 1376), (1536, 2752), (3072, 5504)),
            ((1376, 768), (2752, 1536), (5504, 3072)),
            ((1584, 672), (3168, 1344), (6336, 2688)),
        ),
        strict=True,
    )
    for size, dims in zip(TIERS, row, strict=True)
}


def fields(options: Mapping[str, str], pixels: tuple[int, int], count: int) -> dict[str, object]:
    """`n` must be 1; the size knob is the ratio and the tier by name; the answer a URL, as the bot always asked."""
    return {"n": 1, "aspect_ratio": options["ratio"], "size": options["size"], "response_format": "url"}


PROFILE = Profile(
    name="nano-banana-2",
    label="🍌 Banana 2",
    aliases=("banana", "nb2", "nano", "banana2", "nano-banana"),
    options=(ratio_option(), size_option()),
    pixels=PIXELS,
    credits={"1K": 1, "2K": 1, "4K": 2},  # the vendor's 1210 / 1210 / 2000 tokens
    api="images",
    path="/v1/images/generations",
    edit_path="/v1/images/edits",
    fields=fields,
    references=References("multipart", 14),
)
