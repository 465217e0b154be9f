"""gemini-3-pro-image (Nano Banana Pro) through Gemini's own `generateContent` on the same gateway and key
(MODELS.md: `img-3pro-t2i.md`, `img-3pro-edit.md`): the key in `x-goog-api-key`, the size knob in
`generationConfig.imageConfig`, references as `inline_data` parts after the text, the image in `inlineData`."""

from __future__ import annotations

from collections.abc import Mapping

from .nano_banana_2 import PIXELS
from .profile import Profile, References, ratio_option, size_option


def fields(options: Mapping[str, str], pixels: tuple[int, int], count: int) -> dict[str, object]:
    """Only an image back (no text part to pay for); one candidate, so one image a call."""
    return {
        "generationConfig": {
            "responseModalities": ["IMAGE"],
            "imageConfig": {"aspectRatio": options["ratio"], "imageSize": options["size"]},
        }
    }


PROFILE = Profile(
    name="gemini-3-pro-image",
    label="🍌 Banana Pro",
    aliases=("pro", "banana-pro", "nano-banana-pro", "nbp", "gemini"),
    options=(ratio_option(), size_option()),
    pixels=PIXELS,  # the vendor's page: the same table as nano-banana-2
    credits={"1K": 2, "2K": 2, "4K": 4},  # MODELS.md "Costs": the Pro is slower and better at text in images
    api="gemini",
    path="/v1beta/models/{model}:generateContent",
    key_header="x-goog-api-key",
    fields=fields,
    references=References("inline_data", 11),  # "up to 6 objects + 5 people"
    answer="candidates",
)
