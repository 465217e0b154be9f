"""Issue 19's chat items: who am I (/id), /settings and /help that fit a phone, /history kept and paged, groups."""

from __future__ import annotations

import json
import time

from bot.models import Job, JobStatus, Origin
from bot.options import AspectRatio, ImageRequest, Resolution
from bot.store import make_store
from tests.rows import insert_job


def _scope(kind: str) -> str:
    return json.dumps({"type": kind}, sort_keys=True)


async def test_a_refused_user_is_told_their_id_and_id_answers_everyone(start_bot, harness, tg):
    await start_bot(allowed_user_ids="31")
    stranger = tg.user(32, "Stranger")
    chat = tg.private_chat(stranger)
    harness.send(chat, stranger, "/imagine let me in")
    refusal = await harness.reply_text(chat["id"], "this bot is private")
    assert refusal["text"].endswith("32")
    harness.send(chat, stranger, "/id")  # refused users may still ask: it is how they learn what to send
    await harness.reply_text(chat["id"], "Your user id: 32")
    club = tg.group(-100777, "Club")
    harness.send(club, stranger, "/id@imagine_test_bot")
    answer = await harness.reply_text(club["id"], "This chat's id: -100777")
    assert "Stranger's user id: 32" in answer["text"]
    harness.send(club, stranger, "/imagine still not allowed")  # /id opened nothing else
    harness.send(club, stranger, "/id")
    await tg.wait_for(lambda: sum("user id: 32" in x for x in harness.texts(club["id"])) == 2)
    assert not any("Generate" in str(m.get("reply_markup")) for m in tg.bot_messages(club["id"]))


async def test_id_is_in_every_command_menu(bot, tg):
    for kind in ("all_private_chats", "all_group_chats"):
        for lang in ("", "zh"):
            assert "id" in [c["command"] for c in tg.commands[(_scope(kind), lang)]]


async def test_settings_label_their_rows_save_every_tap_and_go_back_to_the_apps_language(bot, harness, tg):
    user, chat = harness.person(language_code="en")
    harness.send(chat, user, "/settings")
    panel = await harness.reply_text(chat["id"], "Your defaults")
    labels = [b["text"] for b in harness.buttons(panel)]
    assert not any("Done" in label for label in labels)  # every tap is saved: nothing to confirm
    assert "every tap is saved" in panel["text"].lower()
    for row in (
        "Shape: 1:1",
        "Resolution: 1K",
        "How many: ×1",
        "Original file with every image: off",
        "Language: the app's (English)",
    ):
        assert row in panel["text"]
    assert "✓ 📱 App's" in labels
    await harness.press(panel, "2K", user)
    await tg.wait_for(lambda: "Resolution: 2K" in tg.message(chat["id"], panel["message_id"])["text"])
    await harness.press(panel, "简体中文", user)
    chosen = await tg.wait_for(
        lambda: (m := tg.message(chat["id"], panel["message_id"])) and "默认设置" in m["text"] and m
    )
    assert "语言：简体中文" in chosen["text"] and "分辨率：2K" in chosen["text"]
    personal = json.dumps({"type": "chat", "chat_id": chat["id"]}, sort_keys=True)
    assert (personal, "") in tg.commands  # the chat's menu follows the choice
    await harness.press(panel, "跟随应用", user)
    back = await tg.wait_for(
        lambda: (m := tg.message(chat["id"], panel["message_id"])) and "Your defaults" in m["text"] and m
    )
    assert "Language: the app's (English)" in back["text"] and "✓ 📱 App's" in str(back["reply_markup"])
    assert (personal, "") not in tg.commands  # the menus by language code apply again
    harness.send(chat, user, "/help")
    await harness.reply_text(chat["id"], "How to use me")


async def test_help_is_one_screen_with_details_behind_buttons(bot, harness, tg):
    user, chat = harness.person()
    harness.send(chat, user, "/help")
    help_ = await harness.reply_text(chat["id"], "How to use me")
    assert len(help_["text"]) <= 600 and help_["text"].count("\n") <= 12  # one phone screen
    labels = [b["text"] for b in harness.buttons(help_)]
    assert labels == ["⚙️ Options", "🖌 Editing", "🔁 Result buttons", "📋 Commands"]
    await harness.press(help_, "Options", user)
    options = await tg.wait_for(
        lambda: (m := tg.message(chat["id"], help_["message_id"])) and "--ar 16:9" in m["text"] and m
    )
    assert "21:9" in options["text"] and "✓ ⚙️ Options" in str(options["reply_markup"])
    await harness.press(options, "Commands", user)
    await tg.wait_for(lambda: "/id" in tg.message(chat["id"], help_["message_id"])["text"])
    await harness.press(options, "Back", user)
    await tg.wait_for(lambda: tg.message(chat["id"], help_["message_id"])["text"] == help_["text"])
    stranger = tg.user(5151, "Stranger")  # the same for everyone: anyone may press
    answer = await harness.press(help_, "Editing", stranger)
    assert not answer.get("text")
    await tg.wait_for(
        lambda: (
            "Keep ratio" in tg.message(chat["id"], help_["message_id"])["text"]
            and "album" in tg.message(chat["id"], help_["message_id"])["text"]
        )
    )


async def _seed(settings, jobs: list[Job]) -> None:
    store = make_store(settings.database)
    await store.open()
    try:
        for job in jobs:
            await insert_job(store, job)
    finally:
        await store.close()


