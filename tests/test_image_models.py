"""The four image models through the image client, over real HTTP against the fake that enforces each vendor's
rules: the exact request each model takes, exact sizes, answer shapes, references, `n`, and every model's own
refusals and error shapes mapped to the same failure kinds."""

from __future__ import annotations

import base64
import contextlib
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from bot import imagegen
from bot.imagegen import (
    AuthError,
    BadAnswerError,
    GenerationTimeout,
    ImageClient,
    InvalidRequestError,
    NoImageError,
)
from bot.imagemodels import PROFILES, TIERS, gpt_image_2, seedream_4_5
from bot.options import ImageRequest
from bot.texts import TEXTS
from tests.fakes.imageapi import GEMINI_JUNK_KINDS, FakeImageAPI, pixel_bomb_png
from tests.fakes.imagemodels import gpt_size_problem, seedream_size_problem

NANO, GEMINI, GPT, SEEDREAM = "nano-banana-2", "gemini-3-pro-image", "gpt-image-2", "doubao-seedream-4-5-251128"


@pytest.fixture
async def client(img: FakeImageAPI, tmp_path: Path) -> AsyncIterator[ImageClient]:
    made = ImageClient(
        img.base_url, img.api_key, {GPT: "gpt-image-2-ssvip"}, spool_dir=tmp_path / "spool", retries=0, timeout=20
    )
    made.open()
    yield made
    await made.aclose()


