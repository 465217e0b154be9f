"""Background plumbing every loop of the bot relies on to stop."""

from __future__ import annotations

import asyncio

from bot.tasks import wait_set


async def _loop(wait, event: asyncio.Event) -> None:
    while True:
        await wait(event)
        event.clear()


async def _cancel_as_it_is_set(wait) -> asyncio.Task:
    event = asyncio.Event()
    task = asyncio.create_task(_loop(wait, event))
    await asyncio.sleep(0.01)
    event.set()  # the event's waiter completes first, then the cancel arrives: a stop during a wake-up
    task.cancel()
    await asyncio.sleep(0.05)
    return task


async def test_a_stop_that_arrives_as_the_loop_wakes_up_still_stops_it():
    task = await _cancel_as_it_is_set(lambda event: wait_set(event, 5))
    assert task.done() and task.cancelled()
