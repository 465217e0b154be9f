"""Telegram presentation of jobs: status lines (`status`) and the end of a request (`finisher`).

`TelegramPresentation` is what the engine (`bot/jobs/`) talks to, through its `Presentation` interface: the engine
knows that interface, never this module.
"""

from __future__ import annotations

import asyncio

from ..models import Job
from ..tasks import Background
from .finisher import Finisher
from .status import StatusLines

__all__ = ["Finisher", "StatusLines", "TelegramPresentation"]


class TelegramPresentation:
    def __init__(self, lines: StatusLines, finisher: Finisher) -> None:
        self.lines = lines
        self.finisher = finisher
        self._background = Background()

    def submitted(self, jobs: list[Job]) -> None:
        self.lines.submitted(jobs)

    def queued(self, group: str, ok: bool) -> None:
        self.lines.queued(group, ok)

    def started(self, job: Job) -> None:
        self.lines.started(job)

    def generating(self, job: Job) -> None:
        self.lines.generating(job)

    def ended(self, job: Job) -> None:
        self.lines.ended(job)

    def lost(self, job: Job) -> None:
        self.lines.lost(job)

    async def deliver(self, group: str, epoch: int) -> None:
        await self.finisher.deliver(group, epoch)

    async def paused(self, group: str) -> None:
        await self.finisher.paused(group)

    def alert(self, kind: str) -> None:
        self._background.spawn(self.finisher.alert(kind))

    async def close(self, waiting_groups: list[str]) -> None:
        """Stopping: no more progress; requests queued here that did not start are told they will resume."""
        await self.lines.stop()
        await asyncio.gather(*(self.finisher.paused(group) for group in waiting_groups), return_exceptions=True)
        await self._background.wait(5)
