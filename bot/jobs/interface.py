"""The narrow interfaces between the job engine and the chat side: what it calls to show a job (`Presentation`),
and where it gets a job's reference pictures (`ReferenceSource`). Both are implemented on the Telegram side."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

from ..models import Job


class ReferenceSource(Protocol):
    """Where a job's reference pictures come from (Telegram today, `bot/telegram_references.py`), given to the
    worker at start: the engine names them by id and never sees how they are fetched."""

    def fetched(self, ids: tuple[str, ...]) -> AbstractAsyncContextManager[list[Path]]:
        """The pictures as checked files, in order, removed when the block ends; `UnusableReference` (from
        `bot/references.py`) for one that cannot be used."""
        ...


class Presentation(Protocol):
    def submitted(self, jobs: list[Job]) -> None:
        """A request is about to be queued by this process: its status line is shown here (before any worker
        can start it, so the line never jumps back)."""

    def queued(self, group: str, ok: bool) -> None:
        """It was queued (show its first status line, in the background), or it was refused (forget it)."""

    def started(self, job: Job) -> None:
        """A job of a request was claimed here (its references are fetched next)."""

    def generating(self, job: Job) -> None:
        """Its upstream call begins: its status line says it is being made from now on, never before."""

    def ended(self, job: Job) -> None:
        """A job ended here (made, failed or cancelled); its request may still be waiting for others."""

    def lost(self, job: Job) -> None:
        """Another process holds the job now (this one's lease ran out): this one no longer shows it."""

    async def deliver(self, group: str, epoch: int) -> None:
        """Every job of the request has ended: deliver what was made, say why the rest wasn't, record it — as
        the holder of its delivery at `epoch` (a process that lost it stops quietly)."""

    async def paused(self, group: str) -> None:
        """This process is stopping and gave the request back to the queue: say it will resume."""

    def alert(self, kind: str) -> None:
        """A failure that stops every user (bad key, spent credit, wrong address): tell the admins."""
