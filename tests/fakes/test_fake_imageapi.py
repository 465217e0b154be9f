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
    api.delay = 2
    with pytest.raises(httpx.TimeoutException):
        await client.post(f"{api.base_url}/v1/images/generations", json=body(), headers=AUTH, timeout=0.2)
    await api.wait_for(lambda: api.requests[0].aborted, timeout=1, what="abort recorded")
    assert api.requests[0].status is None and api.inflight == 0


async def test_concurrency_counters(api, client):
    api.delay = 0.2
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
    api.delay = 0.5
    answers = await asyncio.gather(*(generate(api, client) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 200, 429]
    assert next(a for a in answers if a.status_code == 429).json()["error"]["code"] == "rate_limit_exceeded"
