"""What the prompt helper keeps, on both backends: a pending request's suggestion (its own statement, so a choice
saved meanwhile neither loses it nor brings back an old one), the user's words beside their translation (carried
to the job), and a user's translate switch."""

from __future__ import annotations

import pytest

from bot.models import Job, Origin, PendingRequest, Prefs
from bot.options import AspectRatio, ImageRequest, Resolution
from bot.store import make_store


@pytest.fixture
async def store(database_url):
    s = make_store(database_url)
    await s.open()
    yield s
    await s.close()


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
