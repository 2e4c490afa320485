"""Worker heartbeats: which workers are alive and what they are doing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select

from aerovision.store.db import Database
from aerovision.store.models import WorkerRow, utcnow


def heartbeat(
    db: Database, worker_id: str, *, hostname: str, pid: int, task_uid: str | None
) -> None:
    now = utcnow()
    with db.write() as session:
        row = session.get(WorkerRow, worker_id)
        if row is None:
            session.add(
                WorkerRow(
                    id=worker_id,
                    hostname=hostname,
                    pid=pid,
                    started_at=now,
                    last_seen=now,
                    task_uid=task_uid,
                )
            )
        else:
            row.last_seen = now
            row.task_uid = task_uid


def forget(db: Database, worker_id: str) -> None:
    with db.write() as session:
        session.execute(delete(WorkerRow).where(WorkerRow.id == worker_id))


def alive_count(db: Database, within_s: float) -> int:
    cutoff = utcnow() - timedelta(seconds=within_s)
    with db.read() as session:
        return (
            session.scalar(
                select(func.count()).select_from(WorkerRow).where(WorkerRow.last_seen >= cutoff)
            )
            or 0
        )


def alive_on_host(db: Database, hostname: str, within_s: float) -> int:
    cutoff = utcnow() - timedelta(seconds=within_s)
    with db.read() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(WorkerRow)
                .where(WorkerRow.hostname == hostname, WorkerRow.last_seen >= cutoff)
            )
            or 0
        )


def prune(db: Database, older_than_s: float) -> int:
    """Forget workers not seen for ``older_than_s`` seconds."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    with db.write() as session:
        result = session.execute(delete(WorkerRow).where(WorkerRow.last_seen < cutoff))
        return int(getattr(result, "rowcount", 0))
