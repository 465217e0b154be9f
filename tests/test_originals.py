"""Originals on disk: kept for the 📄 button, pruned by age and by total size, and the first to give way on a short
disk."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from bot.originals import OriginalsStore, StorageError

MB = 1024 * 1024


class Disk:
    """A small disk that only the originals fill: its free space is its capacity less what the folder holds, as
    statvfs would say after each write and deletion."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity

    def free(self, folder: Path) -> int:
        used = sum(p.stat().st_size for p in folder.iterdir()) if folder.is_dir() else 0
        return self.capacity - used


async def test_prune_by_age_and_size(tmp_path):
    store = OriginalsStore(tmp_path, max_age_hours=1, max_total_mb=1)
    store.open()
    old = await store.save("old", b"x" * 1000, "png")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    first = await store.save("first", b"a" * 600_000, "png")
    os.utime(first, (time.time() - 60, time.time() - 60))
    await store.save("second", b"b" * 600_000, "png")  # together over 1 MB: the oldest goes
    assert store.find("old") is None and store.find("first") is None
    assert store.find("second").read_bytes() == b"b" * 600_000
    assert not list(tmp_path.glob("*.part"))


async def test_a_file_is_moved_in_not_copied(tmp_path):
    store = OriginalsStore(tmp_path / "originals", max_age_hours=1, max_total_mb=1)
    store.open()
    incoming = tmp_path / "incoming.part"
    incoming.write_bytes(b"png bytes")
    path = await store.save("job1", incoming, "png")
    assert path.read_bytes() == b"png bytes" and not incoming.exists()


async def test_two_attempts_of_one_job_saving_at_once_both_succeed(tmp_path):
    """A job taken back and run again in the same process (a lease lost while its first attempt was still making
    the image) may keep its image twice at once: each write has its own temporary file, so neither fails."""
    store = OriginalsStore(tmp_path, max_age_hours=1, max_total_mb=100)
    store.open()
    saved = await asyncio.gather(*(store.save("job1", bytes([n]) * 2_000_000, "png") for n in range(8)))
    assert {p.name for p in saved} == {"job1.png"} and store.find("job1").read_bytes() in {
        bytes([n]) * 2_000_000 for n in range(8)
    }
    assert not list(tmp_path.glob("*.part"))


async def test_the_oldest_originals_give_way_when_the_disk_runs_low(tmp_path):
    disk = Disk(3 * MB)
    store = OriginalsStore(tmp_path, max_age_hours=1, max_total_mb=100, min_free_mb=1, free_space=disk.free)
    store.open()
    for n in range(3):  # 1.8 MB kept, 1.2 MB free
        path = await store.save(f"job{n}", bytes([n]) * 600_000, "png")
        os.utime(path, (time.time() - 60 + n, time.time() - 60 + n))
        store.release([f"job{n}"])
    await store.ensure_room()  # enough free: nothing goes
    assert all(store.find(f"job{n}") for n in range(3))
    await store.save("job3", b"3" * 600_000, "png")  # 0.6 MB free: under DATA_MIN_FREE_MB
    await store.ensure_room()
    assert store.find("job0") is None  # the oldest, and only as many as needed
    assert store.find("job1") and store.find("job2") and store.find("job3")
    assert disk.free(tmp_path) >= MB


async def test_an_original_waiting_for_its_delivery_never_gives_way(tmp_path):
    disk = Disk(MB + MB // 2)
    store = OriginalsStore(tmp_path, max_age_hours=1, max_total_mb=100, min_free_mb=1, free_space=disk.free)
    store.open()
    old = await store.save("delivered", b"d" * 600_000, "png")
    os.utime(old, (time.time() - 60, time.time() - 60))
    store.release(["delivered"])
    await store.save("waiting", b"w" * 600_000, "png")  # 0.35 MB free; 0.93 MB without the other
    with pytest.raises(StorageError, match="DATA_MIN_FREE_MB"):
        await store.ensure_room()
    assert store.find("delivered") is None and store.find("waiting") is not None


async def test_a_short_disk_gives_way_originals_first_then_says_it_is_full(start_bot, harness, tg, img):
    disk = Disk(8 * MB)  # besides 1 MB kept free: room for two 1K noise PNGs (~3 MB each), not three
    running = await start_bot(free_space=disk.free, data_min_free_mb=1, user_daily_quota=10)
    originals = running.settings.data_dir / "originals"
    img.noise = True
    user, chat = harness.person()
    for n in range(1, 5):
        harness.send(chat, user, f"/imagine static {n} --ar 1:1 --1k")
        await harness.result(chat["id"], count=n, timeout=20)
    assert len(list(originals.iterdir())) < 4  # the oldest gave way; every image was delivered
    assert len(harness.results(chat["id"])) == 4

    disk.capacity = MB // 2  # now even an empty folder leaves less than DATA_MIN_FREE_MB
    asked = len(img.requests)
    harness.send(chat, user, "/imagine one too many --ar 1:1 --1k")
    msg = await harness.status_says(chat["id"], "disk is full", timeout=15)
    assert "on my side" not in msg["text"]
    assert len(img.requests) == asked  # refused before a paid image was made
    assert list(originals.iterdir()) == []  # every original gave way first
    harness.send(chat, user, "/usage")
    usage = await harness.reply_text(chat["id"], "Today you used")
    assert "used 4 of 10" in usage["text"]  # the failed one was refunded