async def test_history_keeps_every_image_paged_with_failures_apart(start_bot, harness, tg):
    running = await start_bot(originals_max_age_hours=24)
    user, chat = harness.person()
    now = time.time()

    def job(job_id: str, prompt: str, status: JobStatus, age: float, **kwargs: object) -> Job:
        request = ImageRequest(prompt, AspectRatio("16:9"), Resolution("2K"))
        return Job(
            job_id,
            Origin(chat["id"], user["id"]),
            request,
            status=status,
            created_at=now - age,  # type: ignore[arg-type]
            finished_at=now - age,
            **kwargs,
        )

    made = [job(f"ok{n}", f"made {n}", JobStatus.DONE, 3600 - n, photo_file_id=f"file{n}") for n in range(5)]
    made.append(job("edit", "made as an edit", JobStatus.DONE, 600, photo_file_id="fe", references=("tg:abc",)))
    made.append(
        job("up", "made larger", JobStatus.DONE, 500, photo_file_id="fu", references=("job:ok0",), upscale_of="ok0")
    )
    failed = [job(f"bad{n}", f"failed {n}", JobStatus.FAILED, 100 - n, error_kind="timeout") for n in range(6)]
    failed.append(job("stop", "stopped", JobStatus.CANCELLED, 50))
    ancient = job("ancient", "too old to keep", JobStatus.DONE, 25 * 3600, photo_file_id="fa")
    await _seed(running.settings, [*made, *failed, ancient])

    harness.send(chat, user, "/history")
    listing = await harness.reply_text(chat["id"], "Your images here")
    text = listing["text"]
    assert "last 24 h: 7, page 1 of 2" in text
    assert "1. ⬆ upscale · 16:9 · 2K — made larger" in text and "2. 🖌 edit · 16:9 · 2K — made as an edit" in text
    assert "5. ✅ 16:9 · 2K — made 2" in text and "made 1" not in text
    assert "failed" not in text and "too old" not in text
    rows = listing["reply_markup"]["inline_keyboard"]
    assert [[b["text"] for b in row] for row in rows] == [
        [f"📤 {n}" for n in range(1, 6)],
        [f"🔁 {n}" for n in range(1, 6)],
        ["▶", "⚠️ Not made · 7"],
    ]

    await harness.press(listing, "▶", user)
    second = await tg.wait_for(
        lambda: (m := tg.message(chat["id"], listing["message_id"])) and "page 2 of 2" in m["text"] and m
    )
    assert "6. ✅ 16:9 · 2K — made 1" in second["text"] and "7. ✅ 16:9 · 2K — made 0" in second["text"]
    assert [b["text"] for b in harness.buttons(second)] == ["📤 6", "📤 7", "🔁 6", "🔁 7", "◀", "⚠️ Not made · 7"]
    stranger = tg.user(7171, "Stranger")
    assert "someone else" in (await harness.press(second, "◀", stranger))["text"]

    await harness.press(second, "Not made", user)
    others = await tg.wait_for(
        lambda: (m := tg.message(chat["id"], listing["message_id"])) and "Not made here" in m["text"] and m
    )
    assert "7, page 1 of 2" in others["text"]
    assert "1. ✖ 16:9 · 2K — stopped (cancelled)" in others["text"]
    assert "2. ⚠️ 16:9 · 2K — failed 5 (took too long)" in others["text"]
    assert [b["text"] for b in harness.buttons(others)] == [f"🔁 {n}" for n in range(1, 6)] + ["▶", "✅ Images · 7"]


async def test_a_group_is_spoken_to_as_a_group_and_each_request_names_its_requester(start_bot, harness, tg, img):
    await start_bot(user_daily_quota=20)
    alice, ada = tg.user(811, "Alice", username="alice_w"), tg.user(812, "Ada")
    group = tg.group(-100811, "Friends")
    tg.set_admins(group["id"], [ada["id"]])
    harness.send(group, alice, "/start")
    hello = await harness.reply_text(group["id"], "Hi, everyone")
    harness.send(group, alice, "/help")
    help_ = await harness.reply_text(group["id"], "How to use me")
    harness.send(group, alice, "/usage")
    usage = await harness.reply_text(group["id"], "Alice, your own credits")
    for text in (hello["text"], help_["text"], usage["text"]):  # no "this private chat", no personal figures
        assert "this private chat" not in text and "20" not in text and "credits left" not in text
    a_chat = tg.private_chat(alice)
    harness.send(a_chat, alice, "/start")  # privately, the figures are there
    assert "Today: 20 of 20 credits left" in (await harness.reply_text(a_chat["id"], "Hi!"))["text"]

    harness.send(group, alice, "/imagine a picnic")
    kb = await harness.keyboard(group["id"])
    assert kb["text"].startswith("🎨 for Alice: a picnic\n\n")
    img.delay = 10
    await harness.press(kb, "Generate", alice)
    await img.wait_for(lambda: img.inflight == 1)
    line = await harness.status_says(group["id"], "Generating")
    assert line["text"].endswith("\nfor Alice: a picnic")
    await harness.press(line, "Cancel", ada)  # an admin helps: the requester is told who
    told = await harness.reply_text(group["id"], "Ada cancelled Alice's request")
    assert told["text"] == "✖ Ada cancelled Alice's request: 1:1 · 1K · a picnic"
    await tg.wait_for(
        lambda: tg.message(group["id"], kb["message_id"])["text"] == "✖ Cancelled · 1:1 · 1K\nfor Alice: a picnic"
    )


async def test_in_a_group_a_refusal_for_credits_keeps_the_persons_figures_out(start_bot, harness, tg, img):
    await start_bot(user_daily_quota=1, quota_credits_4k=2)
    bea = tg.user(821, "Bea")
    group = tg.group(-100821, "Friends")
    harness.send(group, bea, "/imagine a comet --ar 1:1 --4k")
    told = await harness.reply_text(group["id"], "you don't have enough left today")
    assert told["text"].startswith("Bea, that needs 2 credits") and "left today" not in told["text"].split(".")[1]
    assert "0 left" not in told["text"] and "1 left" not in told["text"]
    assert img.requests == []
