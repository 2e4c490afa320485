"""The isolated executor: whatever the child does, the parent gets an Outcome."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aerovision.engine.errors import InputError
from aerovision.jobs.executor import Limits, TaskProcess, run_isolated, without_paths
from aerovision.store.files import StoreUnavailable

LIMITS = Limits(memory_mb=1024, timeout_s=10)


def _add(a: int, b: int) -> int:
    return a + b


def _bad_input() -> None:
    raise InputError("template (64×64) is larger than the image (32×32)")


def _bug() -> None:
    raise KeyError("oops")


def _hog() -> int:
    block = np.ones((4096, 1024, 1024), dtype=np.uint8)  # 4 GiB
    return int(block[0, 0, 0])


def _suicide() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _sleep() -> None:
    time.sleep(60)


def test_value_comes_back() -> None:
    outcome = run_isolated(_add, (2, 3), LIMITS)
    assert outcome.ok and outcome.value == 5
    assert outcome.peak_memory_mb is not None and outcome.peak_memory_mb > 1


def test_input_error_message_is_kept() -> None:
    outcome = run_isolated(_bad_input, (), LIMITS)
    assert not outcome.ok and not outcome.retryable
    assert outcome.error == "template (64×64) is larger than the image (32×32)"


def test_a_bug_is_an_internal_error() -> None:
    outcome = run_isolated(_bug, (), LIMITS)
    assert not outcome.ok
    assert outcome.error == "internal error: KeyError: 'oops'"


def test_memory_limit() -> None:
    outcome = run_isolated(_hog, (), Limits(memory_mb=1024, timeout_s=30))
    assert not outcome.ok and not outcome.retryable
    assert "out of memory" in (outcome.error or "")
    assert "1024 MiB" in (outcome.error or "")


def test_killed_child_is_retryable() -> None:
    outcome = run_isolated(_suicide, (), LIMITS)
    assert not outcome.ok and outcome.retryable
    assert "killed by SIGKILL" in (outcome.error or "")


def test_wall_clock_limit_kills_the_child() -> None:
    ticks: list[float] = []
    started = time.monotonic()
    outcome = run_isolated(
        _sleep, (), Limits(memory_mb=0, timeout_s=0.5), tick=lambda: ticks.append(1),
        tick_every_s=0.1,
    )
    assert time.monotonic() - started < 5
    assert not outcome.ok and not outcome.retryable
    assert "longer than the limit of 0.5 s" in (outcome.error or "")
    assert len(ticks) >= 2


def test_stop_releases_after_grace() -> None:
    outcome = run_isolated(_sleep, (), LIMITS, stopping=lambda: True, grace_s=0.2, tick_every_s=0.05)
    assert outcome.released and not outcome.ok


# A TaskProcess: one child for many tasks, replaced whenever it may be unfit.

_HELD: list[np.ndarray] = []


def _task(kind: str) -> int:
    """What a test task does, chosen per task; returns the pid that ran it."""
    if kind == "bug":
        raise KeyError("oops")
    if kind == "bad input":
        raise InputError("not an image")
    if kind == "hog":  # far over the limit, so it fails at once whatever the test process holds
        np.ones((64, 1024, 1024, 1024), dtype=np.uint8)
    if kind == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "sleep":
        time.sleep(60)
    if kind == "touch 300 MB":
        block = np.ones(300 * 1024 * 1024, dtype=np.uint8)
        del block
    if kind == "keep 300 MB":
        _HELD.append(np.ones(300 * 1024 * 1024, dtype=np.uint8))
    return os.getpid()


def _pids(process: TaskProcess, kinds: list[str]) -> list[int | None]:
    pids: list[int | None] = []
    for kind in kinds:
        outcome = process.run((kind,), tick_every_s=0.05)
        pids.append(outcome.value if outcome.ok else None)
    return pids


@pytest.fixture
def process() -> Iterator[TaskProcess]:
    # The child inherits the test process's address space, which grows over a long run.
    tasks = TaskProcess(_task, Limits(memory_mb=8192, timeout_s=1), tasks_per_process=100)
    try:
        yield tasks
    finally:
        tasks.close()


def test_one_child_runs_task_after_task(process: TaskProcess) -> None:
    pids = _pids(process, ["ok"] * 5)
    assert len(set(pids)) == 1 and pids[0] != os.getpid()
    assert process.forks == 1


@pytest.mark.parametrize(
    ("per_process", "same_as_previous"),
    [(2, [False, True, False, True, False]), (1, [False] * 5)],
)
def test_a_fresh_child_after_tasks_per_process(
    per_process: int, same_as_previous: list[bool]
) -> None:
    tasks = TaskProcess(_task, LIMITS, tasks_per_process=per_process)
    try:
        pids = _pids(tasks, ["ok"] * 5)
    finally:
        tasks.close()
    assert [i > 0 and pid == pids[i - 1] for i, pid in enumerate(pids)] == same_as_previous
    assert tasks.forks == same_as_previous.count(False)


def test_a_refused_input_keeps_the_child(process: TaskProcess) -> None:
    first = process.run(("ok",)).value
    refused = process.run(("bad input",))
    assert refused.error == "not an image"
    assert process.run(("ok",)).value == first


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("bug", "internal error: KeyError: 'oops'"),
        ("hog", "out of memory"),
        ("die", "killed by SIGKILL"),
        ("sleep", "longer than the limit of 1 s"),
    ],
)
def test_a_child_that_may_be_unfit_is_replaced(process: TaskProcess, kind: str, error: str) -> None:
    first = process.run(("ok",)).value
    failed = process.run((kind,), tick_every_s=0.05)
    assert not failed.ok and error in (failed.error or "")
    after = process.run(("ok",))
    assert after.ok and after.value != first
    assert process.forks == 2


def test_a_child_lost_while_idle_is_replaced_without_failing_the_task(
    process: TaskProcess,
) -> None:
    first = process.run(("ok",)).value
    os.kill(first, signal.SIGKILL)
    time.sleep(0.2)
    after = process.run(("ok",))
    assert after.ok and after.value != first


@pytest.fixture
def roomy() -> Iterator[TaskProcess]:
    """As ``process``, with time to touch 300 MB on a loaded machine (the suite runs
    files side by side)."""
    tasks = TaskProcess(_task, Limits(memory_mb=8192, timeout_s=30), tasks_per_process=100)
    try:
        yield tasks
    finally:
        tasks.close()


def test_peak_memory_is_per_task(roomy: TaskProcess) -> None:
    process = roomy
    big = process.run(("touch 300 MB",))
    small = process.run(("ok",))
    assert big.value == small.value  # same child
    assert big.peak_memory_mb is not None and small.peak_memory_mb is not None
    assert big.peak_memory_mb > 300
    assert small.peak_memory_mb < big.peak_memory_mb - 200


def test_memory_that_stays_high_retires_the_child(roomy: TaskProcess) -> None:
    process = roomy
    first = process.run(("ok",)).value
    assert process.run(("keep 300 MB",)).value == first
    assert process.run(("ok",)).value != first


def test_close_ends_the_child(process: TaskProcess) -> None:
    child = process.run(("ok",)).value
    process.close()
    assert not _alive(child)


def test_the_child_ends_when_its_worker_dies(tmp_path: Path) -> None:
    script = (
        "import os, signal\n"
        "from aerovision.jobs.executor import Limits, TaskProcess\n"
        "process = TaskProcess(os.getpid, Limits(memory_mb=0, timeout_s=5))\n"
        "print(process.run(()).value, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
    )
    child = int(done.stdout)
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_a_busy_child_dies_with_its_worker() -> None:
    """SIGKILL of the worker while its child runs a task: the child does not run on
    (PR_SET_PDEATHSIG; the end-of-file check only helps an idle child)."""
    script = (
        "import os, signal, time\n"
        "from aerovision.jobs.executor import Limits, TaskProcess\n"
        "def task():\n"
        "    print(os.getpid(), flush=True)\n"
        "    time.sleep(60)\n"
        "process = TaskProcess(task, Limits(memory_mb=0, timeout_s=120))\n"
        "def tick():\n"
        "    time.sleep(0.3)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "process.run((), tick=tick, tick_every_s=0.1)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL
    child = int(done.stdout)
    deadline = time.monotonic() + 2
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child)


def test_a_child_forked_by_a_short_lived_thread_outlives_the_thread() -> None:
    """The parent-death signal follows the forking thread: a child forked off the main
    thread is not tied to it, so it keeps serving after that thread ends."""
    process = TaskProcess(_task, LIMITS, tasks_per_process=100)
    try:
        forker = threading.Thread(target=process.start)
        forker.start()
        forker.join()
        time.sleep(0.3)
        first = process.run(("ok",))
        second = process.run(("ok",))
        assert first.ok and second.ok and first.value == second.value
        assert process.forks == 1
    finally:
        process.close()


def _store_fails() -> None:
    try:
        raise PermissionError(13, "Permission denied", "/srv/aerovision/data/results/u")
    except PermissionError as exc:
        raise StoreUnavailable("write", "permission denied") from exc


def test_a_store_failure_is_retryable_and_keeps_the_child() -> None:
    tasks = TaskProcess(
        lambda kind: _store_fails() if kind == "store" else _task(kind), LIMITS,
        tasks_per_process=100, retry_on=(StoreUnavailable,),
    )
    try:
        first = tasks.run(("ok",)).value
        failed = tasks.run(("store",))
        assert not failed.ok and failed.retryable and failed.service_fault
        assert failed.error == "the file store refused a write (permission denied)"
        assert tasks.run(("ok",)).value == first
    finally:
        tasks.close()
    unmarked = run_isolated(_store_fails, (), LIMITS)  # without retry_on: a bug, as before
    assert not unmarked.retryable and "internal error: StoreUnavailable" in (unmarked.error or "")


def _missing_file() -> None:
    Path("/srv/aerovision/data/uploads/u/x.png").read_bytes()


def test_error_messages_carry_no_absolute_paths() -> None:
    outcome = run_isolated(_missing_file, (), LIMITS)
    assert outcome.error == (
        "internal error: FileNotFoundError: [Errno 2] No such file or directory: '…/x.png'"
    )
    assert without_paths("cannot open /a/b/c.ply (see /tmp)") == "cannot open …/c.ply (see …/tmp)"
    kept = "template (64×64) is larger than the image (32×32); 1/2 and w/o; x: 0.5/1"
    assert without_paths(kept) == kept


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