def _picture(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(out, fmt)
    return out.getvalue()


# ---- the profiles as data ----


def test_every_size_sent_keeps_the_vendors_rules():
    """The fake's rules are the vendor's pages: every WxH the bot sends for gpt-image-2 and Seedream passes them."""
    assert [k for k, (w, h) in gpt_image_2.PIXELS.items() if gpt_size_problem(f"{w}x{h}")] == []
    assert [k for k, (w, h) in seedream_4_5.PIXELS.items() if seedream_size_problem(f"{w}x{h}")] == []
    assert gpt_image_2.PIXELS[("16:9", "4K")] == (3840, 2160) and seedream_4_5.PIXELS[("21:9", "2K")] == (3136, 1344)


def test_the_four_profiles():
    assert list(PROFILES) == [NANO, GEMINI, GPT, SEEDREAM]
    assert [p.label for p in PROFILES.values()] == ["🍌 Banana 2", "🍌 Banana Pro", "GPT Image 2", "Seedream 4.5"]
    assert all(len(p.option("ratio").choices) == 10 for p in PROFILES.values())
    assert PROFILES[SEEDREAM].option("size").choices == ("2K", "4K")
    assert [o.name for o in PROFILES[GPT].options] == ["ratio", "size", "quality"]
    assert [p.max_outputs for p in PROFILES.values()] == [1, 1, 10, 1]
    assert [p.max_references() for p in PROFILES.values()] == [14, 11, 16, 14]
    assert PROFILES[SEEDREAM].max_references(3) == 12  # references + images made ≤ 15


def test_every_option_has_its_texts_in_every_language():
    keys = {o.label_key for p in PROFILES.values() for o in p.options}
    keys |= {f"{o.label_key}_{c}" for p in PROFILES.values() for o in p.options if o.choice_keys for c in o.choices}
    for lang, texts in TEXTS.items():
        assert sorted(keys - set(texts)) == [], lang


def test_credits_are_the_product_of_the_choices():
    def cost(model: str, **options: str) -> int:
        return ImageRequest("x", model=model, options=options).cost()

    assert [cost(NANO, size=s) for s in TIERS] == [1, 1, 2]
    assert [cost(GEMINI, size=s) for s in TIERS] == [2, 2, 4]
    assert [cost(GPT, quality=q) for q in ("low", "medium", "high")] == [1, 2, 4]
    assert cost(GPT, quality="high", size="4K") == 8
    assert [cost(SEEDREAM, size=s) for s in ("2K", "4K")] == [2, 3]
    assert ImageRequest("x", model=GPT, options={"quality": "high"}).cost({"high": 3}) == 3


def test_a_request_carries_model_and_options_as_one_json_value():
    request = ImageRequest("a fox", model=GPT, options={"ratio": "16:9", "size": "2K", "quality": "high"})
    assert json.loads(request.to_json()) == {
        "model": GPT,
        "options": {"ratio": "16:9", "size": "2K", "quality": "high"},
    }
    assert ImageRequest.from_json("a fox", request.to_json()) == request
    assert request.label == "16:9 · 2K · high" and request.expected_pixels == (2048, 1152)
    # what an older row holds, and a choice a model no longer offers, still make a request
    assert ImageRequest.from_json("p", None) == ImageRequest("p", "1:1", "1K")
    old = ImageRequest.from_json("p", json.dumps({"model": SEEDREAM, "options": {"size": "1K", "gone": "x"}}))
    assert dict(old.options) == {"ratio": "1:1", "size": "2K"}
    with pytest.raises(ValueError):
        ImageRequest("p", model=SEEDREAM, options={"size": "1K"})


def test_switching_model_keeps_the_closest_choice():
    nano = ImageRequest("p", "16:9", "1K")
    assert PROFILES[SEEDREAM].carry(nano.options) == {"ratio": "16:9", "size": "2K"}
    assert PROFILES[GPT].carry(nano.options) == {"ratio": "16:9", "size": "1K", "quality": "medium"}
    assert PROFILES[NANO].carry({"ratio": "21:9", "size": "4K", "quality": "high"}) == {"ratio": "21:9", "size": "4K"}


def test_size_made_is_the_models_own_tiers():
    seedream = ImageRequest("p", model=SEEDREAM, options={"ratio": "16:9", "size": "4K"})
    assert seedream.size_made(2848, 1600) == "2K" and seedream.size_made(1024, 1024) == "2K"
    gpt = ImageRequest("p", model=GPT, options={"ratio": "1:1", "size": "4K"})
    assert gpt.size_made(2048, 2048) == "2K" and gpt.matches(2880, 2880)


# ---- each model's request, exactly ----

GENERATIONS = [
    (
        NANO,
        {"ratio": "16:9", "size": "2K"},
        "/v1/images/generations",
        {"model": NANO, "prompt": "a fox", "n": 1, "aspect_ratio": "16:9", "size": "2K", "response_format": "url"},
        (2752, 1536),
        "PNG",
    ),
    (
        GEMINI,
        {"ratio": "21:9", "size": "1K"},
        f"/v1beta/models/{GEMINI}:generateContent",
        {
            "contents": [{"parts": [{"text": "a fox"}]}],
            "generationConfig": {
                "responseModalities": ["IMAGE"],
                "imageConfig": {"aspectRatio": "21:9", "imageSize": "1K"},
            },
        },
        (1584, 672),
        "PNG",
    ),
    (
        GPT,
        {"ratio": "9:16", "size": "2K", "quality": "high"},
        "/v1/images/generations",
        {"model": "gpt-image-2-ssvip", "prompt": "a fox", "n": 1, "size": "1152x2048", "quality": "high"},
        (1152, 2048),
        "PNG",
    ),
    (
        SEEDREAM,
        {"ratio": "4:3", "size": "2K"},
        "/v1/images/generations",
        {"model": SEEDREAM, "prompt": "a fox", "size": "2304x1728"},
        (2304, 1728),
        "JPEG",
    ),
]


@pytest.mark.parametrize(
    ("model", "options", "path", "body", "pixels", "fmt"), GENERATIONS, ids=[g[0] for g in GENERATIONS]
)
async def test_generation(img, client, model, options, path, body, pixels, fmt):
    request = ImageRequest("a fox", model=model, options=options)
    image = await client.generate(request)
    (rec,) = img.requests
    assert rec.status == 200 and rec.path == path and rec.body == body
    if model == GEMINI:
        assert rec.headers["x-goog-api-key"] == img.api_key and "Authorization" not in rec.headers
    else:
        assert rec.headers["Authorization"] == f"Bearer {img.api_key}" and "x-goog-api-key" not in rec.headers
    assert (image.width, image.height) == pixels == request.expected_pixels and request.matches(*pixels)
    assert image.format == fmt and image.path.read_bytes() == img.image_for(rec)
    await image.release()


async def test_seedream_url_answer_is_downloaded_at_once_without_the_key(img, client):
    image = await client.generate(ImageRequest("a fox", model=SEEDREAM, options={"size": "4K", "ratio": "16:9"}))
    assert (image.width, image.height) == (5504, 3040) and image.extension == "jpg"
    assert image.path.read_bytes() == img.image_for(img.requests[0])


EDITS = [  # (model, path, how the references travel)
    (NANO, "/v1/images/edits", "multipart"),
    (GEMINI, f"/v1beta/models/{GEMINI}:generateContent", "inline_data"),
    (GPT, "/v1/images/edits", "multipart"),
    (SEEDREAM, "/v1/images/generations", "data_uri"),
]


@pytest.mark.parametrize(("model", "path", "via"), EDITS, ids=[e[0] for e in EDITS])
async def test_edit_with_references(img, client, tmp_path, model, path, via):
    png, jpeg = _picture("PNG"), _picture("JPEG", (80, 120))
    on_disk = tmp_path / "ref.jpg"
    on_disk.write_bytes(jpeg)
    request = ImageRequest("make it night", model=model)
    image = await client.generate(request, [png, on_disk])
    (rec,) = img.requests
    assert rec.status == 200 and rec.path == path and rec.prompt == "make it night"
    assert rec.images == [png, jpeg]  # decoded the same way whatever way they travelled
    if via == "multipart":
        assert rec.headers["Content-Type"].startswith("multipart/form-data")
    else:  # streamed base64 in JSON with its exact length declared (a wrong one would not parse): not chunked
        assert "Transfer-Encoding" not in rec.headers and int(rec.headers["Content-Length"]) > 0
        assert rec.image_types == ["image/png", "image/jpeg"]
    if via == "data_uri":
        assert [u.split(",")[0] for u in rec.body["image"]] == ["data:image/png;base64", "data:image/jpeg;base64"]
    if via == "inline_data":
        assert [p["inline_data"]["mime_type"] for p in rec.body["contents"][0]["parts"][1:]] == [
            "image/png",
            "image/jpeg",
        ]
    assert (image.width, image.height) == request.expected_pixels
    await image.release()


async def test_references_are_base64_encoded_piece_by_piece(tmp_path):
    """A reference's base64 goes out in pieces of a few hundred KB, never the whole picture at once, and the body's
    declared length is exact."""
    data = bytes(range(256)) * 8000  # ~2 MB
    path = tmp_path / "big.png"
    path.write_bytes(b"\x89PNG" + data)
    with contextlib.ExitStack() as opened:
        picture = imagegen._open_picture(path, opened)
        body = imagegen._StreamedJson(
            {"image": [imagegen._PICTURES], "prompt": "p"}, [picture, picture], imagegen._data_uri
        )
        pieces = [piece async for piece in body._stream()]
    assert max(map(len, pieces)) <= 4 * imagegen.B64_READ // 3
    whole = b"".join(pieces)
    assert len(whole) == body.length
    sent = json.loads(whole)
    assert base64.b64decode(sent["image"][1].split(",", 1)[1]) == b"\x89PNG" + data


async def test_too_many_references_for_the_model_sends_nothing(img, client):
    with pytest.raises(InvalidRequestError, match="at most 11"):
        await client.generate(ImageRequest("x", model=GEMINI), [_picture("PNG")] * 12)
    assert img.requests == []


# ---- several images in one call ----


async def test_gpt_image_2_makes_three_images_in_one_call(img, client):
    request = ImageRequest("a fox", model=GPT, options={"ratio": "16:9", "size": "2K", "quality": "low"})
    images = await client.generate_many(request, 3)
    (rec,) = img.requests
    assert rec.body["n"] == 3 and len(images) == 3
    assert [i.path.read_bytes() for i in images] == img.images_for(rec)
    assert len({i.path.read_bytes() for i in images}) == 3
    assert all((i.width, i.height) == (2048, 1152) for i in images)
    for image in images:
        await image.release()


async def test_a_model_making_one_image_a_call_is_not_asked_for_more(img, client):
    with pytest.raises(ValueError, match="1 to 1"):
        await client.generate_many(ImageRequest("x", model=SEEDREAM), 2)
    with pytest.raises(ValueError, match="1 to 10"):
        await client.generate_many(ImageRequest("x", model=GPT), 11)
    assert img.requests == []


async def test_one_bad_image_of_several_fails_the_call_and_leaves_no_file(img, client, tmp_path):
    img.size_next(64, 64)
    img.image_next(b"<html>not an image</html>", "text/html")  # the first of three
    with pytest.raises(imagegen.NotAnImageError):
        await client.generate_many(ImageRequest("x", model=GPT), 3)
    assert list((tmp_path / "spool").iterdir()) == []


# ---- Gemini's refusals and error shapes ----


@pytest.mark.parametrize("kind", GEMINI_JUNK_KINDS)
async def test_gemini_refusals_are_the_no_image_kind(img, client, kind):
    img.junk_next(kind)
    with pytest.raises(NoImageError) as info:
        await client.generate(ImageRequest("x", model=GEMINI))
    assert info.value.kind == "no_image" and info.value.request_id
    if kind != "text_only":
        assert "SAFETY" in info.value.detail or "PROHIBITED" in info.value.detail or "blocked" in info.value.detail


@pytest.mark.parametrize(
    ("junk", "kind"),
    [
        ("empty_data", "no_image"),
        ("no_data", "no_image"),
        ("not_json", "upstream"),
        ("b64_invalid", "not_image"),
        ("b64_not_image", "not_image"),
        ("b64_not_string", "bad_answer"),
        ("data_not_list", "bad_answer"),
        ("item_not_object", "bad_answer"),
        ("deep_json", "bad_answer"),
        ("not_object", "bad_answer"),
    ],
)
async def test_gemini_odd_answers_map_to_the_same_kinds(img, client, junk, kind):
    img.junk_next(junk)
    with pytest.raises(imagegen.ImageGenError) as info:
        await client.generate(ImageRequest("x", model=GEMINI))
    assert info.value.kind == kind


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid"),
        (401, "auth"),
        (403, "auth"),
        (429, "rate_limited"),
        (500, "upstream"),
        (503, "upstream"),
        (504, "timeout"),
    ],
)
async def test_gemini_error_shape_maps_to_the_kinds(img, client, status, kind):
    img.fail_next(status)
    with pytest.raises(imagegen.ImageGenError) as info:
        await client.generate(ImageRequest("x", model=GEMINI))
    assert info.value.kind == kind and info.value.status == status
    assert "injected" in info.value.detail and "[" in info.value.detail  # Google's message and status kept


