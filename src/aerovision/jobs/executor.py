"""Run one task in a child process with hard limits; the worker survives anything.

The child is forked from the worker (which has OpenCV already imported, so a
task starts in about a millisecond), gets an address-space limit (RLIMIT_AS),
ignores Ctrl-C (the worker decides when it stops) and sends back one message.
The worker waits with a wall-clock limit, calling ``tick`` (lease renewal,
heartbeat) while it waits, and kills the child when time is up.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from aerovision.engine.errors import InputError

log = logging.getLogger(__name__)

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one task may use."""

    memory_mb: int  # RLIMIT_AS of the child; 0 = unlimited
    timeout_s: float  # wall clock; the child is killed after it


@dataclass(frozen=True)
class Outcome:
    """How a child ended.

    ``ok``: ``value`` is what the function returned. Otherwise ``error`` says why;
    ``retryable`` is true when the child died without a verdict (killed, crashed),
    so another attempt may succeed; ``released`` is true when the worker stopped
    the child because it is shutting down (the task was not at fault).
    """

    ok: bool
    value: Any = None
    error: str | None = None
    retryable: bool = False
    released: bool = False
    peak_memory_mb: float | None = None  # the child's peak resident set, when it answered


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _child_main(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...], limits: Limits) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if limits.memory_mb > 0:
        cap = limits.memory_mb * MiB
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        message: tuple[str, Any] = ("ok", fn(*args))
    except InputError as exc:
        message = ("error", str(exc))
    except MemoryError:
        message = (
            "error",
            (
                f"out of memory: the task needed more than the limit of {limits.memory_mb} "
                "MiB per task (AEROVISION_TASK_MEMORY_MB)"
            ),
        )
    except Exception as exc:  # a bug: report it on the task and log the traceback
        log.error("task function failed\n%s", traceback.format_exc())
        message = ("error", f"internal error: {type(exc).__name__}: {exc}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    try:
        conn.send((*message, peak_mb))
    finally:
        conn.close()


def run_isolated(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    limits: Limits,
    *,
    tick: Callable[[], None] = lambda: None,
    tick_every_s: float = 1.0,
    stopping: Callable[[], bool] = lambda: False,
    grace_s: float = 10.0,
) -> Outcome:
    """Run ``fn(*args)`` in a forked child and return its :class:`Outcome`.

    ``fn`` raising :class:`InputError` or ``MemoryError`` gives an error outcome
    with a message for the user; any other exception is reported as an internal
    error. Once ``stopping()`` turns true the child gets ``grace_s`` more seconds,
    then it is killed and the outcome is ``released``.
    """
    _reap_exiting()
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child_main, args=(sender, fn, args, limits), daemon=True)
    started = time.monotonic()
    child.start()
    sender.close()
    deadline = started + limits.timeout_s
    stop_deadline: float | None = None
    answered = False
    try:
        while True:
            now = time.monotonic()
            limit = deadline if stop_deadline is None else min(deadline, stop_deadline)
            if receiver.poll(max(0.0, min(tick_every_s, limit - now))):
                try:
                    kind, payload, peak_mb = receiver.recv()
                except EOFError:  # the child died without a word
                    return _death(child)
                answered = True
                if kind == "ok":
                    return Outcome(ok=True, value=payload, peak_memory_mb=peak_mb)
                return Outcome(ok=False, error=payload, peak_memory_mb=peak_mb)
            if not child.is_alive() and not receiver.poll(0):
                return _death(child)
            now = time.monotonic()
            if stop_deadline is None and stopping():
                stop_deadline = now + grace_s
            if stop_deadline is not None and now >= stop_deadline:
                _kill(child)
                return Outcome(ok=False, error="stopped by a worker shutdown", released=True)
            if now >= deadline:
                _kill(child)
                return Outcome(
                    ok=False,
                    error=f"the task took longer than the limit of {limits.timeout_s:g} s "
                    "(AEROVISION_TASK_TIMEOUT_S) and was stopped",
                )
            tick()
    finally:
        receiver.close()
        if answered:  # it is exiting; tearing down its memory takes ms: reap it later
            _EXITING.append((time.monotonic(), child))
        else:
            _kill(child)


EXIT_GRACE_S = 5.0
"""A child that answered but has not exited after this long is killed."""

_EXITING: list[tuple[float, Any]] = []
"""Children that sent their answer and are exiting; reaped before the next task."""


def _reap_exiting() -> None:
    now = time.monotonic()
    for answered_at, child in list(_EXITING):
        if not child.is_alive():
            child.join(0)
            _EXITING.remove((answered_at, child))
        elif now - answered_at > EXIT_GRACE_S:
            _kill(child)
            _EXITING.remove((answered_at, child))


def _death(child: Any) -> Outcome:
    child.join(5)
    code = child.exitcode
    if code is not None and code < 0:
        name = _signal_name(-code)
        hint = " (out of memory, or stopped from outside)" if -code == signal.SIGKILL else ""
        why = f"the process running the task was killed by {name}{hint}"
    else:
        why = f"the process running the task exited unexpectedly with code {code}"
    return Outcome(ok=False, error=why, retryable=True)


def _kill(child: Any) -> None:
    if child.is_alive():
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    child.join(5)
