"""gpt-image-2 on the OpenAI-style images API (MODELS.md: `gpt-image-2-text-to-image.md`,
`gpt-image-2-image-edit.md`): `size: "WxH"` from the ratio × tier table below, `quality`, `n` up to 10 in one call,
references as multipart `image` parts (up to 16), `data[].b64_json` answers (a `url` is handled too)."""

from __future__ import annotations

from collections.abc import Mapping

from .profile import RATIOS, TIERS, Option, Profile, References, ratio_option, size_option

#: Every size keeps the vendor's rules (multiples of 16, longest side ≤ 3840, ratio ≤ 3:1, 655,360–8,294,400
#: pixels): 1K ≈ 1 Mpx, 2K a longest side of 2048, 4K the largest allowed. MODELS.md's table.
PIXELS: dict[tuple[str, str], tuple[int, int]] = {
    (ratio, size): dims
    for ratio, row in zip(
        RATIOS,
        (
            ((1024, 1024), (2048, 2048), (2880, 2880)),
            ((1024, 1536), (1360, 2048), (2352, 3520)),
            ((1536, 1024), (2048, 1360), (3520, 2352)),
            ((880, 1168), (1536, 2048), (2496, 3312)),
            ((1168, 880), (2048, 1536), (3312, 2496)),
            ((912, 1136), (1632, 2048), (2576, 3216)),
            ((1136, 912), (2048, 1632), (3216, 2576)),
            ((768, 1360), (1152, 2048), (2160, 3840)),
            ((1360, 768), (2048, 1152), (3840, 2160)),
            ((1536, 656), (2048, 880), (3840, 1648)),
        ),
        strict=True,
    )
    for size, dims in zip(TIERS, row, strict=True)
}

#: The vendor's `auto` is not offered: the bot must know the price of what it asks. `medium` is the default:
#: the middle price, and what the vendor's `auto` usually picks for a plain prompt.
QUALITY = Option("quality", ("low", "medium", "high"), "medium", "option_quality", ("quality",), choice_keys=True)


def fields(options: Mapping[str, str], pixels: tuple[int, int], count: int) -> dict[str, object]:
    """Always an explicit size, so the honest-size check holds; PNG (the default) and base64 (the default)."""
    return {"n": count, "size": f"{pixels[0]}x{pixels[1]}", "quality": options["quality"]}


PROFILE = Profile(
    name="gpt-image-2",
    label="GPT Image 2",
    aliases=("gpt", "gpt-image", "gpt2", "openai"),
    options=(ratio_option(), size_option(), QUALITY),
    pixels=PIXELS,
    credits={"low": 1, "medium": 2, "high": 4, "4K": 2},  # MODELS.md "Costs": by quality, 4K twice that
    api="images",
    path="/v1/images/generations",
    edit_path="/v1/images/edits",
    fields=fields,
    references=References("multipart", 16),
    max_outputs=10,
)
