"""The worker loop: claim a uid, run its task isolated, record the outcome, repeat.

A task answers in two parts (:class:`~aerovision.jobs.executor.Staged`): its
verdict is recorded as soon as it arrives (the task is ``done``, its files marked
``writing``), then the worker waits while the same process writes the thumbnails
(and the pictures of a tool that is not ``pictures_on_demand``), and marks them
written, or the pictures ``on_request``. The first download of such a picture
marks them ``writing`` and puts the uid at the front of the queue: a claim of a
``done`` task whose files are ``writing`` runs it again for its files alone. If
the process writing files dies, the uid stays in the queue (it is acked only
after the files) and is claimed again the same way.

A task that fails because the file store refused a write (read-only, full,
unreachable) is the service's fault: it goes back to the queue with a backoff
(bounded by AEROVISION_MAX_ATTEMPTS), and this worker takes no new task until
a probe write to the store succeeds again, so an outage does not use up the
attempts of every queued task.

Each task runs in a child process with limits (:mod:`aerovision.jobs.executor`);
``Worker(..., in_process=True)`` runs it in the worker's own process instead, as
rq's ``SimpleWorker`` does: no fork, no memory or time limit, for tests and
debugging. Everything else (claim, lease, attempt, outcome, outbox, ack, retry)
is the same code either way, and ``work(burst=True)`` drains the queue and
returns, so a test drives submit → done in one process.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from aerovision.config import Settings
from aerovision.engine.embedder import fingerprint as _fingerprint
from aerovision.jobs.executor import (
    Limits,
    Outcome,
    Staged,
    TaskProcess,
    run_one,
    without_paths,
)
from aerovision.jobs.queue import WorkQueue
from aerovision.jobs.runners import Job, Written, run_staged
from aerovision.observability import REQUEST_ID
from aerovision.store import tasks as task_store
from aerovision.store import workers as worker_store
from aerovision.store.db import Database
from aerovision.store.files import FileStore, StoreUnavailable
from aerovision.store.models import FilesPending, TaskStatus
from aerovision.tools import TOOLS
from aerovision.tools.spec import RunResult

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


def _final_error(outcome: Outcome, attempts: int) -> str:
    """What a failed outcome that is not tried again says (no server paths)."""
    error = without_paths(outcome.error or "unknown error")
    return f"{error}; gave up after {attempts} attempts" if outcome.retryable else error


def _memory_note(outcome: Outcome) -> str:
    """", peak memory 52 MB, process 1234": what the log says of the process that ran it."""
    note = (
        f", peak memory {outcome.peak_memory_mb:.0f} MB"
        if outcome.peak_memory_mb is not None
        else ""
    )
    if outcome.pid is not None:
        note += f", process {outcome.pid}"
    return note


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Executor(Protocol):
    """Runs one task's function and says how it ended: :class:`TaskProcess` (a child
    with limits, the default) or :class:`InProcess`."""

    def start(self) -> None: ...

    def run(
        self,
        args: tuple[Any, ...],
        *,
        tick: Callable[[], None],
        tick_every_s: float,
        stopping: Callable[[], bool],
        grace_s: float,
        on_verdict: Callable[[Any, int], None],
    ) -> Outcome: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class InProcess:
    """Runs the task in this process, like rq's ``SimpleWorker``: no child, so no memory
    limit, no time limit and no shutdown grace (the task runs to its end, its lease not
    renewed meanwhile); a crash takes the worker with it. For tests and debugging, never
    for hostile input.

    The outcome is decided by the same code as in a child: InputError → the task's
    error, an exception of ``retry_on`` → retried (a service fault), anything else →
    an internal error.
    """

    fn: Callable[..., Any]
    limits: Limits
    retry_on: tuple[type[Exception], ...] = ()

    def start(self) -> None:
        """Nothing to start."""

    def run(
        self,
        args: tuple[Any, ...],
        *,
        tick: Callable[[], None] = lambda: None,
        tick_every_s: float = 1.0,
        stopping: Callable[[], bool] = lambda: False,
        grace_s: float = 0.0,
        on_verdict: Callable[[Any, int], None] = lambda value, pid: None,
    ) -> Outcome:
        kind, payload, _fit = run_one(self.fn, args, self.limits, self.retry_on)
        if kind == "ok" and isinstance(payload, Staged):
            on_verdict(payload.value, os.getpid())
            kind, payload, _fit = run_one(payload.then, (), self.limits, self.retry_on)
        if kind == "ok":
            return Outcome(ok=True, value=payload, pid=os.getpid())
        fault = kind == "retry"
        return Outcome(
            ok=False, error=payload, retryable=fault, service_fault=fault, pid=os.getpid()
        )

    def close(self) -> None:
        """Nothing to close."""


@dataclass
class Worker:
    """Claims uids from ``queue`` and runs their tasks; see the module docstring.

    ``in_process`` runs each task in this process (:class:`InProcess`) rather than
    in a child with limits; for tests, with ``work(burst=True)``.
    """

    settings: Settings
    db: Database
    queue: WorkQueue
    store: FileStore
    id: str = field(default_factory=new_worker_id)
    in_process: bool = False
    stop_requested: bool = False
    _last_heartbeat: float = 0.0
    _current: str | None = None
    _tasks: Executor | None = None
    _store_down: bool = False  # the last task failed on the store: probe before claiming

    @property
    def task_process(self) -> Executor:
        """What runs this worker's tasks: a child (forked on first use), or this process."""
        if self._tasks is None:
            run = partial(run_staged, store=self.store)
            limits = Limits(memory_mb=self.settings.task_memory_mb,
                            timeout_s=self.settings.task_timeout_s)
            retry_on: tuple[type[Exception], ...] = (StoreUnavailable,)
            if self.in_process:
                self._tasks = InProcess(run, limits, retry_on)
            else:
                self._tasks = TaskProcess(
                    run, limits, tasks_per_process=self.settings.tasks_per_process,
                    retry_on=retry_on,
                )
        return self._tasks

    def _embedder(self) -> Any:
        """The embedding model's description for library searches (made once; the model
        is loaded by the task process that needs it)."""
        if not hasattr(self, "_embedder_spec"):
            from aerovision.libraries.pool import EmbedderSpec

            model = self.settings.embedder_model
            self._embedder_spec = None if model is None else EmbedderSpec(
                str(model), self.settings.embedder_size, self.settings.embedder_mean,
                self.settings.embedder_std, _fingerprint(model),
            )
        return self._embedder_spec

    def request_stop(self) -> None:
        """Finish (or, after the grace period, give back) the running task, then leave."""
        self.stop_requested = True

    def work(self, *, burst: bool = False, max_jobs: int | None = None) -> int:
        """Process tasks until stopped, or ``max_jobs`` of them.

        ``burst`` (rq's ``work(burst=True)``) returns once no uid can be claimed at
        once: the queue is empty, or what is left waits for a retry's delay; also
        when the file store still refuses writes after a task failed on it; and a
        queue that fails is raised rather than waited out. Returns how many claimed
        uids this call handled (a duplicate delivery, acked and ignored, counts).
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
                    if burst:
                        raise
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
        pictures_only = False
        if task is None:  # finished: its pictures may still be owed, else a duplicate
            task = task_store.start_pictures(self.db, uid, self.id)
            pictures_only = task is not None
        if task is None:
            self.queue.ack(uid)
            return
        self._current = uid
        REQUEST_ID.set(task.request_id)
        if pictures_only:
            log.info("task %s (%s): writing its files, attempt %d",
                     uid, task.tool, task.files_attempts + 1)
        else:
            log.info("task %s (%s) started, attempt %d", uid, task.tool, task.attempts)
        tool = TOOLS.get(task.tool)
        job = Job(
            uid=task.uid,
            tool=task.tool,
            params=task.params,
            input_fields=tool.input_names if tool is not None else (),
            input_files=tuple(task.input_files),
            thumbnails=tuple(task.thumbnails),
            results_prefix=f"results/{task.uid}",
            max_image_pixels=self.settings.max_image_pixels,
            max_ply_points=self.settings.max_ply_points,
            pictures=pictures_only or tool is None or not tool.pictures_on_demand,
            account_id=task.account_id,
            database_url=self.settings.db_url,
            index_folder=str(self.settings.data_dir / "index"),
            embedder=self._embedder(),
        )
        started = time.monotonic()
        verdict_at: list[float] = []

        def on_verdict(result: RunResult, pid: int) -> None:
            verdict_at.append(time.monotonic())
            if not pictures_only:
                self._record_done(uid, result, verdict_at[0] - started,
                                  files_pending=FilesPending.WRITING, memory=f", process {pid}")

        outcome = self.task_process.run(
            (job,),
            tick=lambda: self._tick(uid),
            tick_every_s=min(1.0, self.settings.lease_s / 3),
            stopping=lambda: self.stop_requested,
            grace_s=self.settings.shutdown_grace_s,
            on_verdict=on_verdict,
        )
        elapsed = time.monotonic() - started
        if verdict_at or pictures_only:  # the verdict's run is the first to write files
            self._record_pictures(uid, task.files_attempts + 1, outcome, elapsed)
        else:
            self._record(task.uid, task.attempts, outcome, elapsed)

    def _record_done(
        self, uid: str, result: RunResult, elapsed: float, *,
        files_pending: FilesPending | None, memory: str = "",
    ) -> None:
        task_store.finish_task(
            self.db,
            uid,
            status=TaskStatus.DONE,
            result_files=result.result_files,
            result_data=result.result_data,
            files_pending=files_pending,
        )
        log.info("task %s done in %.3f s%s", uid, elapsed, memory)

    def _record_pictures(self, uid: str, attempts: int, outcome: Outcome, elapsed: float) -> None:
        """After a verdict: the pictures are written, or the uid goes back for another
        try (the process died, the store failed), or they are given up on."""
        memory = _memory_note(outcome)
        self._store_down |= outcome.service_fault
        if outcome.ok:
            written = outcome.value if isinstance(outcome.value, Written) else Written({})
            left = FilesPending.ON_REQUEST if written.left_pictures else None
            task_store.files_written(self.db, uid, left=left)
            spent = ", ".join(f"{stage} {ms:.1f} ms" for stage, ms in written.timings.items())
            log.info("task %s: files written after %.3f s (%s)%s", uid, elapsed, spent, memory)
        elif (outcome.retryable or outcome.released) and attempts < self.settings.max_attempts:
            self.queue.release(uid, delay_s=0.0 if outcome.released else retry_delay(attempts))
            log.warning("task %s: its files were not written (%s); trying again",
                        uid, outcome.error)
            return
        else:
            error = _final_error(outcome, attempts)
            task_store.files_written(self.db, uid, error=error)
            log.error("task %s: its files could not be written: %s%s", uid, error, memory)
        self.queue.ack(uid)

    def _record(self, uid: str, attempts: int, outcome: Outcome, elapsed: float) -> None:
        if outcome.released:
            task_store.return_to_queue(self.db, uid, uncount_attempt=True)
            self.queue.release(uid)
            log.info("task %s given back to the queue (worker stopping)", uid)
            return
        memory = _memory_note(outcome)
        self._store_down |= outcome.service_fault
        if outcome.ok:
            self._record_done(uid, outcome.value, elapsed, files_pending=None, memory=memory)
        elif outcome.retryable and attempts < self.settings.max_attempts:
            task_store.return_to_queue(self.db, uid)
            delay = retry_delay(attempts)
            self.queue.release(uid, delay_s=delay)
            log.warning("task %s: %s; retrying (attempt %d of %d) in %g s", uid, outcome.error,
                        attempts, self.settings.max_attempts, delay)
            return
        else:
            error = _final_error(outcome, attempts)
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
