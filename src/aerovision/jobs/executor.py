"""Run tasks in a child process with hard limits; the worker survives anything.

A :class:`TaskProcess` is a child forked from the worker (which has OpenCV
imported and warmed up, so it starts in milliseconds). It gets an
address-space limit (RLIMIT_AS), ignores Ctrl-C (the worker decides when it
stops) and runs one task at a time: the worker sends the task's arguments and
waits for one answer with a wall-clock limit, calling ``tick`` (lease
renewal, heartbeat) while it waits, and kills the child when time is up.

The child serves up to ``tasks_per_process`` tasks, then a fresh one is
forked. It is also replaced at once after anything that could have left it
unfit: a crash or kill, a timeout, running out of memory, an internal error,
or memory that stayed high after a task. ``tasks_per_process=1`` gives every
task a fresh process. Reuse is what lets a second worker add throughput on a
busy machine: forking, the child's copy-on-write faults and its exit cost
more CPU than a small task's own work (docs/decisions.md, "Throughput").

A child dies with its worker. Idle, it sees the end of its pipe and exits;
busy, it would run on (past the task's time limit, while the task's retry runs
elsewhere), so on Linux it asks the kernel for SIGKILL when its parent ends
(``PR_SET_PDEATHSIG``). That signal follows the *thread* that forked: it is set
only for children forked by the main thread, which lives as long as the
worker process (the worker forks from its main thread).

A task function may answer in two parts (:class:`Staged`): the verdict, sent to
the worker as soon as it is known, and the rest of the work (writing the task's
pictures), done after it in the same child; the worker records the verdict at
once and waits for the rest before it gives the child another task.

Exceptions of the types in ``retry_on`` (a file store that refuses writes) are
the service's fault, not the task's: the outcome is retryable and marked
``service_fault``, and the child stays in use. Messages never carry absolute
server paths (:func:`without_paths`).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import multiprocessing
import os
import re
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from aerovision.engine.errors import InputError

log = logging.getLogger(__name__)

MiB = 1024 * 1024

GROWTH_LIMIT_MB = 256
"""A child whose resident memory after a task exceeds its level after its first
task by more than this is replaced, so one large task's leftovers do not stay."""


@dataclass(frozen=True)
class Limits:
    """What one task may use."""

    memory_mb: int  # RLIMIT_AS of the child; 0 = unlimited
    timeout_s: float  # wall clock; the child is killed after it


@dataclass(frozen=True)
class Outcome:
    """How a task ended.

    ``ok``: ``value`` is what the function returned. Otherwise ``error`` says why;
    ``retryable`` is true when the child died without a verdict (killed, crashed)
    or the service failed the task (``service_fault``: an exception of
    ``retry_on``, such as a file store refusing writes), so another attempt may
    succeed; ``released`` is true when the worker stopped the child because it
    is shutting down (the task was not at fault).
    """

    ok: bool
    value: Any = None
    error: str | None = None
    retryable: bool = False
    released: bool = False
    service_fault: bool = False
    peak_memory_mb: float | None = None  # the child's peak resident set during the task
    pid: int | None = None  # the process that ran the task


@dataclass(frozen=True)
class Staged:
    """A task function's answer in two parts: ``value`` (the verdict) is sent to the
    worker at once; ``then()`` does the rest of the work in the same process and
    returns what is reported after it (its outcome is the :class:`Outcome` of
    :meth:`TaskProcess.run`). ``value`` is pickled, ``then`` never is."""

    value: Any
    then: Callable[[], Any]


_ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])/(?:[^\s'\"/:;,()\[\]{}<>]+/)*([^\s'\"/:;,()\[\]{}<>]+)")


def without_paths(message: str) -> str:
    """``message`` with every absolute path cut to its last part (``…/name``): task
    errors are shown to API clients and must not reveal the server's layout."""
    return _ABSOLUTE_PATH.sub(lambda m: "…/" + m.group(1), message)


PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal this process gets when the thread that forked it ends."""


def _die_with_parent(parent: int) -> None:
    """Ask Linux for SIGKILL when the parent ends; exit now if it already has."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        failed = libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0
    except (OSError, AttributeError):
        failed = True
    if failed:
        log.warning("task process %d cannot be tied to its worker (prctl failed)", os.getpid())
        return
    if os.getppid() != parent:  # the worker died between the fork and the prctl
        os._exit(0)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _memory_mb() -> dict[str, float]:
    """This process's peak (``VmHWM``) and current (``VmRSS``) resident set in MiB,
    from one read of /proc/self/status; empty where there is none (not Linux)."""
    found: dict[str, float] = {}
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith((b"VmHWM:", b"VmRSS:")):
                    found[line[:5].decode()] = int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return found


def _reset_peak() -> bool:
    """Start a new peak-resident-set measurement (Linux ≥ 4.0); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def run_one(
    fn: Callable[..., Any], args: tuple[Any, ...], limits: Limits,
    retry_on: tuple[type[Exception], ...] = (),
) -> tuple[str, Any, bool]:
    """``(kind, payload, fit)``: the answer, and whether this process may serve another task."""
    try:
        return "ok", fn(*args), True
    except InputError as exc:
        return "error", without_paths(str(exc)), True
    except retry_on as exc:  # the service failed, not the task: retried; this process is fine
        log.warning("task could not finish: %s (%r)", exc, exc.__cause__ or exc)
        return "retry", without_paths(str(exc)), True
    except MemoryError:
        message = (
            f"out of memory: the task needed more than the limit of {limits.memory_mb} "
            "MiB per task (AEROVISION_TASK_MEMORY_MB)"
        )
        return "error", message, False
    except Exception as exc:  # a bug: report it on the task, log the traceback
        log.exception("task function failed")
        return "error", without_paths(f"internal error: {type(exc).__name__}: {exc}"), False


def _child_main(
    conn: Connection, parent_end: Connection, fn: Callable[..., Any], limits: Limits,
    tasks_per_process: int, retry_on: tuple[type[Exception], ...], parent: int | None,
) -> None:
    if parent is not None:  # first: a busy child must not outlive its worker
        _die_with_parent(parent)
    parent_end.close()  # so that the worker dying shows here as end of file (when idle)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    gc.freeze()  # the collector leaves inherited objects alone: no copy-on-write for it
    if limits.memory_mb > 0:
        cap = limits.memory_mb * MiB
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    settled_mb: float | None = None
    served = 0
    while True:
        try:
            args = conn.recv()
        except (EOFError, OSError):
            return
        per_task_peak = _reset_peak()
        kind, payload, fit = run_one(fn, args, limits, retry_on)
        if kind == "ok" and isinstance(payload, Staged):
            try:
                conn.send(("verdict", payload.value, os.getpid(), True))
            except (BrokenPipeError, OSError):
                return
            kind, payload, fit = run_one(payload.then, (), limits, retry_on)
        served += 1
        memory = _memory_mb()
        peak_mb = memory.get("VmHWM") if per_task_peak else None
        if peak_mb is None:
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
        resident_mb = memory.get("VmRSS")
        if settled_mb is None:
            settled_mb = resident_mb
        elif resident_mb is not None and resident_mb - settled_mb > GROWTH_LIMIT_MB:
            fit = False
        fit = fit and served < tasks_per_process
        try:
            conn.send((kind, payload, peak_mb, fit))
        except (BrokenPipeError, OSError):
            return
        if not fit:
            return


class TaskProcess:
    """A child process that runs ``fn(*args)`` for one task at a time, with limits.

    Forked on first use (or :meth:`start`) and replaced as the module docstring
    says. Not thread-safe: one worker drives one TaskProcess.
    """

    def __init__(
        self, fn: Callable[..., Any], limits: Limits, *, tasks_per_process: int = 1,
        retry_on: tuple[type[Exception], ...] = (),
    ) -> None:
        if tasks_per_process < 1:
            raise ValueError("tasks_per_process must be at least 1")
        self.fn = fn
        self.limits = limits
        self.tasks_per_process = tasks_per_process
        self.retry_on = retry_on
        self._child: Any = None
        self._conn: Connection | None = None
        self.forks = 0  # how many children this has started

    def start(self) -> None:
        """Fork the child now rather than at the first task."""
        _reap_exiting()
        if self._child is not None and self._child.is_alive():
            return
        self._discard(kill=True)
        ctx = multiprocessing.get_context("fork")
        parent_end, child_end = ctx.Pipe(duplex=True)
        # PR_SET_PDEATHSIG fires when the forking *thread* ends: tie the child only to
        # the main thread, which ends with the process (another thread may end first).
        tie = os.getpid() if threading.current_thread() is threading.main_thread() else None
        child = ctx.Process(
            target=_child_main,
            args=(
                child_end, parent_end, self.fn, self.limits, self.tasks_per_process,
                self.retry_on, tie,
            ),
            daemon=True,
        )
        child.start()
        child_end.close()
        self._child, self._conn = child, parent_end
        self.forks += 1

    def run(
        self,
        args: tuple[Any, ...],
        *,
        tick: Callable[[], None] = lambda: None,
        tick_every_s: float = 1.0,
        stopping: Callable[[], bool] = lambda: False,
        grace_s: float = 10.0,
        on_verdict: Callable[[Any, int], None] = lambda value, pid: None,
    ) -> Outcome:
        """Run one task and return its :class:`Outcome`.

        ``fn`` raising :class:`InputError` or ``MemoryError`` gives an error outcome
        with a message for the user; any other exception is reported as an internal
        error. Once ``stopping()`` turns true the child gets ``grace_s`` more seconds,
        then it is killed and the outcome is ``released``. When ``fn`` answers with
        :class:`Staged`, ``on_verdict`` gets its value (and the child's pid) as soon as
        it arrives, and the outcome is that of its ``then()`` (same time limit).
        """
        self.start()
        assert self._conn is not None
        try:
            self._conn.send(args)
        except (BrokenPipeError, OSError):  # it died while idle: start another
            self._discard(kill=True)
            self.start()
            assert self._conn is not None
            self._conn.send(args)
        conn, child = self._conn, self._child
        started = time.monotonic()
        deadline = started + self.limits.timeout_s
        stop_deadline: float | None = None
        while True:
            now = time.monotonic()
            limit = deadline if stop_deadline is None else min(deadline, stop_deadline)
            if conn.poll(max(0.0, min(tick_every_s, limit - now))):
                try:
                    kind, payload, peak_mb, fit = conn.recv()
                except (EOFError, OSError):  # the child died without a word
                    return self._death()
                if kind == "verdict":  # peak_mb's place holds the child's pid
                    try:
                        on_verdict(payload, peak_mb)
                    except BaseException:  # the child's next answer would be out of turn
                        self._discard(kill=True)
                        raise
                    continue
                if not fit:
                    self._discard(kill=False)
                if kind == "ok":
                    return Outcome(ok=True, value=payload, peak_memory_mb=peak_mb, pid=child.pid)
                fault = kind == "retry"
                return Outcome(
                    ok=False, error=payload, retryable=fault, service_fault=fault,
                    peak_memory_mb=peak_mb, pid=child.pid,
                )
            if not child.is_alive() and not conn.poll(0):
                return self._death()
            now = time.monotonic()
            if stop_deadline is None and stopping():
                stop_deadline = now + grace_s
            if stop_deadline is not None and now >= stop_deadline:
                self._discard(kill=True)
                return Outcome(ok=False, error="stopped by a worker shutdown", released=True)
            if now >= deadline:
                self._discard(kill=True)
                return Outcome(
                    ok=False,
                    error=f"the task took longer than the limit of {self.limits.timeout_s:g} s "
                    "(AEROVISION_TASK_TIMEOUT_S) and was stopped",
                )
            tick()

    def close(self, *, wait: bool = True) -> None:
        """Let the idle child exit; ``wait`` for it (killed after EXIT_GRACE_S)."""
        child = self._child
        self._discard(kill=False)
        if wait and child is not None:
            child.join(EXIT_GRACE_S)
            _kill(child)
            _reap_exiting()

    def _death(self) -> Outcome:
        child = self._child
        self._discard(kill=False)
        child.join(5)
        code = child.exitcode
        if code is not None and code < 0:
            name = _signal_name(-code)
            hint = " (out of memory, or stopped from outside)" if -code == signal.SIGKILL else ""
            why = f"the process running the task was killed by {name}{hint}"
        else:
            why = f"the process running the task exited unexpectedly with code {code}"
        return Outcome(ok=False, error=why, retryable=True)

    def _discard(self, *, kill: bool) -> None:
        """Stop using the current child: killed now, or left to exit and reaped later."""
        if self._conn is not None:
            self._conn.close()
        if self._child is not None:
            if kill:
                _kill(self._child)
            else:  # it exits on its own; tearing down its memory takes ms: reap it later
                _EXITING.append((time.monotonic(), self._child))
        self._child, self._conn = None, None


def run_isolated(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    limits: Limits,
    *,
    tick: Callable[[], None] = lambda: None,
    tick_every_s: float = 1.0,
    stopping: Callable[[], bool] = lambda: False,
    grace_s: float = 10.0,
    on_verdict: Callable[[Any, int], None] = lambda value, pid: None,
) -> Outcome:
    """Run ``fn(*args)`` once in a fresh child (see :meth:`TaskProcess.run`)."""
    process = TaskProcess(fn, limits, tasks_per_process=1)
    try:
        return process.run(
            args, tick=tick, tick_every_s=tick_every_s, stopping=stopping, grace_s=grace_s,
            on_verdict=on_verdict,
        )
    finally:
        process.close(wait=False)


EXIT_GRACE_S = 5.0
"""A child that was let go but has not exited after this long is killed."""

_EXITING: list[tuple[float, Any]] = []
"""Children let go (done with their last task) that are exiting; reaped before the next."""


def _reap_exiting() -> None:
    now = time.monotonic()
    for released_at, child in list(_EXITING):
        if not child.is_alive():
            child.join(0)
            _EXITING.remove((released_at, child))
        elif now - released_at > EXIT_GRACE_S:
            _kill(child)
            _EXITING.remove((released_at, child))


def _kill(child: Any) -> None:
    if child.is_alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)
    child.join(5)
