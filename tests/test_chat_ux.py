"""Issue 19's chat items: who am I (/id), /settings and /help that fit a phone, /history kept and paged, groups."""

from __future__ import annotations

import json


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
