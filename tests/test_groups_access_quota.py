"""Groups, forum topics, channels, allow-lists, blocking, daily credits, admin figures and languages."""

from __future__ import annotations

import asyncio
import json
import string
from datetime import UTC, datetime

import pytest

from bot.handlers.admin import stats_text
from bot.models import Job, JobStatus, Origin
from bot.options import AspectRatio, ImageRequest, Resolution
from bot.quota import Limit, Quota, QuotaExceeded
from bot.store import make_store
from bot.texts import EN, TEXTS, ZH, t
from tests.rows import settled


async def test_group_command_with_bot_name_and_foreign_presses(bot, harness, tg, img):
    alice, bob, admin = tg.user(11, "Alice"), tg.user(12, "Bob"), tg.user(13, "Admin")
    group = tg.group(-100200, "Friends")
    tg.set_admins(group["id"], [admin["id"]])
    harness.send(group, alice, "/imagine@imagine_test_bot a picnic")
    kb = await harness.keyboard(group["id"])
    answer = await harness.press(kb, "16:9", bob)
    assert "someone else" in answer["text"]
    await harness.press(kb, "16:9", admin)  # a chat admin may help
    await tg.wait_for(lambda: "✓ 16:9" in str(tg.message(group["id"], kb["message_id"])["reply_markup"]))
    await harness.press(kb, "Generate", alice)
    (upload,) = await harness.result(group["id"])
    photo = next(m for m in tg.bot_messages(group["id"]) if m.get("photo"))
    answer = await harness.press(photo, "Again", bob)
    assert "someone else" in answer["text"]
    assert len(img.requests) == 1


async def test_forum_topic_answers_stay_in_the_topic(bot, harness, tg, img):
    user = tg.user(21, "Topic user")
    forum = tg.group(-100300, "Forum", is_forum=True)
    harness.send(forum, user, "/imagine a lantern --ar 3:4", message_thread_id=77)
    kb = await harness.keyboard(forum["id"])
    assert kb.get("message_thread_id") == 77
    await harness.press(kb, "Generate", user)
    (upload,) = await harness.result(forum["id"])
    assert int(upload.params["message_thread_id"]) == 77
    sends = [
        c
        for c in tg.calls
        if c.method in ("sendMessage", "sendPhoto", "sendChatAction") and int(c.params.get("chat_id", 0)) == forum["id"]
    ]
    assert sends and all(int(c.params.get("message_thread_id", 0)) == 77 for c in sends)


async def test_reply_in_plain_supergroup_does_not_send_a_thread_id(bot, harness, tg, img):
    user = tg.user(22, "Replier")
    group = tg.group(-100301, "Plain")
    quoted = harness.send(group, user, "a harbour at dawn")
    harness.send(group, user, "/imagine --ar 1:1 --1k", reply_to=quoted)
    (upload,) = await harness.result(group["id"])
    assert "message_thread_id" not in upload.params
    assert img.requests[0].body["prompt"] == "a harbour at dawn"


async def test_channel_post_generates_into_the_channel(start_bot, harness, tg, img):
    running = await start_bot(chat_daily_quota=5)
    channel = tg.channel(-100400, "Art channel")
    tg.send_text(channel, None, "/imagine a mountain at sunrise --ar 16:9 --2k")
    (upload,) = await harness.result(channel["id"])
    assert "a mountain at sunrise" in upload.params["caption"]
    store = make_store(running.settings.database)
    await store.open()
    try:  # counted against the channel, as its user and as its chat
        day = datetime.now(UTC).date().isoformat()
        assert await store.credits.credits_used(day=day, user_id=channel["id"]) == 1
        assert await store.credits.credits_used(day=day, chat_id=channel["id"]) == 1
    finally:
        await store.close()


