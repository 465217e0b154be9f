"""Original image files kept so 📄 Original and ⬆ work hours later, pruned by age and total size.

Every process keeps them in its `DATA_DIR/originals`; with a database that other machines share (PostgreSQL), they
are also written to it, and a process that lacks one fetches it from there into its folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from .store import Store

log = logging.getLogger(__name__)

EXTENSIONS = ("png", "jpg", "webp")  # what imagegen.GeneratedImage.extension can be
SHARED_PRUNE_EVERY = 60.0  # seconds between prunes of the originals kept in the database
SCAN_EVERY = 60.0  # seconds between scans of the folder for files past their age
LOW_WATER = 0.9  # a prune for size leaves the folder at this share of its limit, so the next is many images away
SHARED_COPY_MB = 96  # one 4K original copied to or from the database: its bytes and the driver's copies


class StorageError(Exception):
    """An original could not be written (disk full, folder gone): the image is lost, the job fails on our side."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path, self.reason = path, reason


def free_bytes(path: Path) -> int:
    """Free space on the disk of `path` for the bot (what statvfs gives an unprivileged process)."""
    return shutil.disk_usage(path).free


class OriginalsStore:
    """`min_free_mb` (DATA_MIN_FREE_MB): the space kept free on the folder's disk, which the database, the spool and
    the originals share; the originals are a cache and give way first (`ensure_room`). `free_space` measures it."""

    def __init__(
        self,
        directory: Path,
        max_age_hours: float,
        max_total_mb: int,
        shared: Store | None = None,
        *,
        memory_mb: int = 96,
        min_free_mb: int = 0,
        free_space: Callable[[Path], int] = free_bytes,
    ) -> None:
        self._dir = directory
        self._shared = shared
        self._min_free = min_free_mb * 1024 * 1024
        self._free_space = free_space
        self._held: set[Path] = set()  # saved here and not delivered yet: never deleted to make room
        # An original goes to and comes from the database whole (bytes in a row): a few at a time, from the same
        # IMAGE_MEMORY_MB as the downloads, so twenty 4K images finishing together do not hold twenty copies.
        self._copies = asyncio.Semaphore(max(1, memory_mb // SHARED_COPY_MB))
        self._shared_pruned = -SHARED_PRUNE_EVERY
        self._max_age = max_age_hours * 3600
        self._max_total = max_total_mb * 1024 * 1024
        # The folder's size as of the last scan plus what was saved since: a scan stats every file, so it runs
        # when this passes the limit or SCAN_EVERY has gone by, never once per image.
        self._total = 0
        self._scanned = -SCAN_EVERY
        self._lock = threading.Lock()  # saves run in threads

    def open(self) -> None:
        """Create the folder at start-up, so a bad DATA_DIR fails at once and not on the first image; remove what
        an interrupted write left."""
        self._dir.mkdir(parents=True, exist_ok=True)
        for part in self._dir.glob("*.part"):
            part.unlink(missing_ok=True)

    async def save(self, job_id: str, data: bytes | Path, extension: str) -> Path:
        """Store the bytes, or move in the file at that path (an image spooled to disk as it arrived), in this
        process's folder: the first thing written for a made image, needing no database."""
        return await asyncio.to_thread(self._save, job_id, data, extension)

    async def share(self, job_id: str, epoch: int, path: Path) -> None:
        """With a shared database, copy the original there too (other machines' processes fetch it from it), if
        this process still holds the job at `epoch` (else the store raises LeaseLost)."""
        if self._shared is None:
            return
        async with self._copies:
            await self._shared.originals.save_original(
                job_id, epoch, path.suffix.lstrip("."), await asyncio.to_thread(path.read_bytes)
            )
        if time.monotonic() - self._shared_pruned > SHARED_PRUNE_EVERY:  # a scan of the table: not per image
            self._shared_pruned = time.monotonic()
            await self._shared.originals.prune_originals(self._max_age, self._max_total)

    async def ensure_room(self) -> None:
        """Before an image is made: when less than DATA_MIN_FREE_MB is free on the disk, delete the oldest originals
        until it is (one statvfs call when there is room). Raises StorageError when none are left to delete."""
        if self._free_space(self._dir) >= self._min_free:
            return
        if not await asyncio.to_thread(self._make_room):
            raise StorageError(
                self._dir,
                f"less than {self._min_free // 1024 // 1024} MB (DATA_MIN_FREE_MB) free "
                "on its disk and no original left to delete",
            )

    def release(self, job_ids: Iterable[str]) -> None:
        """These originals were delivered (or their request ended): they may give way for room again."""
        for job_id in job_ids:
            path = self.find(job_id)
            if path is not None:
                self._held.discard(path)

    async def fetch(self, job_id: str) -> Path | None:
        """The original's file here, brought from the shared database when another process made it."""
        path = self.find(job_id)
        if path is not None or self._shared is None:
            return path
        async with self._copies:
            found = await self._shared.originals.load_original(job_id)
            if found is None:
                return None
            extension, data = found
            return await asyncio.to_thread(self._save, job_id, data, extension)

    def find(self, job_id: str) -> Path | None:
        """A few stat calls, not a scan of the folder (this runs on the event loop)."""
        for extension in EXTENSIONS:
            path = self._dir / f"{job_id}.{extension}"
            if path.exists():
                return path
        return None

    def _save(self, job_id: str, data: bytes | Path, extension: str) -> Path:
        path = self._dir / f"{job_id}.{extension}"
        tmp = self._dir / f"{job_id}.{uuid.uuid4().hex[:12]}.part"  # its own: two attempts of a job never share one
        if not isinstance(data, Path) and self._free_space(self._dir) < self._min_free + len(data):
            self._make_room(len(data))  # a copy from the database takes space; a file moved in does not
        try:
            if isinstance(data, Path):
                shutil.move(data, tmp)  # a rename within one file system
            else:
                tmp.write_bytes(data)
            tmp.replace(path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise StorageError(self._dir, exc.strerror or str(exc)) from None
        with self._lock:
            self._held.add(path)
            with contextlib.suppress(OSError):
                self._total += path.stat().st_size
            if self._total > self._max_total or time.monotonic() - self._scanned > SCAN_EVERY:
                self._prune(keep=path)
        return path

    def _make_room(self, extra: int = 0) -> bool:
        """Delete the oldest originals, one at a time, until DATA_MIN_FREE_MB (plus `extra`) is free; never one
        still waiting for its delivery. False when that was not enough."""
        with self._lock:
            files = []
            for path in self._dir.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if path.suffix != ".part" and path not in self._held:
                        stat = path.stat()
                        files.append((stat.st_mtime, stat.st_size, path))
            deleted = 0
            for _, size, path in sorted(files):
                if self._free_space(self._dir) >= self._min_free + extra:
                    break
                path.unlink(missing_ok=True)
                self._total = max(0, self._total - size)
                deleted += 1
            enough = self._free_space(self._dir) >= self._min_free + extra
        if deleted:
            log.warning(
                "less than DATA_MIN_FREE_MB free on the disk of %s: deleted the %d oldest original(s)%s",
                self._dir,
                deleted,
                "" if enough else "; still not enough",
            )
        return enough

    def _prune(self, keep: Path | None = None) -> None:
        """Drop files older than the age limit, then the oldest until the total is under the low-water mark;
        never `keep`, the file just saved, which its delivery is about to read."""
        now = time.time()
        self._scanned = time.monotonic()
        files = []
        for path in self._dir.iterdir():
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if now - stat.st_mtime > self._max_age:
                path.unlink(missing_ok=True)
            else:
                files.append((stat.st_mtime, stat.st_size, path))
        self._held.intersection_update(path for _, _, path in files)  # those pruned by age were delivered long ago
        total = sum(size for _, size, _ in files)
        if total > self._max_total:
            for _, size, path in sorted(files):
                if total <= self._max_total * LOW_WATER:
                    break
                if path == keep:
                    continue
                path.unlink(missing_ok=True)
                total -= size
        self._total = total
        if files and total > self._max_total:
            log.warning("originals folder still over its size limit after pruning")
