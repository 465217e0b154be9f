"""Memory stays bounded whatever the image service sends: a bound check on the process's peak RSS (not a speed
test; that is bench/). The fakes stream their hostile answers, so the growth measured is the bot's."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from bot.imagegen import MAX_IMAGE_BYTES

GROWTH_LIMIT_MB = 120  # before streaming to disk, the endless answer alone grew the process by gigabytes


def _peak_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    pytest.skip("no /proc/self/status here")


def _reset_peak() -> None:
    """Linux: set the peak (VmHWM) back to the current RSS, so earlier tests do not count."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pytest.skip("cannot reset the peak RSS here")


async def test_hostile_answers_keep_memory_bounded(start_bot, harness, img):
    await start_bot(image_request_timeout=20)
    img.response_format = "b64_json"
    img.stream_next("endless")
    img.stream_next("big_b64", size=MAX_IMAGE_BYTES + 256 * 1024)
    img.stream_next("endless_url")
    chats = []
    _reset_peak()
    start = _rss_kb()
    for _ in range(3):
        user, chat = harness.person()
        harness.send(chat, user, "/imagine a lamp --ar 1:1 --1k")
        chats.append(chat)
    for chat in chats:
        await harness.status_says(chat["id"], "sent a broken answer", timeout=60)
    growth_mb = (_peak_kb() - start) / 1024
    assert growth_mb < GROWTH_LIMIT_MB, f"peak RSS grew by {growth_mb:.0f} MB"