async def test_allow_lists_and_one_polite_sentence(start_bot, harness, tg, img):
    friend, stranger = tg.user(31, "Friend"), tg.user(32, "Stranger")
    team = tg.group(-100500, "Team")
    await start_bot(allowed_user_ids="31", allowed_chat_ids=str(team["id"]))
    s_chat = tg.private_chat(stranger)
    harness.send(s_chat, stranger, "/imagine let me in --ar 1:1 --1k")
    await harness.reply_text(s_chat["id"], "this bot is private")
    harness.send(s_chat, stranger, "/imagine please --ar 1:1 --1k")
    harness.send(s_chat, stranger, "/help")
    harness.send(s_chat, stranger, "/id")  # answered whoever asks, after what came before it in the chat
    f_chat = tg.private_chat(friend)
    harness.send(f_chat, friend, "/imagine allowed --ar 1:1 --1k")
    await harness.result(f_chat["id"])
    await harness.reply_text(s_chat["id"], "Your user id")
    assert len(tg.bot_messages(s_chat["id"])) == 2  # told once, then silence (but for /id)
    harness.send(team, stranger, "/imagine team work --ar 1:1 --1k")  # the whole group is allowed
    await harness.result(team["id"])
    assert [r.body["prompt"] for r in img.requests] == ["allowed", "team work"]


async def test_block_and_unblock(start_bot, harness, tg, img):
    boss = tg.user(41, "Boss")
    await start_bot(admin_user_ids="41")
    user, chat = harness.person()
    boss_chat = tg.private_chat(boss)
    harness.send(boss_chat, boss, f"/block {user['id']}")
    await harness.reply_text(boss_chat["id"], "is blocked")
    harness.send(chat, user, "/imagine blocked --ar 1:1 --1k")
    await harness.reply_text(chat["id"], "can't use this bot")
    harness.send(chat, user, "/imagine still blocked --ar 1:1 --1k")
    harness.send(chat, user, "/id")  # answered whoever asks: once it is, the request before it was handled (silently)
    await harness.reply_text(chat["id"], "Your user id")
    harness.send(boss_chat, boss, f"/unblock {user['id']}")
    await harness.reply_text(boss_chat["id"], "is unblocked")
    harness.send(chat, user, "/imagine free again --ar 1:1 --1k")
    await harness.result(chat["id"])
    assert [r.body["prompt"] for r in img.requests] == ["free again"]
    assert sum("can't use" in x for x in harness.texts(chat["id"])) == 1
    harness.send(chat, user, "/stats")
    await harness.reply_text(chat["id"], "for the bot's admins")


async def test_quota_never_spent_twice_under_concurrency(start_bot, harness, tg, img):
    await start_bot(user_daily_quota=5, user_max_running=20, user_max_waiting=20, max_concurrent_generations=20)
    img.delay = 0.2
    user, chat = harness.person()
    for n in range(20):
        harness.send(chat, user, f"/imagine burst {n} --ar 1:1 --1k")
    await tg.wait_for(lambda: sum("Not enough credits" in x for x in harness.texts(chat["id"])) == 2, 15)
    await harness.result(chat["id"], count=5)
    await asyncio.sleep(0.3)
    assert len(img.requests) == 5 and len(harness.results(chat["id"])) == 5
    assert sum("Not enough credits" in x for x in harness.texts(chat["id"])) == 2  # 15 refusals, paced


async def test_failures_and_cancels_are_refunded(start_bot, harness, tg, img):
    await start_bot(user_daily_quota=2, quota_credits_4k=2)
    user, chat = harness.person()
    img.fail_next(400)
    harness.send(chat, user, "/imagine fails --ar 1:1 --4k")
    await harness.status_says(chat["id"], "invalid")
    img.delay_next(10)
    harness.send(chat, user, "/imagine cancelled --ar 1:1 --4k")
    await img.wait_for(lambda: img.inflight == 1)
    harness.send(chat, user, "/cancel")
    await harness.status_says(chat["id"], "Cancelled")
    harness.send(chat, user, "/imagine delivered --ar 1:1 --4k")
    await harness.result(chat["id"])
    harness.send(chat, user, "/usage")
    msg = await harness.reply_text(chat["id"], "Today you used")
    assert "used 2 of 2 credits; 0 left" in msg["text"]
    harness.send(chat, user, "/imagine one too many --ar 1:1 --1k")
    await harness.reply_text(chat["id"], "Not enough credits: this needs 1, 0 left today")