async def test_gemini_wrong_key_is_the_auth_kind(img, tmp_path):
    wrong = ImageClient(img.base_url, "sk-wrong", spool_dir=tmp_path, retries=0)
    try:
        with pytest.raises(AuthError, match="API key not valid"):
            await wrong.generate(ImageRequest("x", model=GEMINI))
    finally:
        await wrong.aclose()


async def test_gemini_retries_what_may_help(img, tmp_path):
    retrying = ImageClient(img.base_url, img.api_key, spool_dir=tmp_path, retries=2, backoff=0.01)
    img.fail_next(503)
    try:
        image = await retrying.generate(ImageRequest("x", model=GEMINI))
    finally:
        await retrying.aclose()
    assert len(img.requests) == 2 and image.width == 1024
    img.fail_next(400)
    again = ImageClient(img.base_url, img.api_key, spool_dir=tmp_path, retries=2, backoff=0.01)
    try:
        with pytest.raises(InvalidRequestError):
            await again.generate(ImageRequest("x", model=GEMINI))
    finally:
        await again.aclose()
    assert len(img.requests) == 3  # a 400 is not asked again


async def test_other_models_error_shapes(img, client):
    img.fail_next(400)
    with pytest.raises(InvalidRequestError, match=r"injected 400.*\[invalid_parameter\]"):
        await client.generate(ImageRequest("x", model=GPT))
    img.fail_next(403)
    with pytest.raises(imagegen.QuotaError):
        await client.generate(ImageRequest("x", model=SEEDREAM))
    img.junk_next("url_404")
    with pytest.raises(imagegen.DownloadError):
        await client.generate(ImageRequest("x", model=SEEDREAM))
    img.junk_next("empty_data")
    with pytest.raises(NoImageError):
        await client.generate(ImageRequest("x", model=GPT))


