"""A button press goes ahead of the commands waiting in the inbox (issue 21): a person looking at the keyboard they
tapped is not made to wait behind a crowd's commands received just before, and a chat's own updates keep their
order."""

from __future__ import annotations

INBOX_SLOTS = 64  # updates one process handles at once (bot/inbox.py)


async def test_a_press_is_taken_at_once_unless_its_chat_has_an_update_waiting(store):
    assert await store.updates.record_update(1, 10, {"update_id": 1})
    assert await store.updates.record_tap(2, 10, {"update_id": 2}, "a", 30) == "queued"  # after chat 10's update 1
    assert await store.updates.record_tap(3, 20, {"update_id": 3}, "a", 30) == "taken"
    assert await store.updates.record_tap(3, 20, {"update_id": 3}, "a", 30) == "seen"
    assert await store.updates.record_update(4, 20, {"update_id": 4})
    assert [u for u, _ in await store.updates.claim_update("b", 30, 10)] == [1]  # 4 waits for the press taken
    await store.updates.update_done(1)
    await store.updates.update_done(3)
    assert [u for u, _ in await store.updates.claim_update("b", 30, 10)] == [2, 4]


async def test_a_tap_is_handled_ahead_of_the_commands_waiting_in_the_inbox(start_bot, harness, tg):
    """Every handling slot of the inbox is held by a crowd's command stuck behind a flood wait, and more commands
    wait behind them: a tap on a keyboard is answered and redrawn at once all the same."""
    await start_bot()
    tapper, chat = harness.person()
    harness.send(chat, tapper, "/imagine a fox")
    keyboard = await harness.keyboard(chat["id"])
    crowd = [harness.person() for _ in range(INBOX_SLOTS + 20)]
    tg.flood(8, method="sendMessage", times=len(crowd))
    for person, their_chat in crowd:
        harness.send(their_chat, person, "/help")
    await tg.wait_for(lambda: len(tg.refused("sendMessage")) >= INBOX_SLOTS, 15, "every slot held by a flood wait")
    await harness.press(keyboard, "16:9", tapper, timeout=6)  # else after the flood wait, 8 s
    await tg.wait_for(
        lambda: "✓ 16:9" in str(tg.message(chat["id"], keyboard["message_id"])["reply_markup"]), 6, "the redraw"
    )
    helped = [c for c in tg.calls_of("sendMessage") if c.error is None and c.params.get("chat_id") != chat["id"]]
    assert len(helped) < len(crowd)  # the crowd's commands were still waiting


async def test_a_polled_batch_is_recorded_in_one_write_once(store):
    assert await store.updates.record_updates([(1, 10, {"update_id": 1}), (2, 20, {"update_id": 2})]) == {1, 2}
    assert await store.updates.record_updates([(2, 20, {"update_id": 2}), (3, 10, {"update_id": 3})]) == {3}
    assert [u for u, _ in await store.updates.claim_update("a", 30, 10)] == [1, 2]  # 3 waits for 1 of chat 10
