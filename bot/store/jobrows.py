"""A job as a row of `jobs`, and the statements about jobs that several repositories share (a request's members,
its lead job, the fence of an epoch, a refund)."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

import sqlalchemy as sa

from ..imagemodels import UnknownModel
from ..models import AppliedStyle, Job, JobStatus, Origin
from ..options import ImageRequest
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
_PLAIN = tuple(f.name for f in fields(Job) if f.name not in ("origin", "request", "references", "style", *_JSON))


def job_row(job: Job) -> dict[str, Any]:
    o, r = job.origin, job.request
    row: dict[str, Any] = {name: getattr(o, name) for name in ORIGIN_COLUMNS}
    row.update(prompt=r.prompt, refs=json.dumps(job.references), **request_columns(r))
    row.update({name: getattr(job, name) for name in _PLAIN})
    row["status"] = job.status.value
    row.update({name: json.dumps(getattr(job, name)) for name in _JSON})
    row["style"] = style_json(job.style)
    return row


def style_json(style: AppliedStyle | None) -> str | None:
    if style is None:
        return None
    return json.dumps(
        {"name": style.name, "label": style.label, "prompt": style.prompt, "pictures": list(style.pictures)},
        ensure_ascii=False,
    )


def row_style(value: str | None) -> AppliedStyle | None:
    if not value:
        return None
    data = json.loads(value)
    return AppliedStyle(data["name"], data["label"], data["prompt"], tuple(data.get("pictures", ())))


def row_job(row: sa.Row) -> Job:
    m = row._mapping
    request = stored_request(m["prompt"], m)
    values = {name: m[name] for name in _PLAIN}
    values["status"] = JobStatus(values["status"])
    values.update({name: json.loads(m[name]) if m[name] else {} for name in _JSON})
    references = tuple(json.loads(m["refs"]))
    return Job(origin=row_origin(m), request=request, references=references, style=row_style(m["style"]), **values)


def request_columns(request: ImageRequest) -> dict[str, str]:
    """A request as its columns: the JSON value, and its ratio and size mirrored for an older version."""
    return {"request": request.to_json(), "aspect_ratio": request.aspect_ratio.value, "size": request.size.value}


def stored_request(prompt: str, m: Any) -> ImageRequest:
    """The request a row holds: its model and options from the JSON value, its ratio and size from their columns
    (every version writes those: a row an older version wrote or changed during a rolling upgrade reads right). No
    JSON, or a model this version no longer has: nano-banana-2 with that ratio and size."""
    try:
        data = json.loads(m["request"]) if m["request"] else {}
        data = data if isinstance(data, dict) else {}
    except ValueError:
        data = {}
    found = data.get("options")
    options: dict[str, Any] = found if isinstance(found, dict) else {}
    value = {"model": data.get("model"), "options": {**options, "ratio": m["aspect_ratio"], "size": m["size"]}}
    try:
        return ImageRequest.from_json(prompt, json.dumps(value))
    except UnknownModel:
        return ImageRequest.from_json(prompt, json.dumps({"options": value["options"]}))


def row_origin(m: Any) -> Origin:
    return Origin(*(m[name] for name in ORIGIN_COLUMNS))


def members(group: str) -> sa.ColumnElement[bool]:
    """The jobs of a request: those of its group, or the single job whose id it is."""
    return (jobs.c.group_id == group) | ((jobs.c.id == group) & jobs.c.group_id.is_(None))


# ---- statements built once (building a statement costs more CPU than SQLite takes to run it) ----
_GROUP: sa.BindParameter[str] = sa.bindparam("b_group")
IN_GROUP = (jobs.c.group_id == _GROUP) | ((jobs.c.id == _GROUP) & jobs.c.group_id.is_(None))
IS_LEAD = IN_GROUP & (jobs.c.variant == 1)
BY_ID = jobs.c.id == sa.bindparam("b_id")
# What a job's run and its delivery change: the rest of its row (who asked, what, its request's shape, when) is
# written once, when it is queued, and its claim (`_START`) writes its attempt.
_OUTCOME_PLAIN = (
    "finished_at",
    "upstream_seconds",
    "error_kind",
    "request_id",
    "delivery",
    "width",
    "height",
    "bytes",
    "result_message_id",
    "photo_file_id",
    "document_file_id",
    "extension",
)
OUTCOME_COLUMNS = ["status", *_OUTCOME_PLAIN, *_JSON]
AT_EPOCH = jobs.c.epoch == sa.bindparam("b_epoch")


def outcome(job: Job, *, with_status_message: bool = False) -> dict[str, Any]:
    """The parameters of `_WRITE_OUTCOME` / `_CONCLUDE_OUTCOME` for a job."""
    params = {f"v_{name}": getattr(job, name) for name in _OUTCOME_PLAIN}
    params["v_status"] = job.status.value
    params.update({f"v_{name}": json.dumps(getattr(job, name)) for name in _JSON})
    params["b_id"], params["b_epoch"] = job.id, job.epoch
    if with_status_message:
        params["v_status_message_id"] = job.status_message_id
    return params


REFUND = sa.update(usage).where(usage.c.job_id == sa.bindparam("b_id")).values(refunded=1)
