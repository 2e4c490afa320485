"""The isolated executor: whatever the child does, the parent gets an Outcome."""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from aerovision.engine.errors import InputError
from aerovision.jobs.executor import Limits, run_isolated

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
