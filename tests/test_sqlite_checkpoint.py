"""Closing the SQLite store while its WAL checkpoint runs in a thread: the checkpoint's connection is closed once
the thread is done with it, not under it (that crashed the process with SIGSEGV, now and then at a test's end)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A store closed again and again while a checkpoint of a few MB of WAL is copying in its thread.
SCRIPT = """
import asyncio, os, sqlite3, sys
import bot.store.sqlite as store

store.CHECKPOINT_EVERY = 0.0  # a checkpoint at once after opening, and again as soon as one ends


async def main(folder):
    for n in range(12):
        path = os.path.join(folder, f"db{n}.sqlite3")
        backend = store.SqliteBackend(f"sqlite:///{path}")
        await backend.open()
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute("PRAGMA wal_autocheckpoint=0")
        raw.execute("CREATE TABLE blobs (b BLOB)")
        for _ in range(4):
            raw.execute("INSERT INTO blobs VALUES (?)", (os.urandom(1 << 20),))
        raw.close()
        await asyncio.sleep(0.01)  # a checkpoint is copying the WAL now
        await backend.close()


asyncio.run(main(sys.argv[1]))
print("closed cleanly")
"""


def test_closing_the_store_during_a_checkpoint_does_not_crash(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "closed cleanly" in done.stdout, (done.returncode, done.stderr[-2000:])
