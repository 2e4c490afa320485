"""Task queries: the only place that reads or writes the tasks table."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, case, func, insert, select, update

from aerovision.store.db import Database
from aerovision.store.models import DEFAULT_ACCOUNT_ID, FilesPending, TaskRow, TaskStatus, utcnow
from aerovision.store.scope import Owner, restrict
from aerovision.store.webhooks import add_deliveries

_TASKS: Table = TaskRow.__table__  # type: ignore[assignment]
_UNFINISHED = _TASKS.c.status.not_in([TaskStatus.DONE.value, TaskStatus.ERROR.value])

# The per-task statements a worker runs, built once (Core, not the ORM: measured
# 3.1 → 1.7 ms of worker CPU per task; docs/decisions.md, "Throughput").
_START = (
    update(_TASKS)
    .where(_TASKS.c.uid == bindparam("task_uid"), _UNFINISHED)
    .values(
        status=TaskStatus.PROCESSING.value,
        attempts=_TASKS.c.attempts + 1,
        worker_id=bindparam("by"),
        updated_at=bindparam("at"),
        started_at=bindparam("at"),
    )
    .returning(*_TASKS.c)
)
_CREATE = insert(_TASKS)
_FINISH = (
    update(_TASKS)
    .where(_TASKS.c.uid == bindparam("task_uid"), _UNFINISHED)
    .returning(_TASKS.c.account_id)
)
_GET = select(_TASKS).where(_TASKS.c.uid == bindparam("task_uid"))
_WRITING = _TASKS.c.files_pending == FilesPending.WRITING.value
_START_PICTURES = (
    update(_TASKS)
    .where(_TASKS.c.uid == bindparam("task_uid"), _WRITING)
    .values(files_attempts=_TASKS.c.files_attempts + 1, worker_id=bindparam("by"))
    .returning(*_TASKS.c)
)


@dataclass(frozen=True)
class Task:
    """A task as stored; detached from any session."""

    uid: str
    status: TaskStatus
    tool: str
    params: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    input_files: list[str]
    thumbnails: list[str]
    result_files: list[str]
    result_data: dict[str, Any]
    error: str | None
    attempts: int
    request_id: str | None = None
    files_pending: FilesPending | None = None
    """Files the ``done`` task lists that are not written yet, and why."""
    files_attempts: int = 0
    """Runs that were to write its files after its verdict."""
    account_id: str = DEFAULT_ACCOUNT_ID

    @classmethod
    def from_row(cls, row: Any) -> Task:
        """From an ORM ``TaskRow`` or a Core row of the tasks table."""
        return cls(
            uid=row.uid,
            status=TaskStatus(row.status),
            tool=row.tool,
            params=dict(row.params),
            created_at=row.created_at,
            updated_at=row.updated_at,
            input_files=list(row.input_files),
            thumbnails=list(row.thumbnails),
            result_files=list(row.result_files),
            result_data=dict(row.result_data),
            error=row.error,
            attempts=row.attempts,
            request_id=row.request_id,
            files_pending=FilesPending(row.files_pending) if row.files_pending else None,
            files_attempts=row.files_attempts,
            account_id=row.account_id,
        )


def create_task(
    db: Database,
    *,
    uid: str,
    tool: str,
    params: dict[str, Any],
    input_files: list[str],
    thumbnails: list[str],
    request_id: str | None = None,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> Task:
    """Insert a new ``queued`` task of ``account_id`` (before its uid is enqueued)."""
    now = utcnow()
    task = Task(
        uid=uid, status=TaskStatus.QUEUED, tool=tool, params=dict(params), created_at=now,
        updated_at=now, input_files=list(input_files), thumbnails=list(thumbnails),
        result_files=[], result_data={}, error=None, attempts=0, request_id=request_id,
        account_id=account_id,
    )
    row = {f.name: getattr(task, f.name) for f in fields(task)}
    with db.transaction() as conn:
        conn.execute(_CREATE, {**row, "status": task.status.value})
    return task


def get_task(db: Database, uid: str, owner: Owner | None) -> Task | None:
    """The task ``uid`` if ``owner`` may see it (None: the deployment, any task), else
    None. Core, not the ORM: a client polling a task asks this hundreds of times a
    second (measured 1.56 → 0.6 ms of API CPU per poll)."""
    with db.engine.connect() as conn:
        stmt = _GET if owner is None else restrict(_GET, owner)
        row = conn.execute(stmt, {"task_uid": uid}).first()
        return Task.from_row(row) if row is not None else None


def list_tasks(
    db: Database, owner: Owner, *, offset: int, limit: int
) -> tuple[int, list[Task]]:
    """``(total, page)`` of ``owner``'s tasks, newest first."""
    with db.read() as session:
        total = session.scalar(restrict(select(func.count()).select_from(TaskRow), owner)) or 0
        rows = session.scalars(
            restrict(select(TaskRow), owner)
            .order_by(TaskRow.id.desc()).offset(offset).limit(limit)
        ).all()
        return total, [Task.from_row(r) for r in rows]


def count_by_status(db: Database) -> dict[str, int]:
    with db.read() as session:
        rows = session.execute(select(TaskRow.status, func.count()).group_by(TaskRow.status))
        counts = {s.value: 0 for s in TaskStatus}
        counts.update({str(status): int(n) for status, n in rows.all()})
        return counts


def start_attempt(db: Database, uid: str, worker_id: str) -> Task | None:
    """Mark a claimed task ``processing`` and count the attempt.

    Returns None when the task is unknown or already finished (a duplicate
    delivery from an at-least-once queue), so the caller just acks it.
    """
    with db.transaction() as conn:
        row = conn.execute(_START, {"task_uid": uid, "by": worker_id, "at": utcnow()}).first()
        return Task.from_row(row) if row is not None else None


