"""Seedream 4.5 (`doubao-seedream-4-5-251128`) on the OpenAI-style generations path (MODELS.md:
`img-seedream-45-t2i.md`, `img-seedream-45-i2i.md`): `size: "WxH"` from the vendor's recommended sizes (2K and 4K;
there is no 1K), references as data URIs in the JSON `image` list, a JPEG as a `data[].url` valid 24 h."""

from __future__ import annotations

from collections.abc import Mapping

from .profile import RATIOS, Profile, References, ratio_option, size_option

#: The vendor's recommended sizes for eight ratios; 4:5 and 5:4 computed by the same rules (MODELS.md).
PIXELS: dict[tuple[str, str], tuple[int, int]] = {
    (ratio, size): dims
    for ratio, row in zip(
        RATIOS,
        (
            ((2048, 2048), (4096, 4096)),
            ((1664, 2496), (3328, 4992)),
            ((2496, 1664), (4992, 3328)),
            ((1728, 2304), (3520, 4704)),
            ((2304, 1728), (4704, 3520)),
            ((1856, 2320), (3648, 4560)),
            ((2320, 1856), (4560, 3648)),
            ((1600, 2848), (3040, 5504)),
            ((2848, 1600), (5504, 3040)),
            ((3136, 1344), (6240, 2656)),
        ),
        strict=True,
    )
    for size, dims in zip(("2K", "4K"), row, strict=True)
}


def fields(options: Mapping[str, str], pixels: tuple[int, int], count: int) -> dict[str, object]:
    """Always `WxH`: `2K`/`4K` alone would let the model pick the ratio. No `n` (the model takes none)."""
    return {"size": f"{pixels[0]}x{pixels[1]}"}


PROFILE = Profile(
    name="doubao-seedream-4-5-251128",
    label="Seedream 4.5",
    aliases=("seedream", "seedream-4.5", "seedream45", "doubao"),
    options=(ratio_option(), size_option(("2K", "4K"))),
    pixels=PIXELS,
    credits={"2K": 2, "4K": 3},  # MODELS.md "Costs"
    api="images",
    path="/v1/images/generations",
    fields=fields,
    references=References("data_uri", 14, with_outputs=15),
)
