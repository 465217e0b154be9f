"""Status lines: one process at a time edits a request's line, and only forward (its stage is kept on the lead job)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from ..models import LineStage
from .backend import Repository


@dataclass(frozen=True, slots=True)
class LineTurn:
    """The answer to "may this process show the next stage of a request's status line?"."""

    taken: bool  # yes: the line is this process's to edit at that stage
    since: float | None = None  # when its request began being made (Unix seconds): the seconds shown count from it
    busy: bool = False  # not yet: the waiting line's last edit may still be on its way; ask again in a moment


class Lines(Repository):
    """Who may show the next stage of a request's status line."""

    async def hold_line(self, group: str, until: float) -> bool:
        """The process that queued a request is about to edit its waiting line: only while no worker has taken
        the line further. Until `until` (or `unhold_line`) a worker waits for that edit before showing its own."""
        return await self._db.run(_HOLD_LINE, {"b_group": group, "v_until": until}) == 1

    async def unhold_line(self, group: str, until: float) -> None:
        await self._db.run(_UNHOLD_LINE, {"b_group": group, "v_until": until})

    async def advance_line(self, group: str, stage: int, owner: str) -> LineTurn:
        """Take a request's status line to `stage` for `owner`: granted when the line is behind that stage, or at
        it with no other process running a job of the request under it (a takeover after a stop or a crash),
        and no waiting line's edit is on its way."""
        now = time.time()
        params = {"b_group": group, "v_stage": stage, "v_owner": owner, "v_now": now}

        def work(conn: sa.Connection) -> LineTurn:
            since = conn.execute(_ADVANCE_LINE, params).scalar_one_or_none()
            if since is not None:
                return LineTurn(True, since)
            busy = conn.execute(_LINE_BUSY, {"b_group": group}).scalar_one_or_none()
            return LineTurn(False, busy=busy is not None and busy >= now)

        return await self._db.write(work)


_LEAD_OF = "(group_id = :b_group OR (id = :b_group AND group_id IS NULL)) AND variant = 1"
_HOLD_LINE = sa.text(
    f"UPDATE jobs SET line_stage = {LineStage.QUEUED:d}, line_busy_until = :v_until "
    f"WHERE {_LEAD_OF} AND line_stage <= {LineStage.QUEUED:d}"
)
_UNHOLD_LINE = sa.text(f"UPDATE jobs SET line_busy_until = NULL WHERE {_LEAD_OF} AND line_busy_until = :v_until")
_ADVANCE_LINE = sa.text(f"""
    UPDATE jobs SET line_stage = :v_stage, line_owner = :v_owner, line_since = COALESCE(line_since, :v_now)
    WHERE {_LEAD_OF} AND (line_busy_until IS NULL OR line_busy_until < :v_now)
      AND (line_stage < :v_stage OR (line_stage = :v_stage AND (
        line_owner IS NULL OR line_owner = :v_owner OR NOT EXISTS (
          SELECT 1 FROM jobs r WHERE COALESCE(r.group_id, r.id) = :b_group AND r.status = 'running'
          AND r.worker = jobs.line_owner))))
    RETURNING line_since""")
_LINE_BUSY = sa.text(f"SELECT line_busy_until FROM jobs WHERE {_LEAD_OF}")
