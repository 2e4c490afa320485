"""What every benchmark shares: interleaved timing and the row format of the table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def median_pair(
    baseline: Callable[[], Any], candidate: Callable[[], Any], repeats: int
) -> tuple[float, float]:
    """Median ms of ``baseline`` and ``candidate``, run alternately (so load hits both)."""
    baseline(), candidate()  # warm-up: caches, thread pool, lazy imports
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        baseline()
        a.append(time.perf_counter() - start)
        start = time.perf_counter()
        candidate()
        b.append(time.perf_counter() - start)
    return statistics.median(a) * 1000, statistics.median(b) * 1000


def row(
    name: str, baseline_ms: float, aerovision_ms: float, note: str = "", **extra: Any
) -> dict[str, Any]:
    """One line of the `make bench` table: ratio = ours / baseline (below 1 is faster)."""
    return {
        "name": name,
        "baseline_ms": round(baseline_ms, 2),
        "aerovision_ms": round(aerovision_ms, 2),
        "ratio": round(aerovision_ms / baseline_ms, 3),
        "note": note,
        **extra,
    }
