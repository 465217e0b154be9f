"""The request rules of the four image models on one DMXAPI key, as their vendor pages state them.

Facts from DMXAPI's pages as issue 23's MODELS.md and docs/IMAGE-API.md give them.
``check(model, multipart, body, files)`` turns a request into a ``Plan`` (what to answer) or raises ``Refused``
with the status, message and error shape the vendor uses, so the fake image API proves a client's requests valid,
not only sent.

Where a page is silent the rules are strict, so a client cannot lean on a guess: fields a page does not name are
refused for ``gpt-image-2`` (as OpenAI does), ``doubao-seedream-4-5-251128`` and Gemini (as Google does);
``nano-banana-2`` keeps the gateway's lenience it always had here.
"""

from __future__ import annotations

import base64
import binascii
import re
import warnings
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from PIL import Image, UnidentifiedImageError

NANO, GEMINI, GPT, GPT_SSVIP, SEEDREAM = (
    "nano-banana-2",
    "gemini-3-pro-image",
    "gpt-image-2",
    "gpt-image-2-ssvip",
    "doubao-seedream-4-5-251128",
)
#: model id as a request names it -> the model (the gateway's ``gpt-image-2-ssvip`` is ``gpt-image-2``).
MODEL_IDS = {NANO: NANO, GEMINI: GEMINI, GPT: GPT, GPT_SSVIP: GPT, SEEDREAM: SEEDREAM}
#: model -> the shape of its error bodies: the gateway's OpenAI-ish ``{message, type, code}``, OpenAI's own
#: (with ``param``), or Google's ``{code, message, status}``.
ERROR_SHAPE = {NANO: "gateway", GEMINI: "google", GPT: "openai", SEEDREAM: "gateway"}

_PX = {
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
}
#: (aspect_ratio, size) -> (width, height): the pixel table of nano-banana-2, which gemini-3-pro-image shares.
SIZES: dict[tuple[str, str], tuple[int, int]] = {
    (ratio, size): px for ratio, row in _PX.items() for size, px in zip(("1K", "2K", "4K"), row)
}
RATIOS = tuple(_PX)
SIZE_NAMES = ("1K", "2K", "4K")
FORMATS = ("url", "b64_json")
MAX_PROMPT = 32_000
MAX_IMAGES = 14  # nano-banana-2's references

GEMINI_MAX_REFERENCES = 11  # "up to 6 objects + 5 people"
GEMINI_MIME_TYPES = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")
GEMINI_TOKENS = {"1K": 1210, "2K": 1210, "4K": 2000}

GPT_MIN_PIXELS, GPT_MAX_PIXELS, GPT_MAX_SIDE = 655_360, 8_294_400, 3840
GPT_MAX_IMAGES, GPT_MAX_N = 16, 10
GPT_AUTO_SIZE = (1024, 1024)
GPT_FIELDS = (
    "model",
    "prompt",
    "n",
    "size",
    "quality",
    "output_format",
    "output_compression",
    "moderation",
    "response_format",
)
GPT_QUALITIES = ("auto", "high", "medium", "low")
GPT_OUTPUT_FORMATS = ("png", "jpeg", "webp")

SEEDREAM_MIN_PIXELS, SEEDREAM_MAX_PIXELS = 3_686_400, 16_777_216
SEEDREAM_NAMED = {"2K": (2048, 2048), "4K": (4096, 4096)}  # the model picks; the fake answers these
SEEDREAM_DEFAULT_SIZE = (2048, 2048)
SEEDREAM_MAX_BYTES, SEEDREAM_MAX_REF_PIXELS, SEEDREAM_MAX_TOTAL = 30 * 1024 * 1024, 36_000_000, 15
SEEDREAM_REF_FORMATS = ("jpeg", "png", "webp", "bmp", "tiff", "gif", "heic", "heif")
SEEDREAM_FIELDS = (
    "model",
    "prompt",
    "size",
    "image",
    "response_format",
    "watermark",
    "stream",
    "sequential_image_generation",
    "sequential_image_generation_options",
    "optimize_prompt_options",
)


