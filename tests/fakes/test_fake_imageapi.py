"""Self-tests of the fake image API (tests/fakes/imageapi.py)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import zlib
from io import BytesIO

import httpx
import pytest
from PIL import Image

from tests.fakes.imageapi import B64_STYLES, SIZES, FakeImageAPI, pixel_bomb_png
from tests.fakes.imagemodels import gpt_size_problem, seedream_size_problem

KEY = "sk-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def api():
    fake = FakeImageAPI(api_key=KEY)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


def body(**extra):
    return {"model": "nano-banana-2", "prompt": "a cat", "n": 1, **extra}


async def generate(api, client, headers=AUTH, **extra):
    return await client.post(f"{api.base_url}/v1/images/generations", json=body(**extra), headers=headers)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(BytesIO(data)) as img:
        img.load()
        return img.size


def test_sizes_table():
    assert len(SIZES) == 30
    assert SIZES[("16:9", "4K")] == (5504, 3072)
    assert SIZES[("2:3", "1K")] == (848, 1264)


async def test_url_answer_downloads_png_of_table_size(api, client):
    r = await generate(api, client, aspect_ratio="16:9", size="2K")
    assert r.status_code == 200 and r.headers["X-Request-Id"]
    url = r.json()["data"][0]["url"]
    assert url.startswith(api.base_url + "/files/")
    img = await client.get(url)
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    assert png_size(img.content) == SIZES[("16:9", "2K")]
    rec = api.requests[0]
    assert api.image_for(rec) == img.content
    assert rec.status == 200 and not rec.aborted and rec.finished is not None
    assert rec.body["size"] == "2K" and rec.headers["Authorization"] == f"Bearer {KEY}"
    assert (await client.get(f"{api.base_url}/files/nope.png")).status_code == 404


async def test_b64_answer_and_distinct_bytes(api, client):
    a = await generate(api, client, response_format="b64_json")
    b = await generate(api, client, response_format="b64_json")
    da = base64.b64decode(a.json()["data"][0]["b64_json"])
    db = base64.b64decode(b.json()["data"][0]["b64_json"])
    assert png_size(da) == png_size(db) == SIZES[("1:1", "1K")]
    assert da != db and api.image_for(api.requests[1]) == db
    api.response_format = "url"  # forced, whatever the request asks
    assert "url" in (await generate(api, client, response_format="b64_json")).json()["data"][0]


async def test_wrong_key_401(api, client):
    r = await generate(api, client, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["code"] == "invalid_api_key"
    assert err["message"].endswith(f"(request id: {r.headers['X-Request-Id']})")
    assert api.requests[0].status == 401


@pytest.mark.parametrize(
    "extra, status",
    [
        ({"size": "4k"}, 400),
        ({"n": 2}, 400),
        ({"aspect_ratio": "7:5"}, 400),
        ({"response_format": "png"}, 400),
        ({"prompt": ""}, 400),
        ({"prompt": "x" * 32_001}, 413),
        ({"model": "other"}, 400),  # unknown to the gateway; a known model outside the group is 503
    ],
)
async def test_validation(api, client, extra, status):
    r = await generate(api, client, **extra)
    assert r.status_code == status, r.text
    assert "(request id: " in r.json()["error"]["message"]


async def test_fail_next_then_success(api, client):
    api.fail_next(429, headers={"Retry-After": "1"})
    api.fail_next(502, body="<html><body>502 Bad Gateway</body></html>")
    r = await generate(api, client)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert r.json()["error"]["message"].startswith("injected 429")
    r = await generate(api, client)
    assert r.status_code == 502 and r.headers["content-type"].startswith("text/html")
    assert (await generate(api, client)).status_code == 200


async def test_junk_kinds(api, client):
    async def answer(kind):
        api.junk_next(kind)
        r = await generate(api, client)
        assert r.status_code == 200
        return r

    assert (await answer("empty_data")).json()["data"] == []
    assert "data" not in (await answer("no_data")).json()
    assert (await answer("neither_field")).json()["data"] == [{"revised_prompt": "x"}]
    r = await answer("not_json")
    assert r.headers["content-type"].startswith("text/html") and r.text.startswith("<!DOCTYPE")
    page = await client.get((await answer("url_not_image")).json()["data"][0]["url"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert (await client.get((await answer("url_404")).json()["data"][0]["url"])).status_code == 404
    raw = base64.b64decode((await answer("b64_not_image")).json()["data"][0]["b64_json"])
    assert not raw.startswith(b"\x89PNG")
    with pytest.raises(binascii.Error):
        base64.b64decode((await answer("b64_invalid")).json()["data"][0]["b64_json"])
    assert all(api.image_for(rec) is None for rec in api.requests)


async def test_size_and_delay_overrides(api, client):
    api.size_next(640, 480)
    api.delay_next(0.3)
    r = await generate(api, client, response_format="b64_json")
    assert png_size(base64.b64decode(r.json()["data"][0]["b64_json"])) == (640, 480)
    rec = api.requests[0]
    assert rec.finished - rec.started >= 0.3


async def test_edits_multipart_records_images(api, client):
    pics = [b"\x89PNG first", b"\xff\xd8\xff second"]
    files = [("image", (f"{i}.png", pic, "image/png")) for i, pic in enumerate(pics)]
    data = {"model": "nano-banana-2", "prompt": "merge", "n": "1", "aspect_ratio": "3:4", "response_format": "url"}
    r = await client.post(f"{api.base_url}/v1/images/edits", data=data, files=files, headers=AUTH)
    assert r.status_code == 200, r.text
    rec = api.requests[0]
    assert rec.path == "/v1/images/edits" and rec.images == pics and rec.body == data
    assert png_size((await client.get(r.json()["data"][0]["url"])).content) == SIZES[("3:4", "1K")]
    r = await client.post(f"{api.base_url}/v1/images/edits", data=data, files=files * 8, headers=AUTH)
    assert r.status_code == 400  # 16 images


async def test_client_abort_is_recorded(api, client):
    api.delay = 10  # still answering long after the client gave up
    with pytest.raises(httpx.TimeoutException):
        await client.post(f"{api.base_url}/v1/images/generations", json=body(), headers=AUTH, timeout=0.2)
    await api.wait_for(lambda: api.requests[0].aborted, timeout=10, what="abort recorded")
    assert api.requests[0].status is None and api.inflight == 0


async def test_concurrency_counters(api, client):
    api.delay = 2.0  # long enough for the three to overlap on a loaded machine
    rs = await asyncio.gather(*(generate(api, client) for _ in range(3)))
    assert [r.status_code for r in rs] == [200] * 3
    assert api.max_inflight == 3 and api.inflight == 0


async def test_noise_2k_is_big(api, client):
    api.noise = True
    r = await generate(api, client, size="2K")
    data = (await client.get(r.json()["data"][0]["url"])).content
    assert len(data) > 10_000_000
    assert png_size(data) == SIZES[("1:1", "2K")]


@pytest.mark.parametrize("style", B64_STYLES)
async def test_b64_styles_are_all_valid_base64(api, client, style):
    api.b64_style = style
    r = await generate(api, client, response_format="b64_json")
    text = r.json()["data"][0]["b64_json"]
    if style == "data_url":
        text = text.split(",", 1)[1]
    data = base64.b64decode(text.translate(str.maketrans("-_", "+/", " \n")) + "==", validate=False)
    assert data == api.image_for(api.requests[-1])


async def test_hostile_streams(api, client):
    api.stream_next("big_b64", size=1_000_000)
    r = await generate(api, client)
    assert len(base64.b64decode(r.json()["data"][0]["b64_json"])) == 1_000_000
    api.stream_next("endless")
    async with client.stream("POST", f"{api.base_url}/v1/images/generations", json=body(), headers=AUTH) as r:
        received = 0
        async for chunk in r.aiter_bytes():
            received += len(chunk)
            if received > 2_000_000:
                break
    assert received > 2_000_000


def test_pixel_bomb_is_a_small_valid_png():
    data = pixel_bomb_png()
    assert len(data) < 64 * 1024
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert (int.from_bytes(data[16:20]), int.from_bytes(data[20:24])) == (12_000, 12_000)
    assert len(zlib.decompress(data[41:-16])) == 12_000 * 1501  # every row, one filter byte each


async def test_key_limit_holds_requests_over_it_or_refuses_them(api, client):
    api.key_limit = 1
    api.delay_next(0.5)
    first = asyncio.create_task(generate(api, client))
    await api.wait_for(lambda: api.inflight == 1)
    second = await generate(api, client)  # waited for the slot, so it ends after the first
    assert (await first).status_code == second.status_code == 200
    assert api.requests[1].finished >= api.requests[0].finished

    api.key_limit, api.key_limit_refuses = 2, True
    api.delay = 3.0  # the three overlap even on a loaded machine
    answers = await asyncio.gather(*(generate(api, client) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 200, 429]
    assert next(a for a in answers if a.status_code == 429).json()["error"]["code"] == "rate_limit_exceeded"


# ---- the other three models on the same key (MODELS.md) --------------------------------------

GKEY = {"x-goog-api-key": KEY}
GEMINI_PATH = "/v1beta/models/gemini-3-pro-image:generateContent"
SEEDREAM = "doubao-seedream-4-5-251128"
#: The sizes MODELS.md says the bot sends: every one must pass the vendor's rules the fake enforces.
GPT_TABLE = """1024x1024 2048x2048 2880x2880 1024x1536 1360x2048 2352x3520 1536x1024 2048x1360 3520x2352 880x1168
1536x2048 2496x3312 1168x880 2048x1536 3312x2496 912x1136 1632x2048 2576x3216 1136x912 2048x1632 3216x2576 768x1360
1152x2048 2160x3840 1360x768 2048x1152 3840x2160 1536x656 2048x880 3840x1648""".split()
SEEDREAM_TABLE = """2048x2048 4096x4096 1664x2496 3328x4992 2496x1664 4992x3328 1728x2304 3520x4704 2304x1728
4704x3520 1856x2320 3648x4560 2320x1856 4560x3648 1600x2848 3040x5504 2848x1600 5504x3040 3136x1344
6240x2656""".split()


def picture(width: int = 64, height: int = 48, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    out = BytesIO()
    Image.new(mode, (width, height), (10, 200, 30) if mode == "RGB" else (10, 200, 30, 128)).save(out, fmt)
    return out.getvalue()


def decoded(data: bytes) -> tuple[str, tuple[int, int]]:
    with Image.open(BytesIO(data)) as img:
        img.load()
        return img.format, img.size


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def gemini_body(prompt="a cat", refs=(), modalities=("IMAGE",), **image_config):
    parts = [{"text": prompt}] + [{"inline_data": {"mime_type": "image/png", "data": b64(r)}} for r in refs]
    config = {"responseModalities": list(modalities), "imageConfig": image_config}
    return {"contents": [{"parts": parts}], "generationConfig": config}


async def gemini(api, client, body=None, headers=GKEY, path=GEMINI_PATH):
    return await client.post(api.base_url + path, json=body or gemini_body(), headers=headers)


def gemini_image(r) -> bytes:
    (candidate,) = r.json()["candidates"]
    assert candidate["finishReason"] == "STOP"
    (inline,) = [p["inlineData"] for p in candidate["content"]["parts"] if "inlineData" in p]
    assert inline["mimeType"] == "image/png"
    return base64.b64decode(inline["data"])


async def gpt(api, client, model="gpt-image-2", **fields):
    return await client.post(
        f"{api.base_url}/v1/images/generations", headers=AUTH, json={"model": model, "prompt": "a cat", **fields}
    )


async def seedream(api, client, **fields):
    return await client.post(
        f"{api.base_url}/v1/images/generations", headers=AUTH, json={"model": SEEDREAM, "prompt": "a cat", **fields}
    )


def assert_google_error(r, status: int, name: str) -> None:
    assert r.status_code == status, r.text
    assert set(r.json()["error"]) == {"code", "message", "status"}
    assert r.json()["error"]["code"] == status and r.json()["error"]["status"] == name


def assert_openai_error(r, param: str | None, code: str = "invalid_value") -> None:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


def assert_gateway_error(r, status: int = 400, code: str = "InvalidParameter") -> None:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "code"} and error["code"] == code
    assert error["message"].endswith(f"(request id: {r.headers['X-Request-Id']})")


async def test_gemini_answers_inline_png_of_the_table_size_and_records_references(api, client):
    refs = [picture(), picture(32, 32, "JPEG")]
    body = gemini_body("poster with the word SALE", refs, ("TEXT", "IMAGE"), aspectRatio="16:9", imageSize="2K")
    r = await gemini(api, client, body)
    assert r.status_code == 200, r.text
    parts = r.json()["candidates"][0]["content"]["parts"]
    assert "text" in parts[0] and r.json()["usageMetadata"]["candidatesTokenCount"] == 1210
    assert png_size(gemini_image(r)) == SIZES[("16:9", "2K")]
    rec = api.requests[0]
    assert (rec.model, rec.path, rec.prompt) == ("gemini-3-pro-image", GEMINI_PATH, "poster with the word SALE")
    assert rec.images == refs and rec.image_types == ["image/png", "image/png"]
    assert rec.body == body and api.image_for(rec) == gemini_image(r)
    r = await gemini(api, client, gemini_body(imageSize="4K"))  # no TEXT asked: the image alone
    assert [list(p) for p in r.json()["candidates"][0]["content"]["parts"]] == [["inlineData"]]
    assert png_size(gemini_image(r)) == SIZES[("1:1", "4K")]
    assert r.json()["usageMetadata"]["candidatesTokenCount"] == 2000


async def test_gemini_reads_snake_case_too(api, client):
    body = {
        "contents": [
            {"parts": [{"text": "a cat"}, {"inlineData": {"mimeType": "image/webp", "data": b64(picture(fmt="WEBP"))}}]}
        ],
        "generation_config": {"response_modalities": ["IMAGE"], "image_config": {"aspect_ratio": "9:16"}},
    }
    r = await gemini(api, client, body)
    assert png_size(gemini_image(r)) == SIZES[("9:16", "1K")]
    assert api.requests[0].image_types == ["image/webp"]


@pytest.mark.parametrize("headers", [{}, {"x-goog-api-key": "wrong"}, AUTH])
async def test_gemini_wants_its_key_header(api, client, headers):
    assert_google_error(await gemini(api, client, headers=headers), 401, "UNAUTHENTICATED")


def _gemini_breaks():
    ok = gemini_body()
    refs12 = gemini_body(refs=[picture()] * 12)
    image_first = gemini_body(refs=[picture()])
    image_first["contents"][0]["parts"].reverse()
    bad_b64 = gemini_body(refs=[b""])
    bad_b64["contents"][0]["parts"][1]["inline_data"]["data"] = "@@@"
    gif = gemini_body(refs=[picture(fmt="GIF")])
    gif["contents"][0]["parts"][1]["inline_data"]["mime_type"] = "image/gif"
    return {
        "ratio 7:5": gemini_body(aspectRatio="7:5"),
        "lower-case 4k": gemini_body(imageSize="4k"),
        "8K": gemini_body(imageSize="8K"),
        "TEXT only": gemini_body(modalities=("TEXT",)),
        "no generationConfig": {"contents": ok["contents"]},
        "12 references": refs12,
        "image before text": image_first,
        "bad base64": bad_b64,
        "not an image": gemini_body(refs=[b"\x89PNG but not really"]),
        "gif": gif,
        "unknown field": {**ok, "size": "2K"},
        "two candidates": {**ok, "generationConfig": {**ok["generationConfig"], "candidateCount": 2}},
        "no contents": {"generationConfig": ok["generationConfig"]},
    }


@pytest.mark.parametrize("name", list(_gemini_breaks()))
async def test_gemini_rule_breaks_get_invalid_argument(api, client, name):
    r = await gemini(api, client, _gemini_breaks()[name])
    assert_google_error(r, 400, "INVALID_ARGUMENT")
    assert api.image_for(api.requests[0]) is None


async def test_gemini_eleven_references_are_the_most(api, client):
    assert (await gemini(api, client, gemini_body(refs=[picture()] * 11))).status_code == 200
    assert len(api.requests[0].images) == 11


@pytest.mark.parametrize(
    "kind, finish",
    [
        ("safety", "SAFETY"),
        ("image_safety", "IMAGE_SAFETY"),
        ("prohibited_content", "PROHIBITED_CONTENT"),
        ("text_only", "STOP"),
    ],
)
async def test_gemini_candidate_without_image(api, client, kind, finish):
    api.junk_next(kind)
    r = await gemini(api, client)
    assert r.status_code == 200
    (candidate,) = r.json()["candidates"]
    assert candidate["finishReason"] == finish
    assert not any("inlineData" in p for p in candidate.get("content", {}).get("parts", []))
    assert api.image_for(api.requests[0]) is None
    assert (await gemini(api, client)).status_code == 200 and gemini_image(await gemini(api, client))


async def test_gemini_blocked_prompt_has_no_candidates(api, client):
    api.junk_next("prompt_blocked")
    r = await gemini(api, client)
    assert r.status_code == 200 and "candidates" not in r.json()
    assert r.json()["promptFeedback"]["blockReason"] == "SAFETY"


@pytest.mark.parametrize("status, name", [(429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL"), (503, "UNAVAILABLE")])
async def test_gemini_injected_errors_in_google_shape(api, client, status, name):
    api.fail_next(status)
    assert_google_error(await gemini(api, client), status, name)


async def test_gemini_overrides_and_misuse(api, client):
    api.size_next(640, 480)
    assert png_size(gemini_image(await gemini(api, client))) == (640, 480)
    api.image_next(b"\xff\xd8\xff not really", "image/jpeg")
    inline = (await gemini(api, client)).json()["candidates"][0]["content"]["parts"][0]["inlineData"]
    assert inline == {"mimeType": "image/jpeg", "data": b64(b"\xff\xd8\xff not really")}
    api.stream_next("big_b64", size=300_000)
    r = await gemini(api, client)
    assert len(base64.b64decode(r.json()["candidates"][0]["content"]["parts"][0]["inlineData"]["data"])) == 300_000
    api.junk_next("url_404")  # Gemini answers inline data: a url junk is a mistake in the test
    assert (await gemini(api, client)).status_code == 418
    api.junk_next("safety")  # and a Gemini refusal is a mistake on the OpenAI-style routes
    assert (await generate(api, client)).status_code == 418


async def test_gemini_routes_and_models(api, client):
    r = await gemini(api, client, path="/v1beta/models/gemini-3-pro-image:streamGenerateContent")
    assert_google_error(r, 404, "NOT_FOUND")
    r = await gemini(api, client, path="/v1beta/models/nano-banana-2:generateContent")
    assert_google_error(r, 400, "INVALID_ARGUMENT")
    r = await client.post(
        f"{api.base_url}/v1/images/generations",
        headers=AUTH,
        json={"model": "gemini-3-pro-image", "prompt": "a cat", "n": 1},
    )
    assert_gateway_error(r, 400, "model_not_found")
    api.models = {"nano-banana-2"}  # the key's group lacks the others: the gateway has no channel
    assert_google_error(await gemini(api, client), 503, "UNAVAILABLE")
    assert_gateway_error(await gpt(api, client), 503, "model_not_found")


@pytest.mark.parametrize("model", ["gpt-image-2", "gpt-image-2-ssvip"])
async def test_gpt_image_2_b64_png_of_the_exact_size(api, client, model):
    r = await gpt(api, client, model, size="1536x1024", quality="high")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["size"], answer["quality"], answer["output_format"]) == ("1536x1024", "high", "png")
    (item,) = answer["data"]
    assert png_size(base64.b64decode(item["b64_json"])) == (1536, 1024)
    assert api.requests[0].model == model and api.requests[0].prompt == "a cat"


async def test_gpt_image_2_n_3_gives_three_distinct_images(api, client):
    r = await gpt(api, client, n=3, size="1024x1024")
    images = [base64.b64decode(item["b64_json"]) for item in r.json()["data"]]
    assert len(images) == 3 and len(set(images)) == 3
    assert all(png_size(i) == (1024, 1024) for i in images)
    assert api.images_for(api.requests[0]) == images and api.image_for(api.requests[0]) == images[0]


@pytest.mark.parametrize("fmt, pil", [("jpeg", "JPEG"), ("webp", "WEBP")])
async def test_gpt_image_2_output_formats_and_url_answers(api, client, fmt, pil):
    r = await gpt(api, client, size="1024x640", output_format=fmt, output_compression=80, response_format="url", n=2)
    urls = [item["url"] for item in r.json()["data"]]
    assert all(u.endswith("." + fmt) for u in urls) and len(set(urls)) == 2
    for url in urls:
        got = await client.get(url)
        assert got.headers["content-type"] == f"image/{fmt}"
        assert decoded(got.content) == (pil, (1024, 640))


async def test_gpt_image_2_auto_size(api, client):
    r = await gpt(api, client)
    assert png_size(base64.b64decode(r.json()["data"][0]["b64_json"])) == (1024, 1024)


@pytest.mark.parametrize(
    "size", ["1000x1000", "4000x2000", "3840x1008", "768x768", "3840x2400", "1024", "1024X1024", "0x1024", "big"]
)
async def test_gpt_image_2_size_rules(api, client, size):
    assert_openai_error(await gpt(api, client, size=size), "size")


@pytest.mark.parametrize("size", ["1024x640", "3840x2160", "3840x1280", "1280x3840", "2880x2880"])
async def test_gpt_image_2_size_rule_edges_pass(api, client, size):
    r = await gpt(api, client, size=size, response_format="url")
    got = await client.get(r.json()["data"][0]["url"])
    assert png_size(got.content) == tuple(int(v) for v in size.split("x"))


def test_models_md_sizes_keep_the_vendor_rules():
    assert len(GPT_TABLE) == 30 and len(SEEDREAM_TABLE) == 20
    assert [s for s in GPT_TABLE if gpt_size_problem(s)] == []
    assert [s for s in SEEDREAM_TABLE if seedream_size_problem(s)] == []


@pytest.mark.parametrize(
    "fields, param, code",
    [
        ({"quality": "ultra"}, "quality", "invalid_value"),
        ({"n": 0}, "n", "integer_below_min_value"),
        ({"n": 11}, "n", "integer_above_max_value"),
        ({"n": True}, "n", "invalid_type"),
        ({"output_format": "gif"}, "output_format", "invalid_value"),
        ({"output_compression": 50}, "output_compression", "invalid_value"),  # png has no compression
        ({"moderation": "none"}, "moderation", "invalid_value"),
        ({"response_format": "png"}, "response_format", "invalid_value"),
        ({"aspect_ratio": "16:9"}, "aspect_ratio", "unknown_parameter"),
        ({"prompt": ""}, "prompt", "missing_required_parameter"),
        ({"prompt": "x" * 32_001}, "prompt", "string_above_max_length"),
    ],
)
async def test_gpt_image_2_parameter_rules(api, client, fields, param, code):
    assert_openai_error(await gpt(api, client, **fields), param, code)


async def gpt_edit(api, client, pictures, mask=None, name="image", **fields):
    files = [(name, (f"{i}.png", p, "image/png")) for i, p in enumerate(pictures)]
    if mask is not None:
        files.append(("mask", ("mask.png", mask, "image/png")))
    data = {"model": "gpt-image-2", "prompt": "merge", "size": "1024x1536", **fields}
    return await client.post(f"{api.base_url}/v1/images/edits", data=data, files=files, headers=AUTH)


async def test_gpt_image_2_edits_records_pictures_and_mask(api, client):
    pics = [picture(300, 200), picture(50, 50, "JPEG"), picture(40, 40, "WEBP")]
    mask = picture(300, 200, mode="RGBA")
    r = await gpt_edit(api, client, pics, mask, n="2", quality="low")
    assert r.status_code == 200, r.text
    assert [png_size(base64.b64decode(i["b64_json"])) for i in r.json()["data"]] == [(1024, 1536)] * 2
    rec = api.requests[0]
    assert rec.images == pics and rec.mask == mask and rec.body["n"] == "2" and rec.model == "gpt-image-2"
    assert (await gpt_edit(api, client, [picture()] * 16)).status_code == 200


@pytest.mark.parametrize(
    "case, param",
    [
        ("17 pictures", "image"),
        ("none", "image"),
        ("not an image", "image"),
        ("mask without alpha", "mask"),
        ("mask of another size", "mask"),
        ("image[]", "image[]"),
    ],
)
async def test_gpt_image_2_edit_rules(api, client, case, param):
    pics, mask, name = [picture(300, 200)], None, "image"
    if case == "17 pictures":
        pics = [picture()] * 17
    elif case == "none":
        pics, mask = [], picture(300, 200, mode="RGBA")
    elif case == "not an image":
        pics = [b"\x89PNG junk"]
    elif case == "mask without alpha":
        mask = picture(300, 200)
    elif case == "mask of another size":
        mask = picture(200, 300, mode="RGBA")
    else:
        name = "image[]"
    r = await gpt_edit(api, client, pics, mask, name)
    assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text


async def test_gpt_image_2_injected_error_in_openai_shape(api, client):
    api.fail_next(500)
    r = await gpt(api, client)
    assert r.status_code == 500 and set(r.json()["error"]) == {"message", "type", "param", "code"}


async def test_seedream_answers_a_jpeg_url_of_the_exact_size(api, client):
    r = await seedream(api, client, size="2848x1600", watermark=False)
    assert r.status_code == 200, r.text
    (item,) = r.json()["data"]
    assert item["size"] == "2848x1600" and item["url"].endswith(".jpeg") and r.json()["model"] == SEEDREAM
    got = await client.get(item["url"])
    assert got.headers["content-type"] == "image/jpeg" and got.content[:3] == b"\xff\xd8\xff"
    assert decoded(got.content) == ("JPEG", (2848, 1600)) and api.image_for(api.requests[0]) == got.content
    r = await seedream(api, client, size="1600x2848", response_format="b64_json")
    assert decoded(base64.b64decode(r.json()["data"][0]["b64_json"])) == ("JPEG", (1600, 2848))


@pytest.mark.parametrize(
    "size, px", [("2K", (2048, 2048)), ("4K", (4096, 4096)), (None, (2048, 2048)), ("2560x1440", (2560, 1440))]
)
async def test_seedream_named_and_edge_sizes(api, client, size, px):
    r = await seedream(api, client, response_format="b64_json", **({} if size is None else {"size": size}))
    assert decoded(base64.b64decode(r.json()["data"][0]["b64_json"])) == ("JPEG", px)


@pytest.mark.parametrize("size", ["2048x1024", "1024x1024", "4097x4096", "8192x480", "480x8192", "1K", "2k", "big"])
async def test_seedream_size_rules(api, client, size):
    assert_gateway_error(await seedream(api, client, size=size))


def data_uri(data: bytes, fmt: str = "png") -> str:
    return f"data:image/{fmt};base64,{b64(data)}"


async def test_seedream_records_data_uri_references(api, client):
    refs = [picture(100, 80), picture(64, 64, "JPEG")]
    image = [data_uri(refs[0]), "https://example.com/ref.png", data_uri(refs[1], "jpeg")]
    r = await seedream(api, client, size="2048x2048", image=image)
    assert r.status_code == 200, r.text
    rec = api.requests[0]
    assert rec.images == refs and rec.image_types == ["image/png", "image/jpeg"]
    assert rec.image_urls == ["https://example.com/ref.png"] and rec.body["image"] == image
    assert (await seedream(api, client, image=data_uri(refs[0]))).status_code == 200  # one string
    assert api.requests[1].images == refs[:1]
    assert (await seedream(api, client, image=[data_uri(refs[0])] * 14)).status_code == 200  # 14 + 1 output


@pytest.mark.parametrize(
    "case",
    [
        "14 px",
        "ratio 1:17",
        "over 36 Mpx",
        "pixel bomb",
        "over 30 MB",
        "http",
        "svg",
        "not base64",
        "not an image",
        "15 references",
        "not a string",
    ],
)
async def test_seedream_reference_rules(api, client, case):
    image: object = {
        "14 px": data_uri(picture(14, 100)),
        "ratio 1:17": data_uri(picture(16, 300)),
        "over 36 Mpx": data_uri(pixel_bomb_png(6001, 6000)),
        "pixel bomb": data_uri(pixel_bomb_png(14_000, 14_000)),  # over Pillow's own limit too
        "http": "http://example.com/a.png",
        "svg": data_uri(b"<svg/>", "svg+xml"),
        "not base64": "data:image/png;base64,@@@",
        "not an image": data_uri(b"\x89PNG junk"),
        "15 references": ["https://example.com/a.png"] * 15,
        "not a string": [{"url": "https://example.com/a.png"}],
    }.get(case) or data_uri(bytes(30 * 1024 * 1024 + 1))
    assert_gateway_error(await seedream(api, client, image=image))


@pytest.mark.parametrize(
    "fields",
    [
        {"n": 1},
        {"response_format": "png"},
        {"stream": True},
        {"prompt": " "},
        {"watermark": "no"},
        {"sequential_image_generation": "on"},
    ],
)
async def test_seedream_parameter_rules(api, client, fields):
    assert_gateway_error(await seedream(api, client, **fields))


async def test_seedream_has_no_edits_endpoint(api, client):
    data = {"model": SEEDREAM, "prompt": "merge"}
    r = await client.post(
        f"{api.base_url}/v1/images/edits", data=data, files=[("image", ("a.png", picture()))], headers=AUTH
    )
    assert_gateway_error(r, 404, "unsupported_endpoint")
    r = await client.post(f"{api.base_url}/v1/images/edits", json=data, headers=AUTH)  # JSON there too
    assert_gateway_error(r, 404, "unsupported_endpoint")


@pytest.mark.parametrize("send", ["nano", "gpt", "seedream"])
async def test_bearer_routes_refuse_a_wrong_key(api, client, send):
    headers = {"Authorization": "Bearer wrong"}
    json = {
        "nano": body(),
        "gpt": {"model": "gpt-image-2", "prompt": "x"},
        "seedream": {"model": SEEDREAM, "prompt": "x"},
    }[send]
    r = await client.post(f"{api.base_url}/v1/images/generations", json=json, headers=headers)
    assert_gateway_error(r, 401, "invalid_api_key")


async def test_size_next_and_response_format_apply_to_every_model(api, client):
    api.size_next(800, 600, times=3)
    r = await seedream(api, client, response_format="b64_json")
    assert decoded(base64.b64decode(r.json()["data"][0]["b64_json"])) == ("JPEG", (800, 600))
    r = await gpt(api, client, n=2, output_format="webp")
    assert [decoded(base64.b64decode(i["b64_json"])) for i in r.json()["data"]] == [("WEBP", (800, 600))] * 2
    api.response_format = "url"
    assert "url" in (await gpt(api, client)).json()["data"][0]