def finish_task(
    db: Database,
    uid: str,
    *,
    status: TaskStatus,
    result_files: list[str] | None = None,
    result_data: dict[str, Any] | None = None,
    error: str | None = None,
    files_pending: FilesPending | None = None,
) -> bool:
    """End a task as ``done`` or ``error``; False if it had already ended.

    ``files_pending``: the task is ``done`` but files it lists are still to be
    written (:func:`files_written` says when they are). In the same transaction
    every registered webhook gets a pending delivery (the outbox), so a task
    never ends without its notifications.
    """
    assert status.terminal
    now = utcnow()
    values: dict[str, Any] = {
        "status": status.value,
        "updated_at": now,
        "finished_at": now,
        "error": error,
        "worker_id": None,
        "files_pending": files_pending.value if files_pending else None,
    }
    if result_files is not None:
        values["result_files"] = result_files
    if result_data is not None:
        values["result_data"] = result_data
    with db.transaction() as conn:
        owner = conn.execute(_FINISH, {"task_uid": uid, **values}).scalar()
        if owner is None:
            return False
        add_deliveries(conn, uid, status.value, now, owner)
        return True


def start_pictures(db: Database, uid: str, worker_id: str) -> Task | None:
    """Claim the writing of a ``done`` task's files (asked for by a download, or left
    by a process that died): counts a files attempt; None when nothing is to be written."""
    with db.transaction() as conn:
        row = conn.execute(_START_PICTURES, {"task_uid": uid, "by": worker_id}).first()
        return Task.from_row(row) if row is not None else None


def files_written(
    db: Database, uid: str, *, left: FilesPending | None = None, error: str | None = None
) -> None:
    """The task's files are written, but for ``left`` (pictures made on request); or
    they were given up on, and ``result_data.files_error`` says why (the only change
    ever made to a ``done`` task's result data)."""
    with db.write() as session:
        row = session.scalar(select(TaskRow).where(TaskRow.uid == uid).with_for_update())
        if row is None:
            return
        row.files_pending = left.value if left else None
        row.worker_id = None
        if error is not None:
            row.result_data = {**dict(row.result_data), "files_error": error}


def ask_for_files(db: Database, uid: str) -> bool:
    """A download wants the pictures of a task that makes them on request: True if
    this call asked (the caller enqueues the uid), False if they were asked already."""
    with db.transaction() as conn:
        asked = conn.execute(
            update(_TASKS)
            .where(_TASKS.c.uid == uid,
                   _TASKS.c.files_pending == FilesPending.ON_REQUEST.value)
            .values(files_pending=FilesPending.WRITING.value)  # the task's JSON is unchanged
        )
        return bool(asked.rowcount)


def return_to_queue(db: Database, uid: str, *, uncount_attempt: bool = False) -> bool:
    """Put an unfinished task back to ``queued`` (it will be claimed again).

    ``uncount_attempt`` is for a task given back on a clean shutdown: that try
    was not the task's fault.
    """
    values: dict[str, Any] = {
        "status": TaskStatus.QUEUED.value,
        "updated_at": utcnow(),
        "worker_id": None,
    }
    if uncount_attempt:
        values["attempts"] = case((TaskRow.attempts > 0, TaskRow.attempts - 1), else_=0)
    with db.write() as session:
        done = session.execute(
            update(TaskRow)
            .where(TaskRow.uid == uid, _UNFINISHED)
            .values(**values)
        )
        return bool(getattr(done, "rowcount", 0))


def unfinished_since(db: Database, older_than_s: float, limit: int = 500) -> list[Task]:
    """Tasks not touched for ``older_than_s`` seconds (oldest first) that the queue
    must hold: unfinished ones, and ``done`` ones whose files are being written."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    with db.read() as session:
        rows = session.scalars(
            select(TaskRow)
            .where(
                TaskRow.status.in_([TaskStatus.QUEUED.value, TaskStatus.PROCESSING.value])
                | (TaskRow.files_pending == FilesPending.WRITING.value)
            )
            .where(TaskRow.updated_at < cutoff)
            .order_by(TaskRow.id)
            .limit(limit)
        ).all()
        return [Task.from_row(r) for r in rows]


def duration_histogram(
    db: Database, owner: Owner, buckets: tuple[float, ...]
) -> dict[str, tuple[list[int], int, float]]:
    """Per tool: cumulative counts of finished tasks whose last attempt took ≤ each
    bucket (seconds), the total count and the sum of durations."""
    if db.is_sqlite:
        days = func.julianday(TaskRow.finished_at) - func.julianday(TaskRow.started_at)
        seconds = days * 86400.0
    else:
        seconds = func.extract("epoch", TaskRow.finished_at - TaskRow.started_at)
    columns = [func.sum(case((seconds <= b, 1), else_=0)) for b in buckets]
    query = restrict(
        select(TaskRow.tool, func.count(), func.sum(seconds), *columns)
        .where(TaskRow.finished_at.is_not(None), TaskRow.started_at.is_not(None))
        .group_by(TaskRow.tool),
        owner,
    )
    with db.read() as session:
        return {
            tool: ([int(c or 0) for c in counts], int(total), float(total_s or 0.0))
            for tool, total, total_s, *counts in session.execute(query)
        }


def count_by_tool_and_status(db: Database, owner: Owner) -> dict[tuple[str, str], int]:
    with db.read() as session:
        rows = session.execute(
            restrict(
                select(TaskRow.tool, TaskRow.status, func.count()).group_by(
                    TaskRow.tool, TaskRow.status
                ),
                owner,
            )
        )
        return {(tool, status): n for tool, status, n in rows}
