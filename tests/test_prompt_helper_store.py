"""What the prompt helper keeps, on both backends: a pending request's suggestion (its own statement, so a choice
saved meanwhile neither loses it nor brings back an old one), the user's words beside their translation (carried
to the job), a user's translate switch, and the calls in flight: one per request whatever the processes, their
credits settled, or refunded once a stop cut them short."""

from __future__ import annotations

import asyncio
import time

from bot.models import Job, Origin, PendingRequest, Prefs, Reservation
from bot.options import AspectRatio, ImageRequest, Resolution
from bot.prompt_service import PromptService
from bot.prompthelper import PromptHelper
from bot.quota import Quota
from bot.store import make_store


def _pending(pending_id: str = "p1") -> PendingRequest:
    return PendingRequest(pending_id, Origin(7, 7), "a red fox", AspectRatio("1:1"), Resolution("1K"), 42)


async def test_a_suggestion_survives_a_choice_saved_meanwhile(store):
    await store.pending.save_pending(_pending())
    stale = await store.pending.get_pending("p1")  # a tap on 16:9 read the request before the rewrite came
    assert await store.pending.set_suggestion("p1", "A red fox in fresh snow, golden hour")
    stale.aspect_ratio = AspectRatio("16:9")
    await store.pending.save_pending(stale)
    now = await store.pending.get_pending("p1")
    assert now.suggestion == "A red fox in fresh snow, golden hour" and now.aspect_ratio == AspectRatio("16:9")
    assert await store.pending.set_suggestion("p1", None)
    await store.pending.save_pending(now)  # a save holding the old suggestion does not bring it back
    assert (await store.pending.get_pending("p1")).suggestion is None
    taken = await store.pending.take_pending("p1")
    assert taken is not None and not await store.pending.set_suggestion("p1", "late")  # gone: nothing to show


async def test_the_original_words_go_with_their_translation(store):
    request = _pending("p2")
    request.prompt, request.original = "a red fox in the snow", "雪地里的红狐狸"
    await store.pending.save_pending(request)
    taken = await store.pending.take_pending("p2")
    assert (taken.prompt, taken.original) == ("a red fox in the snow", "雪地里的红狐狸")
    job = Job(
        "j1", taken.origin, ImageRequest(taken.prompt, taken.aspect_ratio, taken.size), original_prompt=taken.original
    )
    await store.queue.enqueue([job], 10)
    stored = await store.jobs.get_job("j1")
    assert stored.original_prompt == "雪地里的红狐狸" and stored.request.prompt == "a red fox in the snow"


async def test_a_users_translate_switch(store):
    assert (await store.prefs.get_prefs("user", 5)).translate is False
    await store.prefs.save_prefs("user", 5, Prefs(translate=True))
    assert (await store.prefs.get_prefs("user", 5)).translate is True
    await store.prefs.save_prefs("user", 5, Prefs(size=Resolution("2K"), translate=False))
    assert (await store.prefs.get_prefs("user", 5)).translate is False


async def test_a_call_is_claimed_once_per_request_and_purpose(store):
    await store.pending.save_pending(_pending("p3"))
    assert await store.helper_calls.claim("p3", "improve", None, 0, unsuggested=True)
    assert not await store.helper_calls.claim("p3", "improve", None, 0, unsuggested=True)  # a second tap
    assert await store.helper_calls.claim("p3", "translate", None, 0)  # another purpose is another call
    await store.helper_calls.settle("p3", "improve", refund=False)
    assert await store.helper_calls.claim("p3", "improve", None, 0, unsuggested=True)  # settled: may ask again
    await store.helper_calls.settle("p3", "improve", refund=False)
    await store.pending.set_suggestion("p3", "a rewrite shown")
    assert not await store.helper_calls.claim("p3", "improve", None, 0, unsuggested=True)  # shown already
    await store.pending.take_pending("p3")
    await store.pending.save_pending(_pending("p4"))
    await store.pending.take_pending("p4")
    assert not await store.helper_calls.claim("p4", "improve", None, 0, unsuggested=True)  # generated: gone


async def test_two_processes_tapping_at_once_claim_one_call(store, database_url):
    other = make_store(database_url)  # a second process on the same database
    await other.open()
    try:
        for n in range(10):
            pending_id = f"race{n}"
            await store.pending.save_pending(_pending(pending_id))
            claims = await asyncio.gather(
                store.helper_calls.claim(pending_id, "improve", f"prompt:a{n}", 0, unsuggested=True),
                other.helper_calls.claim(pending_id, "improve", f"prompt:b{n}", 0, unsuggested=True),
            )
            assert sorted(claims) == [False, True]
    finally:
        await other.close()


def _reservation(key: str) -> Reservation:
    return Reservation(key, 7, 7, "2030-01-01", 2, 10, None)


async def test_settled_credits_stay_spent_and_a_call_a_stop_cut_short_is_refunded(store):
    for key, request_id in (("prompt:ok", "p5"), ("prompt:failed", "p6"), ("prompt:crashed", "p7")):
        assert await store.helper_calls.claim(request_id, "improve", key, 0)
        assert await store.credits.reserve_credits(_reservation(key))
    await store.helper_calls.settle("p5", "improve", refund=False)
    await store.helper_calls.settle("p6", "improve", refund=True)
    assert await store.credits.credits_used(day="2030-01-01", user_id=7) == 4  # p5's and the unsettled p7's
    assert await store.helper_calls.refund_stale(time.time() - 60) == 0  # p7 may still be running elsewhere
    assert await store.helper_calls.refund_stale(time.time() + 1) == 1  # past any deadline: its process stopped
    assert await store.credits.credits_used(day="2030-01-01", user_id=7) == 2
    assert await store.helper_calls.claim("p7", "improve", "prompt:again", 0)  # its claim released with it
    assert await store.helper_calls.refund_stale(time.time() + 1) == 1  # nothing reserved: nothing to refund
    assert await store.credits.credits_used(day="2030-01-01", user_id=7) == 2


async def test_a_claim_sweeps_calls_past_their_deadline(store):
    assert await store.helper_calls.claim("p8", "improve", "prompt:old", 0)
    assert await store.credits.reserve_credits(_reservation("prompt:old"))
    assert await store.helper_calls.claim("p8", "improve", "prompt:new", time.time() + 1)  # the old one is over
    assert await store.credits.credits_used(day="2030-01-01", user_id=7) == 0


async def test_two_services_on_one_database_make_one_call_and_charge_once(store, database_url, img, make_settings):
    """Two processes' prompt services (each its own store and helper) asked at once for the same request's rewrite:
    one chat call, one charge; the other is told it is being asked already."""
    settings = make_settings(prompt_model="gpt-4o-mini", prompt_helper_credits=1, user_daily_quota=5)
    other = make_store(database_url)
    await other.open()
    services = [
        PromptService(
            PromptHelper(img.base_url, img.api_key, "gpt-4o-mini", timeout=5),
            Quota(s, settings),
            1,
            s.helper_calls,
            5,
        )
        for s in (store, other)
    ]
    try:
        await store.pending.save_pending(_pending("twice"))
        img.chat_delay = 0.5
        outcomes = await asyncio.gather(
            *(s.improve(Origin(7, 7), "twice", "a red fox", "nano-banana-2", english=False) for s in services),
            return_exceptions=True,
        )
        assert len(img.chat_requests) == 1
        assert sorted(type(o).__name__ for o in outcomes) == ["HelperBusy", "str"]
        assert await store.credits.credits_used(day=Quota(store, settings).today(), user_id=7) == 1
    finally:
        for s in services:
            await s.aclose()
        await other.close()
