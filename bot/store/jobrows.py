"""A job as a row of `jobs`, and the statements about jobs that several repositories share (a request's members,
its lead job, the fence of an epoch, a refund)."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

import sqlalchemy as sa

from ..models import Job, JobStatus, Origin
from ..options import AspectRatio, ImageRequest, Resolution
from .schema import jobs, usage

FINAL = (JobStatus.DONE.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value)
UNFINISHED = (JobStatus.QUEUED.value, JobStatus.RUNNING.value, JobStatus.MADE.value)
# settled (on a request's lead job): 0 open, 1 being delivered by `worker` under a lease, 2 delivered or told why not
OPEN, DELIVERING, SETTLED = 0, 1, 2


class LeaseLost(Exception):
    """Another process holds the job now (its epoch moved on): this process's write about it was refused, and it
    stops quietly — it neither sends nor writes anything more for that job."""


ORIGIN_COLUMNS = ("chat_id", "user_id", "thread_id", "reply_to", "lang", "requester", "inline_message_id")
_JSON = ("failure_values", "sent")
_PLAIN = tuple(f.name for f in fields(Job) if f.name not in ("origin", "request", "references", *_JSON))


def job_row(job: Job) -> dict[str, Any]:
    o, r = job.origin, job.request
    row: dict[str, Any] = {name: getattr(o, name) for name in ORIGIN_COLUMNS}
    row.update(prompt=r.prompt, aspect_ratio=r.aspect_ratio.value, size=r.size.value, refs=json.dumps(job.references))
    row.update({name: getattr(job, name) for name in _PLAIN})
    row["status"] = job.status.value
    row.update({name: json.dumps(getattr(job, name)) for name in _JSON})
    return row


def row_job(row: sa.Row) -> Job:
    m = row._mapping
    request = ImageRequest(m["prompt"], AspectRatio(m["aspect_ratio"]), Resolution(m["size"]))
    values = {name: m[name] for name in _PLAIN}
    values["status"] = JobStatus(values["status"])
    values.update({name: json.loads(m[name]) if m[name] else {} for name in _JSON})
    return Job(origin=row_origin(m), request=request, references=tuple(json.loads(m["refs"])), **values)


def row_origin(m: Any) -> Origin:
    return Origin(*(m[name] for name in ORIGIN_COLUMNS))


def members(group: str) -> sa.ColumnElement[bool]:
    """The jobs of a request: those of its group, or the single job whose id it is."""
    return (jobs.c.group_id == group) | ((jobs.c.id == group) & jobs.c.group_id.is_(None))


# ---- statements built once (building a statement costs more CPU than SQLite takes to run it) ----
_GROUP = sa.bindparam("b_group")
IN_GROUP = (jobs.c.group_id == _GROUP) | ((jobs.c.id == _GROUP) & jobs.c.group_id.is_(None))
IS_LEAD = IN_GROUP & (jobs.c.variant == 1)
BY_ID = jobs.c.id == sa.bindparam("b_id")
_ROW_COLUMNS = (*ORIGIN_COLUMNS, "prompt", "aspect_ratio", "size", "refs", *_PLAIN, *_JSON)  # what `job_row` writes
OUTCOME_COLUMNS = [name for name in _ROW_COLUMNS if name not in ("id", "status_message_id", "epoch")]
AT_EPOCH = jobs.c.epoch == sa.bindparam("b_epoch")


def outcome(job: Job, *, with_status_message: bool = False) -> dict[str, Any]:
    """The parameters of `_WRITE_OUTCOME` / `_CONCLUDE_OUTCOME` for a job."""
    row = job_row(job)
    params = {f"v_{name}": row[name] for name in OUTCOME_COLUMNS}
    params["b_id"], params["b_epoch"] = job.id, job.epoch
    if with_status_message:
        params["v_status_message_id"] = row["status_message_id"]
    return params


REFUND = sa.update(usage).where(usage.c.job_id == sa.bindparam("b_id")).values(refunded=1)
