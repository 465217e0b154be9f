"""Originals on disk: kept for the 📄 button, pruned by age and by total size."""

from __future__ import annotations

import os
import time

from bot.originals import OriginalsStore


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