class Refused(Exception):
    """A request the vendor refuses: ``shape`` in ``ERROR_SHAPE``'s values says how the body is written."""

    def __init__(
        self,
        status: int,
        message: str,
        shape: str = "gateway",
        type_: str = "invalid_request_error",
        code: str = "invalid_parameter",
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.shape, self.type, self.code, self.param = (
            status,
            message,
            shape,
            type_,
            code,
            param,
        )


@dataclass
class Files:
    """The file parts of a multipart request (none for JSON)."""

    images: list[bytes] = field(default_factory=list)
    image_types: list[str] = field(default_factory=list)
    mask: bytes | None = None


@dataclass
class Plan:
    """What to answer a valid request with."""

    model: str
    sizes: list[tuple[int, int]]  # one per image asked for
    prompt: str
    fmt: str = "png"  # png, jpeg or webp
    answer: str = "url"  # url or b64_json (Gemini answers inline data)
    text: bool = False  # Gemini: a text part beside the image
    images: list[bytes] = field(default_factory=list)  # references, decoded
    image_types: list[str] = field(default_factory=list)
    image_urls: list[str] = field(default_factory=list)  # Seedream's https references (never fetched)
    tier: str = "1K"  # the size name asked for (Gemini's usage counts tokens by it)


def check(model: str, multipart: bool, body: dict[str, Any], files: Files) -> Plan:
    """The plan for a request to ``model`` (as ``MODEL_IDS`` names it), or ``Refused``."""
    return _CHECKS[model](body, files, multipart)


#: What ``image_size`` reports for a picture over Pillow's bomb limit (its header is refused unread): larger than
#: any limit a vendor sets.
HUGE = ("huge", (100_000, 100_000))


def image_size(data: bytes) -> tuple[str, tuple[int, int]] | None:
    """(format, (width, height)) from the header alone (no decoding, so a pixel bomb costs nothing); None if
    Pillow cannot read it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(BytesIO(data)) as img:
                return (img.format or "").lower(), img.size
    except Image.DecompressionBombError:
        return HUGE
    except (UnidentifiedImageError, OSError, ValueError):
        return None


# ---- nano-banana-2 ---------------------------------------------------------------------------


def _check_nano(b: dict[str, Any], files: Files, multipart: bool) -> Plan:
    def bad(message: str, status: int = 400, code: str = "invalid_parameter") -> Refused:
        return Refused(status, message, "gateway", "invalid_request_error", code)

    prompt = b.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise bad("prompt is required")
    if len(prompt) > MAX_PROMPT:
        raise bad(f"prompt is longer than {MAX_PROMPT} characters", 413, "prompt_too_long")
    n = b.get("n")
    if not ((n == 1 and not isinstance(n, bool)) or (multipart and n == "1")):
        raise bad(f"n must be 1, got {n!r}")
    if "aspect_ratio" in b and b["aspect_ratio"] not in RATIOS:
        raise bad(f"invalid aspect_ratio {b['aspect_ratio']!r}")
    if "size" in b and b["size"] not in SIZE_NAMES:
        raise bad(f"invalid size {b['size']!r}, must be one of 1K, 2K, 4K")
    if "response_format" in b and b["response_format"] not in FORMATS:
        raise bad(f"invalid response_format {b['response_format']!r}")
    if multipart and not files.images:
        raise bad("at least one image is required")
    if len(files.images) > MAX_IMAGES:
        raise bad(f"at most {MAX_IMAGES} images, got {len(files.images)}")
    size = SIZES[(b.get("aspect_ratio", "1:1"), b.get("size", "1K"))]
    return Plan(
        NANO,
        [size],
        prompt,
        answer=b.get("response_format") or "url",
        images=list(files.images),
        image_types=list(files.image_types),
    )


# ---- gemini-3-pro-image ----------------------------------------------------------------------

_GEMINI_TOP = (
    "contents",
    "generationConfig",
    "safetySettings",
    "systemInstruction",
    "tools",
    "toolConfig",
    "cachedContent",
)
_GEMINI_CONFIG = (
    "responseModalities",
    "imageConfig",
    "candidateCount",
    "temperature",
    "topP",
    "topK",
    "seed",
    "maxOutputTokens",
    "stopSequences",
    "responseMimeType",
    "thinkingConfig",
)
_GEMINI_IMAGE_CONFIG = ("aspectRatio", "imageSize")


def _snake(name: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m.group().lower(), name)


def _known(obj: dict[str, Any], names: tuple[str, ...], where: str) -> dict[str, Any]:
    """``obj`` with snake_case keys read as camelCase (Google's JSON reads both); an unknown key is refused."""
    out = {}
    for key, value in obj.items():
        name = next((n for n in names if key in (n, _snake(n))), None)
        if name is None:
            raise _google(f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field.")
        out[name] = value
    return out


def _google(message: str) -> Refused:
    return Refused(400, message, "google", code="INVALID_ARGUMENT")


def _check_gemini(b: dict[str, Any], files: Files, multipart: bool) -> Plan:
    b = _known(b, _GEMINI_TOP, "")
    contents = b.get("contents")
    if not isinstance(contents, list) or not contents:
        raise _google("* GenerateContentRequest.contents: contents is not specified")
    if len(contents) != 1 or not isinstance(contents[0], dict):
        raise _google("contents must hold exactly one content (the fake serves single-turn requests)")
    parts = contents[0].get("parts")
    if not isinstance(parts, list) or not parts:
        raise _google("* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.")
    first = parts[0]
    if (
        not isinstance(first, dict)
        or set(first) != {"text"}
        or not isinstance(first["text"], str)
        or not first["text"].strip()
    ):
        raise _google("contents[0].parts[0] must be the text part with the prompt")
    images, types = [], []
    for i, part in enumerate(parts[1:], 1):
        where = f"contents[0].parts[{i}]"
        inline = part.get("inline_data", part.get("inlineData")) if isinstance(part, dict) else None
        if not isinstance(inline, dict) or len(part) != 1:
            raise _google(f"{where} must be an inline_data part (a text part comes first, images after it)")
        inline = _known(inline, ("mimeType", "data"), f"{where}.inline_data")
        mime, data = inline.get("mimeType"), inline.get("data")
        if mime not in GEMINI_MIME_TYPES:
            raise _google(f"Unsupported MIME type: {mime}")
        try:
            raw = base64.b64decode(data, validate=True) if isinstance(data, str) else None
        except (binascii.Error, ValueError):
            raw = None
        if raw is None:
            raise _google(f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), Base64 decoding failed")
        if mime not in ("image/heic", "image/heif") and image_size(raw) is None:
            raise _google(
                "Unable to process input image. Please retry or report in "
                "https://developers.generativeai.google/guide/troubleshooting"
            )
        images.append(raw)
        types.append(mime)
    if len(images) > GEMINI_MAX_REFERENCES:
        raise _google(f"at most {GEMINI_MAX_REFERENCES} reference images (6 objects + 5 people), got {len(images)}")
    config = b.get("generationConfig")
    if not isinstance(config, dict):
        raise _google("generationConfig.responseModalities must ask for IMAGE")
    config = _known(config, _GEMINI_CONFIG, "generation_config")
    modalities = config.get("responseModalities")
    if not isinstance(modalities, list) or "IMAGE" not in modalities or not set(modalities) <= {"TEXT", "IMAGE"}:
        raise _google(f"generationConfig.responseModalities must ask for IMAGE (TEXT optional), got {modalities!r}")
    if config.get("candidateCount", 1) != 1:
        raise _google("Multiple candidates is not enabled for this model")
    image_config = config.get("imageConfig", {})
    if not isinstance(image_config, dict):
        raise _google("generationConfig.imageConfig must be an object")
    image_config = _known(image_config, _GEMINI_IMAGE_CONFIG, "generation_config.image_config")
    ratio, size = image_config.get("aspectRatio", "1:1"), image_config.get("imageSize", "1K")
    if ratio not in RATIOS:
        raise _google(f"Unsupported aspect ratio: {ratio!r}; one of {', '.join(RATIOS)}")
    if size not in SIZE_NAMES:
        raise _google(f"Unsupported image size: {size!r}; one of 1K, 2K, 4K")
    return Plan(
        GEMINI,
        [SIZES[(ratio, size)]],
        first["text"],
        text="TEXT" in modalities,
        images=images,
        image_types=types,
        tier=size,
    )


# ---- gpt-image-2 -----------------------------------------------------------------------------


def gpt_size_problem(size: str) -> str | None:
    """Why ``size`` ("WxH") breaks gpt-image-2's size rules, None if it keeps them."""
    m = re.fullmatch(r"([1-9]\d*)x([1-9]\d*)", size)
    if not m:
        return f"Invalid value: '{size}'. Supported values are: 'auto' or 'WIDTHxHEIGHT'."
    w, h = int(m[1]), int(m[2])
    if w % 16 or h % 16:
        return f"Invalid size '{size}': width and height must both be multiples of 16."
    if max(w, h) > GPT_MAX_SIDE:
        return f"Invalid size '{size}': the longest side must be at most {GPT_MAX_SIDE} pixels."
    if max(w, h) > 3 * min(w, h):
        return f"Invalid size '{size}': the long side may be at most 3 times the short side."
    if not GPT_MIN_PIXELS <= w * h <= GPT_MAX_PIXELS:
        return f"Invalid size '{size}': total pixels must be between {GPT_MIN_PIXELS} and {GPT_MAX_PIXELS}."
    return None


def _openai(message: str, param: str | None, code: str = "invalid_value") -> Refused:
    return Refused(400, message, "openai", "invalid_request_error", code, param)


def _gpt_int(b: dict[str, Any], name: str, default: int, low: int, high: int, multipart: bool) -> int:
    value = b.get(name, default)
    if multipart and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _openai(
            f"Invalid type for '{name}': expected an integer, but got {type(value).__name__} instead.",
            name,
            "invalid_type",
        )
    if value < low:
        raise _openai(
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, but got {value} instead.",
            name,
            "integer_below_min_value",
        )
    if value > high:
        raise _openai(
            f"Invalid '{name}': integer above maximum value. Expected a value <= {high}, but got {value} instead.",
            name,
            "integer_above_max_value",
        )
    return value


def _gpt_choice(b: dict[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = b.get(name, default)
    if value not in choices:
        raise _openai(
            f"Invalid value: '{value}'. Supported values are: " + ", ".join(f"'{c}'" for c in choices) + ".", name
        )
    return value


def _check_gpt(b: dict[str, Any], files: Files, multipart: bool) -> Plan:
    for key in b:
        if key not in GPT_FIELDS:
            raise _openai(f"Unknown parameter: '{key}'.", key, "unknown_parameter")
    prompt = b.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _openai("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    if len(prompt) > MAX_PROMPT:
        raise _openai(
            f"Invalid 'prompt': string too long. Expected a string with maximum length {MAX_PROMPT}, "
            f"but got a string with length {len(prompt)} instead.",
            "prompt",
            "string_above_max_length",
        )
    n = _gpt_int(b, "n", 1, 1, GPT_MAX_N, multipart)
    size = b.get("size", "auto")
    if not isinstance(size, str):
        raise _openai(
            f"Invalid type for 'size': expected a string, but got {type(size).__name__} instead.",
            "size",
            "invalid_type",
        )
    if size == "auto":
        px = GPT_AUTO_SIZE
    else:
        if problem := gpt_size_problem(size):
            raise _openai(problem, "size")
        px = tuple(int(v) for v in size.split("x"))
    _gpt_choice(b, "quality", GPT_QUALITIES, "auto")
    fmt = _gpt_choice(b, "output_format", GPT_OUTPUT_FORMATS, "png")
    if "output_compression" in b:
        _gpt_int(b, "output_compression", 100, 0, 100, multipart)
        if fmt == "png":
            raise _openai(
                "output_compression is only supported with output_format 'jpeg' or 'webp'.",
                "output_compression",
                "invalid_value",
            )
    _gpt_choice(b, "moderation", ("auto", "low"), "auto")
    answer = _gpt_choice(b, "response_format", FORMATS, "b64_json")
    if multipart:
        _gpt_files(files)
    return Plan(
        GPT, [px] * n, prompt, fmt=fmt, answer=answer, images=list(files.images), image_types=list(files.image_types)
    )


def _gpt_files(files: Files) -> None:
    """gpt-image-2's edits: 1-16 pictures (PNG, JPEG or WebP under 50 MB); a mask is a PNG with alpha the size of
    the first picture."""
    if not files.images:
        raise _openai("Missing required parameter: 'image'.", "image", "missing_required_parameter")
    if len(files.images) > GPT_MAX_IMAGES:
        raise _openai(
            f"Invalid 'image': too many images. Expected at most {GPT_MAX_IMAGES}, got {len(files.images)}.",
            "image",
            "array_above_max_length",
        )
    sizes = []
    for i, data in enumerate(files.images, 1):
        found = image_size(data)
        if found is None or found[0] not in ("png", "jpeg", "webp") or len(data) >= 50 * 1024 * 1024:
            raise _openai(
                f"Invalid image file or mode for image {i}, please check your image file.",
                "image",
                "invalid_image_file",
            )
        sizes.append(found[1])
    if files.mask is not None:
        try:
            with Image.open(BytesIO(files.mask)) as mask:
                ok = mask.format == "PNG" and ("A" in mask.getbands() or "transparency" in mask.info)
                same = mask.size == sizes[0]
        except (UnidentifiedImageError, OSError, ValueError):
            ok = same = False
        if not ok:
            raise _openai("Invalid mask: it must be a PNG with an alpha channel.", "mask", "invalid_image_file")
        if not same:
            raise _openai("Invalid mask: it must be the same size as the first image.", "mask", "invalid_value")


# ---- doubao-seedream-4-5-251128 --------------------------------------------------------------


def seedream_size_problem(size: str) -> str | None:
    """Why ``size`` ("WxH") breaks Seedream 4.5's size rules, None if it keeps them."""
    m = re.fullmatch(r"([1-9]\d*)x([1-9]\d*)", size)
    if not m:
        return f"The parameter `size` specified in the request is not valid: {size!r} is not 2K, 4K or WIDTHxHEIGHT."
    w, h = int(m[1]), int(m[2])
    if not SEEDREAM_MIN_PIXELS <= w * h <= SEEDREAM_MAX_PIXELS:
        return (
            f"The parameter `size` specified in the request is not valid: total pixels must be between "
            f"{SEEDREAM_MIN_PIXELS} and {SEEDREAM_MAX_PIXELS}, got {w * h}."
        )
    if w > 16 * h or h > 16 * w:
        return "The parameter `size` specified in the request is not valid: width/height must be within 1/16 and 16."
    return None


def _ark(message: str) -> Refused:
    return Refused(400, message, "gateway", "invalid_request_error", "InvalidParameter")


def _check_seedream(b: dict[str, Any], files: Files, multipart: bool) -> Plan:
    for key in b:
        if key not in SEEDREAM_FIELDS:
            raise _ark(f"The parameter `{key}` specified in the request is not valid for model {SEEDREAM}.")
    prompt = b.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _ark("The parameter `prompt` specified in the request is missing.")
    size = b.get("size")
    if size is None:
        px = SEEDREAM_DEFAULT_SIZE
    elif size in SEEDREAM_NAMED:
        px = SEEDREAM_NAMED[size]
    elif not isinstance(size, str) or (problem := seedream_size_problem(size)):
        raise _ark(problem if isinstance(size, str) else "The parameter `size` must be a string.")
    else:
        px = tuple(int(v) for v in size.split("x"))
    answer = b.get("response_format", "url")
    if answer not in FORMATS:
        raise _ark(f"The parameter `response_format` specified in the request is not valid: {answer!r}.")
    if not isinstance(b.get("watermark", False), bool):
        raise _ark("The parameter `watermark` must be a boolean.")
    if b.get("stream", False) is not False:
        raise _ark("The parameter `stream` must be false here (the fake does not stream).")
    mode = b.get("sequential_image_generation", "disabled")
    if mode not in ("disabled", "auto"):
        raise _ark(f"The parameter `sequential_image_generation` specified in the request is not valid: {mode!r}.")
    options = b.get("sequential_image_generation_options", {})
    outputs = options.get("max_images", SEEDREAM_MAX_TOTAL) if isinstance(options, dict) else None
    if not isinstance(outputs, int) or isinstance(outputs, bool) or not 1 <= outputs <= SEEDREAM_MAX_TOTAL:
        raise _ark("The parameter `sequential_image_generation_options.max_images` must be an integer 1-15.")
    outputs = outputs if mode == "auto" else 1
    if not isinstance(b.get("optimize_prompt_options", {}), dict):
        raise _ark("The parameter `optimize_prompt_options` must be an object.")
    refs = b.get("image", [])
    refs = [refs] if isinstance(refs, str) else refs
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise _ark("The parameter `image` must be a string or a list of strings.")
    plan = Plan(SEEDREAM, [px], prompt, fmt="jpeg", answer=answer)
    for i, ref in enumerate(refs):
        _seedream_reference(ref, i, plan)
    if len(refs) + outputs > SEEDREAM_MAX_TOTAL:
        raise _ark(
            f"The parameter `image` specified in the request is not valid: reference images plus generated "
            f"images must be at most {SEEDREAM_MAX_TOTAL}, got {len(refs)} + {outputs}."
        )
    return plan


def _seedream_reference(ref: str, i: int, plan: Plan) -> None:
    """A reference into ``plan``: an https URL as given (tests have no internet), a data URI decoded and checked."""
    if ref.startswith("https://") and len(ref) > len("https://"):
        plan.image_urls.append(ref)
        return
    m = re.fullmatch(r"data:image/([\w.+-]+);base64,(.*)", ref, re.DOTALL)
    if not m:
        raise _ark(
            f"The parameter `image[{i}]` specified in the request is not valid: an https URL or "
            f"data:image/<format>;base64,<data> is required."
        )
    fmt = m[1]
    if fmt not in SEEDREAM_REF_FORMATS:
        raise _ark(
            f"The parameter `image[{i}]` specified in the request is not valid: format {fmt!r} is not one "
            f"of {', '.join(SEEDREAM_REF_FORMATS)}."
        )
    try:
        data = base64.b64decode(m[2], validate=True)
    except (binascii.Error, ValueError):
        raise _ark(f"The parameter `image[{i}]` specified in the request is not valid: bad base64.") from None
    if len(data) > SEEDREAM_MAX_BYTES:
        raise _ark(f"The parameter `image[{i}]` specified in the request is not valid: larger than 30 MB.")
    found = image_size(data)
    if found is None and fmt not in ("heic", "heif"):  # Pillow reads the others; HEIC/HEIF pass unmeasured
        raise _ark(f"The parameter `image[{i}]` specified in the request is not valid: not a decodable image.")
    if found is HUGE:
        raise _ark(
            f"The parameter `image[{i}]` specified in the request is not valid: over {SEEDREAM_MAX_REF_PIXELS} pixels."
        )
    if found is not None:
        w, h = found[1]
        if w <= 14 or h <= 14:
            raise _ark(
                f"The parameter `image[{i}]` specified in the request is not valid: {w}x{h}, each side "
                f"must be more than 14 pixels."
            )
        if w * h > SEEDREAM_MAX_REF_PIXELS:
            raise _ark(
                f"The parameter `image[{i}]` specified in the request is not valid: {w}x{h} is over "
                f"{SEEDREAM_MAX_REF_PIXELS} pixels."
            )
        if w > 16 * h or h > 16 * w:
            raise _ark(
                f"The parameter `image[{i}]` specified in the request is not valid: {w}x{h}, width/height "
                f"must be within 1/16 and 16."
            )
    plan.images.append(data)
    plan.image_types.append(f"image/{fmt}")


_CHECKS = {NANO: _check_nano, GEMINI: _check_gemini, GPT: _check_gpt, SEEDREAM: _check_seedream}
