"""Every failure kind ends the status line with its one sentence; retries where they help; the bot stays up."""

from __future__ import annotations

import asyncio

import pytest

ERROR_CASES = [
    # (injected status, times, sentence fragment, requests expected)
    (401, 1, "API key was refused", 1),
    (403, 1, "credit is used up", 1),
    (413, 1, "too long", 1),
    (400, 1, "refused this request as invalid", 1),
    (404, 1, "wrong image service address", 1),
    (429, 9, "busy right now", 4),
    (500, 9, "busy or unavailable", 4),
    (502, 9, "busy or unavailable", 4),
    (503, 9, "busy or unavailable", 4),
    (504, 9, "took too long", 4),
    (524, 9, "took too long", 4),
]


@pytest.mark.parametrize(("status", "times", "sentence", "attempts"), ERROR_CASES)
async def test_http_errors(bot, harness, tg, img, status, times, sentence, attempts):
    img.fail_next(status, times=times)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a quiet harbour --ar 4:3 --1k")
    msg = await harness.status_says(chat["id"], sentence)
    assert msg["text"].startswith("⚠️")
    assert "a quiet harbour" in msg["text"]
    assert "request id" not in msg["text"] and "injected" not in msg["text"]  # no raw upstream body
    assert "Again" in str(msg["reply_markup"])
    assert len(img.requests) == attempts  # 4xx never retried; 429/5xx/504 retried 3 times
    assert harness.results(chat["id"]) == []


JUNK_CASES = [
    ("empty_data", "safety filter"),
    ("no_data", "safety filter"),
    ("neither_field", "safety filter"),
    ("not_json", "busy or unavailable"),
    ("url_not_image", "not an image"),
    ("url_404", "could not be downloaded"),
    ("b64_not_image", "not an image"),
    ("b64_invalid", "not an image"),
]


@pytest.mark.parametrize(("kind", "sentence"), JUNK_CASES)
async def test_junk_answers(bot, harness, img, kind, sentence):
    if kind == "b64_not_image" or kind == "b64_invalid":
        img.response_format = "b64_json"
    img.junk_next(kind, times=9)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a lamp --ar 1:1 --1k")
    await harness.status_says(chat["id"], sentence)
    assert harness.results(chat["id"]) == []


async def test_retries_then_success(bot, harness, img):
    img.fail_next(503, times=1)
    img.fail_next(429, times=1)
    img.fail_next(502, body="<html><body>Bad gateway</body></html>", times=1)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a windmill --ar 5:4 --2k")
    (upload,) = await harness.result(chat["id"])
    assert len(img.requests) == 4
    ((_, data, _),) = upload.files.values()
    assert data == img.image_for(img.requests[-1])


async def test_bot_keeps_working_after_a_failure(bot, harness, img):
    img.fail_next(401)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine one --ar 1:1 --1k")
    await harness.status_says(chat["id"], "API key was refused")
    harness.send(chat, user, "/imagine two --ar 1:1 --1k")
    await harness.result(chat["id"])


async def test_again_after_failure_retries_the_same_request(bot, harness, tg, img):
    img.fail_next(500, times=4)  # all four attempts of the first job
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a hill --ar 21:9 --1k")
    failed = await harness.status_says(chat["id"], "busy or unavailable")
    await harness.press(failed, "Again", user)
    await harness.result(chat["id"])
    assert img.requests[-1].body["aspect_ratio"] == "21:9"


async def test_mismatched_size_is_said_in_the_caption(bot, harness, img):
    img.size_next(1024, 1024)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine wide valley --ar 16:9 --4k")
    (upload,) = await harness.result(chat["id"])
    caption = upload.params["caption"]
    assert "asked 16:9 · 4K" in caption and "1024×1024 (1:1 · 1K)" in caption
    upscales = [
        b["text"] for row in upload.params["reply_markup"]["inline_keyboard"] for b in row if b["text"].startswith("⬆")
    ]
    assert upscales == ["⬆ 2K", "⬆ 4K"]  # a 1K came back: ⬆ starts from what was made, not from what was asked


async def test_telegram_refusing_every_upload_is_told(bot, harness, tg):
    tg.fail_next("sendPhoto", 400, "Bad Request: IMAGE_PROCESS_FAILED")
    tg.fail_next("sendDocument", 400, "Bad Request: wrong file", times=3)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine doomed upload --ar 1:1 --1k")
    await harness.status_says(chat["id"], "Telegram refused")


async def test_a_final_sentence_is_never_overwritten_by_progress(bot, harness, tg, img):
    """Fast failures race the first progress edit; the status line must still end with the failure."""
    img.fail_next(401, times=20)
    people = [harness.person() for _ in range(5)]
    for user, chat in people:
        for n in range(4):
            harness.send(chat, user, f"/imagine race {n} --ar 1:1 --1k")

    def finished() -> bool:
        return sum("API key was refused" in x for _, chat in people for x in harness.texts(chat["id"])) == 20

    await tg.wait_for(finished, 30, "20 failure sentences")
    await asyncio.sleep(0.5)  # any late progress edit would land now
    for _, chat in people:
        assert all("API key was refused" in x for x in harness.texts(chat["id"])), harness.texts(chat["id"])
