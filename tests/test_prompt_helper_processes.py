"""The prompt helper across real processes on one PostgreSQL (issue 27): two taps on ✨ that reach two webhook
replicas make one chat call and one charge (which process handles each is the inbox's choice; the claim itself is
raced by two services in tests/test_prompt_helper_store.py); replicas killed in the middle of a call leave a
reservation that a process starting refunds once the call is past any deadline, and not before."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.fleet import Fleet, free_port
from tests.test_processes import SECRET, Forwarder, eventually, fetch

pytestmark = [pytest.mark.timeout(120), pytest.mark.long]


@pytest.fixture
async def fleet(tg, img, tmp_path, pg_cluster):
    processes = Fleet(tg, img, tmp_path, pg_cluster.new_database())
    try:
        yield processes
    finally:
        await processes.stop()
        print(processes.logs())  # shown when the test fails


def rewrite(plan) -> str:
    return plan.user.split("\n")[1] + ", golden hour"


async def execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_two_taps_on_two_replicas_make_one_call_and_a_killed_call_is_refunded(fleet, harness, tg, img):
    img.chat_reply = rewrite
    ports = [free_port(), free_port()]
    forwarder = Forwarder(ports, "/tg/hook")
    await forwarder.start()
    try:
        fleet.env.update(
            TELEGRAM_WEBHOOK_URL=forwarder.url,
            TELEGRAM_WEBHOOK_SECRET=SECRET,
            PROMPT_MODEL="gpt-4o-mini",
            PROMPT_HELPER_CREDITS="1",
            USER_DAILY_QUOTA="5",
        )
        replicas = await asyncio.gather(
            *(fleet.start(WORKER_CONCURRENCY="0", HTTP_PORT=str(p), name=f"replica-{p}") for p in ports)
        )
        user, chat = harness.person()
        harness.send(chat, user, "/imagine a red fox")
        keyboard = await harness.keyboard(chat["id"], timeout=20)

        # two quick taps on ✨, one to each replica, while the chat model thinks
        img.chat_delay = 1.5
        improve = harness.button(keyboard, "Improve")["callback_data"]
        taps = [tg.press(keyboard, improve, user) for _ in range(2)]
        await tg.wait_for(
            lambda: "golden hour" in tg.message(chat["id"], keyboard["message_id"])["text"], 20, "the rewrite"
        )
        await tg.wait_for(lambda: all(tg.answered.get(q) for q in taps), 10, "both taps answered")
        tap_ports = {
            port
            for d in tg.webhook_deliveries
            if "callback_query" in d.update
            for port, _ in forwarder.routes[d.update["update_id"]]
        }
        assert tap_ports == set(ports)
        await asyncio.sleep(2)  # time for a second call, if one were made
        assert len(img.chat_requests) == 1
        rows = await fetch(fleet.database_url, "SELECT credits, refunded FROM usage")
        assert [(r["credits"], r["refunded"]) for r in rows] == [(1, 0)]

        async def call_settled() -> bool:  # its claim is removed just after the rewrite is shown
            return not await fetch(fleet.database_url, "SELECT * FROM helper_calls")

        await eventually(call_settled, 10, "the first call settled")

        # ↩ Keep mine, ✨ again: both replicas are killed while the chat model thinks
        await harness.press(tg.message(chat["id"], keyboard["message_id"]), "Keep mine", user, timeout=20)
        await tg.wait_for(
            lambda: "Improve" in str(tg.message(chat["id"], keyboard["message_id"])["reply_markup"]), 20, "✨ back"
        )
        img.chat_delay = 60
        await harness.press(tg.message(chat["id"], keyboard["message_id"]), "Improve", user, timeout=20)
        await tg.wait_for(lambda: len(img.chat_requests) == 2, 20, "the second call under way")
        await asyncio.gather(*(r.kill() for r in replicas))
        rows = await fetch(fleet.database_url, "SELECT credits, refunded FROM usage ORDER BY created_at")
        assert [(r["credits"], r["refunded"]) for r in rows] == [(1, 0), (1, 0)]  # reserved, never settled
        assert len(await fetch(fleet.database_url, "SELECT * FROM helper_calls")) == 1

        # a process starting while the call could still be running elsewhere leaves it alone …
        img.chat_delay = 0
        fresh = await fleet.start(WORKER_CONCURRENCY="0", HTTP_PORT=str(ports[0]), name="replica-restarted")
        assert len(await fetch(fleet.database_url, "SELECT * FROM helper_calls")) == 1
        await fresh.stop()
        # … and once it is past any deadline (PROMPT_HELPER_TIMEOUT and a margin), the next start refunds it
        await execute(fleet.database_url, "UPDATE helper_calls SET started_at = started_at - 3600")
        await fleet.start(WORKER_CONCURRENCY="0", HTTP_PORT=str(ports[0]), name="replica-later")
        rows = await eventually(
            lambda: fetch(fleet.database_url, "SELECT refunded FROM usage WHERE refunded = 1"), 10, "the refund"
        )
        assert len(rows) == 1 and not await fetch(fleet.database_url, "SELECT * FROM helper_calls")
        harness.send(chat, user, "/usage")
        await harness.reply_text(chat["id"], "Today you used 1 of 5 credits", timeout=20)
    finally:
        await fleet.stop()
        await forwarder.stop()
