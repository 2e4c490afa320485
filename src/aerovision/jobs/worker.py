"""The worker loop: claim a uid, run its task isolated, record the outcome, repeat.

A task that fails because the file store refused a write (read-only, full,
unreachable) is the service's fault: it goes back to the queue with a backoff
(bounded by AEROVISION_MAX_ATTEMPTS), and this worker takes no new task until
a probe write to the store succeeds again, so an outage does not use up the
attempts of every queued task.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from functools import partial

from aerovision.config import Settings
from aerovision.jobs.executor import Limits, Outcome, TaskProcess, without_paths
from aerovision.jobs.queue import Queue
from aerovision.jobs.runners import Job, RunResult, run_job
from aerovision.observability import REQUEST_ID
from aerovision.tools import TOOLS
from aerovision.store import tasks as task_store
from aerovision.store import workers as worker_store
from aerovision.store.db import Database
from aerovision.store.files import FileStore, StoreUnavailable
from aerovision.store.models import TaskStatus

log = logging.getLogger(__name__)

CLAIM_TIMEOUT_S = 1.0
"""How long one claim waits before the loop checks for stop and heartbeats."""

HEARTBEAT_EVERY_S = 5.0
"""How often a worker records that it is alive (see /health)."""

RETRY_DELAY_S = 1.0
"""Pause before a retried task (its process died, or the store failed) is tried again;
doubled with each attempt, up to RETRY_DELAY_MAX_S."""

RETRY_DELAY_MAX_S = 30.0

STORE_PROBE_EVERY_S = 1.0
"""While the file store refuses writes, how often the worker tries it again."""


def retry_delay(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: 1 s, 2 s, 4 s … up to 30 s."""
    return float(min(RETRY_DELAY_MAX_S, RETRY_DELAY_S * 2 ** max(0, attempts - 1)))


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class Worker:
    settings: Settings
    db: Database
    queue: Queue
    store: FileStore
    id: str = field(default_factory=new_worker_id)
    stop_requested: bool = False
    _last_heartbeat: float = 0.0
    _current: str | None = None
    _tasks: TaskProcess | None = None
    _store_down: bool = False  # the last task failed on the store: probe before claiming

    @property
    def task_process(self) -> TaskProcess:
        """The child that runs this worker's tasks (forked on first use)."""
        if self._tasks is None:
            self._tasks = TaskProcess(
                partial(run_job, store=self.store),
                Limits(memory_mb=self.settings.task_memory_mb,
                       timeout_s=self.settings.task_timeout_s),
                tasks_per_process=self.settings.tasks_per_process,
                retry_on=(StoreUnavailable,),
            )
        return self._tasks

    def request_stop(self) -> None:
        """Finish (or, after the grace period, give back) the running task, then leave."""
        self.stop_requested = True

    def work(self, *, burst: bool = False, max_jobs: int | None = None) -> int:
        """Process tasks until stopped; ``burst`` returns once the queue is empty.

        Returns how many tasks this call handled.
        """
        handled = 0
        log.info("worker %s started", self.id)
        try:
            if not burst:
                self.task_process.start()  # ready before the first task arrives
            while not self.stop_requested:
                self._heartbeat()
                if self._store_down and not self._store_writable():
                    if burst:
                        break
                    time.sleep(STORE_PROBE_EVERY_S)
                    continue
                try:
                    uid = self.queue.claim(
                        self.id, self.settings.lease_s, 0.0 if burst else CLAIM_TIMEOUT_S
                    )
                except Exception:
                    log.exception("worker %s: the queue failed; retrying", self.id)
                    time.sleep(CLAIM_TIMEOUT_S)
                    continue
                if uid is None:
                    if burst:
                        break
                    continue
                self.process(uid)
                handled += 1
                if max_jobs is not None and handled >= max_jobs:
                    break
        finally:
            if self._tasks is not None:
                self._tasks.close()
            try:
                worker_store.forget(self.db, self.id)
            except Exception:
                log.exception("worker %s: could not remove its heartbeat", self.id)
            log.info("worker %s stopped after %d task(s)", self.id, handled)
        return handled

    def process(self, uid: str) -> None:
        """Run one claimed task and record how it ended. Never raises."""
        token = REQUEST_ID.set(None)
        try:
            self._process(uid)
        except Exception:
            log.exception("worker %s: failed while handling task %s; giving it back", self.id, uid)
            try:
                self.queue.release(uid, delay_s=RETRY_DELAY_S)
            except Exception:
                log.exception("worker %s: could not release %s (the reaper will)", self.id, uid)
        finally:
            self._current = None
            REQUEST_ID.reset(token)

    def _process(self, uid: str) -> None:
        task = task_store.start_attempt(self.db, uid, self.id)
        if task is None:  # unknown or already finished: a duplicate delivery
            self.queue.ack(uid)
            return
        self._current = uid
        REQUEST_ID.set(task.request_id)
        log.info("task %s (%s) started, attempt %d", uid, task.tool, task.attempts)
        job = Job(
            uid=task.uid,
            tool=task.tool,
            params=task.params,
            input_fields=TOOLS[task.tool].input_names if task.tool in TOOLS else (),
            input_files=tuple(task.input_files),
            thumbnails=tuple(task.thumbnails),
            results_prefix=f"results/{task.uid}",
            max_image_pixels=self.settings.max_image_pixels,
            max_ply_points=self.settings.max_ply_points,
        )
        started = time.monotonic()
        outcome = self.task_process.run(
            (job,),
            tick=lambda: self._tick(uid),
            tick_every_s=min(1.0, self.settings.lease_s / 3),
            stopping=lambda: self.stop_requested,
            grace_s=self.settings.shutdown_grace_s,
        )
        elapsed = time.monotonic() - started
        self._record(task.uid, task.attempts, outcome, elapsed)

    def _record(self, uid: str, attempts: int, outcome: Outcome, elapsed: float) -> None:
        if outcome.released:
            task_store.return_to_queue(self.db, uid, uncount_attempt=True)
            self.queue.release(uid)
            log.info("task %s given back to the queue (worker stopping)", uid)
            return
        memory = (
            f", peak memory {outcome.peak_memory_mb:.0f} MB"
            if outcome.peak_memory_mb is not None
            else ""
        )
        if outcome.pid is not None:
            memory += f", process {outcome.pid}"
        if outcome.ok:
            result: RunResult = outcome.value
            task_store.finish_task(
                self.db,
                uid,
                status=TaskStatus.DONE,
                result_files=result.result_files,
                result_data=result.result_data,
            )
            log.info("task %s done in %.3f s%s", uid, elapsed, memory)
        elif outcome.retryable and attempts < self.settings.max_attempts:
            if outcome.service_fault:
                self._store_down = True
            task_store.return_to_queue(self.db, uid)
            delay = retry_delay(attempts)
            self.queue.release(uid, delay_s=delay)
            log.warning("task %s: %s; retrying (attempt %d of %d) in %g s", uid, outcome.error,
                        attempts, self.settings.max_attempts, delay)
            return
        else:
            if outcome.service_fault:
                self._store_down = True
            error = without_paths(outcome.error or "unknown error")
            if outcome.retryable:
                error = f"{error}; gave up after {attempts} attempts"
            task_store.finish_task(self.db, uid, status=TaskStatus.ERROR, error=error)
            log.info("task %s error after %.3f s%s: %s", uid, elapsed, memory, error)
        self.queue.ack(uid)

    def _store_writable(self) -> bool:
        """Probe the file store after a task failed on it; True once it takes writes."""
        try:
            self.store.check_writable()
        except StoreUnavailable as exc:
            log.debug("worker %s: %s; waiting", self.id, exc)
            return False
        except Exception:
            log.exception("worker %s: the file store probe failed", self.id)
            return False
        log.info("worker %s: the file store takes writes again; taking tasks", self.id)
        self._store_down = False
        return True

    def _tick(self, uid: str) -> None:
        try:
            if not self.queue.renew(uid, self.id, self.settings.lease_s):
                log.warning("worker %s lost its lease on %s", self.id, uid)
        except Exception:
            log.exception("worker %s: lease renewal failed", self.id)
        self._heartbeat()

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat < HEARTBEAT_EVERY_S:
            return
        try:
            worker_store.heartbeat(
                self.db, self.id, hostname=socket.gethostname(), pid=os.getpid(),
                task_uid=self._current,
            )
            self._last_heartbeat = now
        except Exception:
            log.exception("worker %s: heartbeat failed", self.id)
