"""Memory stays bounded whatever the image service sends: a bound check on the process's peak RSS (not a speed
test; that is bench/). The fakes stream their hostile answers, so the growth measured is the bot's."""

from __future__ import annotations

import io
import os
import resource
import tracemalloc
from pathlib import Path

import pytest
from PIL import Image

from bot.imagegen import MAX_IMAGE_BYTES, NotAnImageError, inspect_image
from tests.fakes.imageapi import single_idat

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


def test_checking_a_png_written_as_one_chunk_holds_a_megabyte_not_the_image(tmp_path):
    """Pillow's verify reads each chunk whole: a 50 MB PNG in one IDAT chunk (as many encoders write it) held
    100 MB per check, and twenty answers checked at once were most of a 700 MB peak."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (1600, 1600), os.urandom(1600 * 1600 * 3)).save(buffer, "PNG", compress_level=1)
    png = single_idat(buffer.getvalue())  # ~7.7 MB, one chunk
    path = tmp_path / "one.png"
    path.write_bytes(png)
    tracemalloc.start()
    try:
        assert inspect_image(path) == ("PNG", 1600, 1600)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * 1024 * 1024, f"{peak / 1e6:.1f} MB held to check a {len(png) / 1e6:.1f} MB PNG"
    broken = bytearray(png)
    broken[len(png) // 2] ^= 0xFF  # a flipped byte in the pixel data: its chunk's CRC no longer matches
    path.write_bytes(broken)
    with pytest.raises(NotAnImageError):
        inspect_image(path)
    path.write_bytes(png[: len(png) - 100])  # cut short
    with pytest.raises(NotAnImageError):
        inspect_image(path)