async def test_quota_resets_at_midnight_and_grants(start_bot, harness, tg, img):
    now = [datetime(2026, 11, 24, 23, 59, 0, tzinfo=UTC).timestamp()]
    boss = tg.user(51, "Boss")
    await start_bot(clock=lambda: now[0], user_daily_quota=1, admin_user_ids="51")
    user, chat = harness.person()
    harness.send(chat, user, "/imagine first --ar 1:1 --1k")
    await harness.result(chat["id"])
    harness.send(chat, user, "/imagine second --ar 1:1 --1k")
    msg = await harness.reply_text(chat["id"], "Not enough credits")
    assert "at 00:00 UTC (in 0 h 1 min)" in msg["text"]
    boss_chat = tg.private_chat(boss)
    harness.send(boss_chat, boss, f"/grant {user['id']} 1")
    await harness.reply_text(boss_chat["id"], "Granted 1 credits")
    harness.send(chat, user, "/imagine granted --ar 1:1 --1k")
    await harness.result(chat["id"], count=2)
    harness.send(chat, user, "/imagine over again --ar 1:1 --1k")
    await tg.wait_for(lambda: sum("Not enough credits" in x for x in harness.texts(chat["id"])) == 2)
    now[0] += 120  # past midnight: a new day
    harness.send(chat, user, "/imagine new day --ar 1:1 --1k")
    await harness.result(chat["id"], count=3)
    # admins have no limit
    for n in range(3):
        harness.send(boss_chat, boss, f"/imagine boss {n} --ar 1:1 --4k")
    await harness.result(boss_chat["id"], count=3)


async def test_stats_match_the_jobs(start_bot, harness, tg, img):
    boss = tg.user(61, "Boss")
    running = await start_bot(admin_user_ids="61")
    user, chat = harness.person()
    harness.send(chat, user, "/imagine small --ar 1:1 --1k")
    await harness.result(chat["id"])
    harness.send(chat, user, "/imagine big --ar 16:9 --4k")
    await harness.result(chat["id"], count=2)
    img.size_next(1024, 1024)
    harness.send(chat, user, "/imagine wrong size --ar 16:9 --2k")
    await harness.result(chat["id"], count=3)
    img.fail_next(401)
    harness.send(chat, user, "/imagine fails --ar 1:1 --1k")
    await harness.status_says(chat["id"], "API key was refused")
    await settled(running.settings.database, 4)  # a delivered job is recorded done just after its photo
    boss_chat = tg.private_chat(boss)
    harness.send(boss_chat, boss, "/stats")
    msg = await harness.reply_text(boss_chat["id"], "Images today")
    assert "Images today: 3 (1K 1 · 2K 1 · 4K 1)" in msg["text"]
    assert "Failures (7 days): API key refused 1" in msg["text"]
    assert "Size mismatches (7 days): 2K 1" in msg["text"]
    assert f"{user['id']} (3)" in msg["text"]


def test_stats_percentiles():
    origin = Origin(1, 7)
    jobs = [
        Job(
            str(i),
            origin,
            ImageRequest("p", AspectRatio("1:1"), Resolution("1K")),
            status=JobStatus.DONE,
            created_at=1000.0,
            upstream_seconds=float(i),
        )
        for i in range(1, 21)
    ]
    text = stats_text(jobs, 0, "en")
    assert "median 10.5 s, p95 20.0 s" in text


async def test_chinese_users_get_chinese(bot, harness, tg, img):
    user, chat = harness.person(language_code="zh-hans")
    harness.send(chat, user, "/start")
    await harness.reply_text(chat["id"], "你好")
    harness.send(chat, user, "/imagine 一只猫")
    kb = await tg.wait_for(
        lambda: next((m for m in tg.bot_messages(chat["id"]) if "生成" in str(m.get("reply_markup"))), None)
    )
    assert "选择比例、分辨率和张数" in kb["text"]
    img.fail_next(403)
    await harness.press(kb, "生成", user)
    await harness.status_says(chat["id"], "图片服务的额度已用完")


async def test_language_can_be_chosen_in_settings(bot, harness, tg):
    user, chat = harness.person(language_code="en")
    harness.send(chat, user, "/settings")
    panel = await harness.reply_text(chat["id"], "Your defaults")
    await harness.press(panel, "简体中文", user)
    await tg.wait_for(lambda: "默认设置" in tg.message(chat["id"], panel["message_id"])["text"])
    harness.send(chat, user, "/help")
    await harness.reply_text(chat["id"], "使用方法")


