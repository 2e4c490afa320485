"""The reaper: nothing stays ``queued`` or ``processing`` forever.

Leases that expired (worker killed, machine lost) go back to the queue until a
task has used its attempts, then the task ends as ``error`` with the reason.
Unfinished tasks that the queue does not hold at all (lost between the
database and the queue) are enqueued again.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field

from aerovision.config import Settings
from aerovision.jobs.queue import AdminQueue
from aerovision.store import tasks as task_store
from aerovision.store import workers as worker_store
from aerovision.store.db import Database
from aerovision.store.models import FilesPending, TaskStatus

log = logging.getLogger(__name__)

WORKER_FORGET_AFTER_S = 3600.0
"""Heartbeats older than this are deleted."""


@dataclass
class ReapReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)


def reap_once(
    settings: Settings, db: Database, queue: AdminQueue, owner: str = "reaper"
) -> ReapReport:
    """One pass over expired leases and lost tasks (skipped if another reaper holds the lock)."""
    report = ReapReport()
    if not queue.try_lock("reaper", owner, ttl_s=3 * settings.reaper_interval_s + 5):
        return report
    for uid in queue.expired():
        task = task_store.get_task(db, uid, None)
        if task is not None and task.files_pending is FilesPending.WRITING:  # done; files owed
            made = task.files_attempts + 1  # the verdict's run was the first
            if made < settings.max_attempts and queue.reclaim(uid):
                report.requeued.append(uid)
                log.warning("task %s: lease expired before its files; back in the queue", uid)
            elif made >= settings.max_attempts:
                task_store.files_written(
                    db, uid, error=f"the worker writing them stopped responding; gave up after "
                    f"{made} attempts",
                )
                queue.ack(uid)
                log.error("task %s: its files were not written; gave up after %d attempts",
                          uid, made)
            continue
        if task is None or task.status.terminal:
            queue.ack(uid)
            continue
        if task.attempts >= settings.max_attempts:
            task_store.finish_task(
                db,
                uid,
                status=TaskStatus.ERROR,
                error=f"the worker running the task stopped responding (lease of "
                f"{settings.lease_s:g} s expired); gave up after {task.attempts} attempts",
            )
            queue.ack(uid)
            report.failed.append(uid)
            log.warning("task %s failed: lease expired on its last attempt", uid)
            continue
        task_store.return_to_queue(db, uid)
        if queue.reclaim(uid):
            report.requeued.append(uid)
            log.warning("task %s: lease expired; back in the queue", uid)

    stale = task_store.unfinished_since(db, older_than_s=2 * settings.lease_s)
    held = queue.holds(t.uid for t in stale)
    for task in stale:
        if task.uid not in held:
            task_store.return_to_queue(db, task.uid)
            queue.enqueue(task.uid)
            report.restored.append(task.uid)
            log.warning("task %s was in no queue; enqueued again", task.uid)
    worker_store.prune(db, WORKER_FORGET_AFTER_S)
    return report


class Reaper(threading.Thread):
    """Runs :func:`reap_once` every ``settings.reaper_interval_s`` until stopped."""

    def __init__(self, settings: Settings, db: Database, queue: AdminQueue) -> None:
        super().__init__(name="reaper", daemon=True)
        self.settings, self.db, self.queue = settings, db, queue
        self.owner = f"reaper-{uuid.uuid4().hex[:8]}"
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.settings.reaper_interval_s):
            try:
                reap_once(self.settings, self.db, self.queue, self.owner)
            except Exception:
                log.exception("reaper pass failed; trying again")

    def stop(self) -> None:
        self._stop_event.set()