async def test_a_model_not_in_the_keys_group_is_a_service_error(tmp_path):
    async with FakeImageAPI(models=["nano-banana-2"]) as img:
        only_nano = ImageClient(img.base_url, img.api_key, spool_dir=tmp_path, retries=0)
        try:
            with pytest.raises(imagegen.UpstreamError, match="model_not_found"):
                await only_nano.generate(ImageRequest("x", model=SEEDREAM))
        finally:
            await only_nano.aclose()


# ---- every guarantee, for every model ----


@pytest.mark.parametrize("style", ["mime", "no_padding", "urlsafe", "data_url", "escaped_slashes"])
async def test_gemini_lenient_base64(img, client, style):
    img.b64_style = style
    image = await client.generate(ImageRequest("x", model=GEMINI))
    assert image.path.read_bytes() == img.image_for(img.requests[0])


@pytest.mark.parametrize("model", [GEMINI, GPT])
async def test_pixel_bomb_refused_unopened(img, client, model):
    img.image_next(pixel_bomb_png())
    with pytest.raises(imagegen.TooManyPixelsError):
        await client.generate(ImageRequest("x", model=model))


async def test_gemini_answer_over_the_cap_is_cut_off(img, tmp_path):
    capped = ImageClient(img.base_url, img.api_key, spool_dir=tmp_path, retries=0, max_image_bytes=1024 * 1024)
    img.stream_next("endless")
    try:
        with pytest.raises(BadAnswerError):
            await capped.generate(ImageRequest("x", model=GEMINI))
    finally:
        await capped.aclose()
    assert list(tmp_path.iterdir()) == []


async def test_one_deadline_per_attempt_for_gemini(img, tmp_path):
    short = ImageClient(img.base_url, img.api_key, spool_dir=tmp_path, retries=0, timeout=1.5)
    img.drip_interval = 0.3
    img.stream_next("drip")
    try:
        with pytest.raises(GenerationTimeout):
            await short.generate(ImageRequest("x", model=GEMINI))
    finally:
        await short.aclose()


async def test_a_size_other_than_asked_is_seen(img, client):
    img.size_next(1024, 1024)
    request = ImageRequest("x", model=SEEDREAM, options={"ratio": "16:9"})
    image = await client.generate(request)
    assert not request.matches(image.width, image.height) and request.size_made(image.width, image.height) == "2K"