async def test_command_menus_per_language_and_scope(bot, tg):
    keys = set(tg.commands)
    for lang in ("", "zh"):
        assert (tg_scope("all_private_chats"), lang) in keys and (tg_scope("all_group_chats"), lang) in keys
    zh_private = {c["command"]: c["description"] for c in tg.commands[(tg_scope("all_private_chats"), "zh")]}
    assert zh_private["imagine"].startswith("生成图片")


def tg_scope(kind: str) -> str:
    return json.dumps({"type": kind}, sort_keys=True)


@pytest.mark.parametrize("lang", list(TEXTS))
def test_no_text_over_telegram_limits(lang):
    assert set(TEXTS[lang]) <= set(EN) and set(ZH) == set(EN)
    long = {"prompt": "x" * 3000, "ratios": ", ".join(r.value for r in AspectRatio), "quota_line": "q" * 100}
    for key, template in TEXTS[lang].items():
        values = {name: long.get(name, "9" * 12) for name in _fields(template)}
        try:
            text = t(key, lang, **{k: (int(v) if v.isdigit() else v) for k, v in values.items()})
        except (ValueError, TypeError):
            text = template
        assert len(text) <= 4096, key
        if key.startswith("cmd_"):
            assert len(text) <= 256
        if key in ("again", "change", "original", "generate", "cancel", "cancel_job"):
            assert len(text) <= 20  # fits a phone button


def _fields(template: str) -> set[str]:
    return {name.split(":")[0] for _, name, _, _ in string.Formatter().parse(template) if name}


async def test_admins_hear_about_a_bad_key_once(start_bot, harness, tg, img):
    boss = tg.user(81, "Boss")
    boss_chat = tg.private_chat(boss)
    await start_bot(admin_user_ids="81")
    img.fail_next(401, times=2)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine one --ar 1:1 --1k")
    harness.send(chat, user, "/imagine two --ar 1:1 --1k")
    await tg.wait_for(lambda: sum("API key was refused" in x for x in harness.texts(chat["id"])) == 2)
    await harness.reply_text(boss_chat["id"], "Check IMAGE_API_KEY")
    await asyncio.sleep(0.2)
    assert len(tg.bot_messages(boss_chat["id"])) == 1


async def test_progress_in_groups_is_paced_under_the_flood_limit(bot, harness, tg, img):
    user = tg.user(91, "Grouper")
    group = tg.group(-100950, "Busy group")
    img.delay = 7
    harness.send(group, user, "/imagine slow one --ar 1:1 --1k")
    harness.send(group, user, "/imagine slow two --ar 1:1 --1k")
    await harness.result(group["id"], count=2, timeout=20)
    progress = [
        c
        for c in tg.calls
        if c.method in ("editMessageText", "sendChatAction") and int(c.params.get("chat_id", 0)) == group["id"]
    ]
    # two 7 s jobs: their first "Generating" lines and one chat action, not an edit every few seconds
    assert len(progress) <= 4, [c.method for c in progress]


async def test_a_refusal_names_whose_limit_was_hit(database_url, make_settings):
    """The chat's CHAT_DAILY_QUOTA when the chat's own credits are short, else the person's, with the figures."""
    store = make_store(database_url)
    await store.open()
    try:
        quota = Quota(store, make_settings(user_daily_quota=5, chat_daily_quota=3))
        group = Origin(-1001, 7)
        await quota.reserve_use("first", group, 2)
        with pytest.raises(QuotaExceeded) as short:
            await quota.reserve_use("second", group, 2)
        figures = (short.value.whose, short.value.credits, short.value.person_left, short.value.chat_left)
        assert figures == (Limit.CHAT, 2, 3, 1) and short.value.left == 1
        with pytest.raises(QuotaExceeded) as short:
            await quota.reserve_use("third", Origin(7, 7), 4)
        figures = (short.value.whose, short.value.credits, short.value.person_left, short.value.chat_left)
        assert figures == (Limit.PERSON, 4, 3, None) and short.value.purchased == 0
    finally:
        await store.close()


async def test_variants_need_credits_for_all_of_them(start_bot, harness, tg, img):
    await start_bot(user_daily_quota=3, user_max_running=4)
    user, chat = harness.person()
    harness.send(chat, user, "/imagine four at once --ar 1:1 --1k --n 4")
    msg = await harness.reply_text(chat["id"], "Not enough credits")
    assert "this needs 4, 3 left today" in msg["text"]
    assert img.requests == []
