"""Throughput with 1 and 2 worker processes on small template tasks, and latency."""

from __future__ import annotations

import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from tests.server import ServeProcess

from bench.service import _small_task_inputs

POLL_S = 0.1
"""How often the bench lists tasks: often enough for latencies, rarely enough not to
load the API that shares the cores with the workers."""


def _run(workers: int, tasks: int) -> tuple[float, list[float]]:
    image, template = _small_task_inputs()
    with tempfile.TemporaryDirectory() as tmp:
        server = ServeProcess(Path(tmp) / "data", workers=workers).start()
        try:
            submitted: dict[str, float] = {}

            def submit(_: int) -> None:
                started = time.perf_counter()
                uid = requests.post(
                    server.url("/api/v1/match/template"),
                    files={"image": ("scene.png", image), "template": ("part.png", template)},
                    timeout=60,
                ).json()["uid"]
                submitted[uid] = started

            began = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(submit, range(tasks)))
            finished: dict[str, float] = {}
            while len(finished) < tasks:
                page = requests.get(server.url(f"/api/v1/tasks?limit={min(tasks, 200)}"), timeout=30)
                now = time.perf_counter()
                for task in page.json()["tasks"]:
                    if task["status"] in ("done", "error") and task["uid"] not in finished:
                        finished[task["uid"]] = now
                time.sleep(POLL_S)
            elapsed = max(finished.values()) - began
        finally:
            server.stop()
    latencies = [finished[uid] - submitted[uid] for uid in submitted]
    return tasks / elapsed, latencies


def bench_throughput(tasks: int = 120) -> list[dict[str, object]]:
    rate_1, lat_1 = _run(1, tasks)
    rate_2, lat_2 = _run(2, tasks)

    def pct(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[int(q) - 1] * 1000

    return [
        {
            "name": f"throughput: {tasks} small template tasks, 1 → 2 workers (tasks/s)",
            "baseline_ms": rate_1,
            "aerovision_ms": rate_2,
            "ratio": rate_2 / rate_1,
            "note": "columns are tasks/s with 1 and 2 workers; goal ratio ≥ 1.6",
        },
        {
            "name": "latency under load, 1 worker: p50 / p95 submit→done (ms)",
            "baseline_ms": pct(lat_1, 50),
            "aerovision_ms": pct(lat_1, 95),
            "ratio": pct(lat_1, 95) / pct(lat_1, 50),
            "note": "all tasks submitted at once, so latency includes queueing",
        },
        {
            "name": "latency under load, 2 workers: p50 / p95 submit→done (ms)",
            "baseline_ms": pct(lat_2, 50),
            "aerovision_ms": pct(lat_2, 95),
            "ratio": pct(lat_2, 95) / pct(lat_2, 50),
            "note": "all tasks submitted at once, so latency includes queueing",
        },
    ]


def _drain(workers: int, tasks: int) -> float:
    """Tasks/s of ``workers`` processes draining a queue filled beforehand (the API idle)."""
    image, template = _small_task_inputs()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        filler = ServeProcess(data_dir, workers=0).start()
        try:
            for _ in range(tasks):
                requests.post(
                    filler.url("/api/v1/match/template"),
                    files={"image": ("scene.png", image), "template": ("part.png", template)},
                    timeout=60,
                ).raise_for_status()
        finally:
            filler.stop()
        server = ServeProcess(data_dir, workers=workers).start()
        try:
            def finished() -> int:
                counts = requests.get(server.url("/health"), timeout=30).json()["tasks"]
                return int(counts["done"]) + int(counts["error"])

            began, at_start = time.perf_counter(), finished()
            while (done := finished()) < tasks:
                time.sleep(POLL_S)
            elapsed = time.perf_counter() - began
        finally:
            server.stop()
    return (done - at_start) / elapsed


def bench_drain(tasks: int = 200) -> list[dict[str, object]]:
    rate_1, rate_2 = _drain(1, tasks), _drain(2, tasks)
    return [
        {
            "name": f"drain: {tasks} queued small template tasks, 1 → 2 workers (tasks/s)",
            "baseline_ms": rate_1,
            "aerovision_ms": rate_2,
            "ratio": rate_2 / rate_1,
            "note": "queue filled first, API idle but on the same 2 cores; goal ratio ≥ 1.6",
        }
    ]
