"""Throughput with 1 and 2 worker processes on small template tasks, and latency.

Two ways of loading the service, each measured in alternating rounds (1 worker,
2 workers, 1, 2, …) so that both see the same machine, and reported as medians:

- ``throughput``: tasks are submitted over HTTP while the workers run them, so
  the API shares the cores with the workers (the issue's setting);
- ``drain``: the queue is filled first with the workers stopped, then drained
  with the API idle.

Every run keeps its data directory until the whole part has finished. Deleting
thousands of files just before a run slows the next run's file creation on
ext4 without a journal (the allocator skips inodes freed in the last seconds,
reading the inode table for each), and that would penalise whichever run came
second; docs/decisions.md has the measurement.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import requests
from tests.server import ServeProcess

from bench.service import _small_task_inputs

POLL_S = 0.1
"""How often the bench asks /health whether all tasks have ended."""

ROUNDS = 5
"""Runs per worker count; the rows show the median run."""


BOUNDARY = "aerovision-bench-boundary"


def _multipart(image: bytes, template: bytes) -> bytes:
    """The body of a template submission, encoded once for every request."""
    parts = []
    for field, name, data in (("image", "scene.png", image), ("template", "part.png", template)):
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{name}"\r\nContent-Type: image/png\r\n\r\n'.encode() + data + b"\r\n"
        )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


_local = threading.local()


def _submit(server: ServeProcess, image: bytes, template: bytes) -> str:
    """Submit one task over this thread's keep-alive connection.

    A load generator should cost the shared cores as little as it can, as wrk
    would: the body is encoded once and sent with the standard library's HTTP
    client (~0.2 ms of client CPU per request, against ~0.8 ms with requests).
    """
    if getattr(_local, "port", None) != server.port:
        _local.port = server.port
        _local.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        _local.body = _multipart(image, template)
    _local.conn.request(
        "POST", "/api/v1/match/template", body=_local.body,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    response = _local.conn.getresponse()
    payload = response.read()
    if response.status != 201:
        raise RuntimeError(f"submission failed with {response.status}: {payload[:200]!r}")
    return str(json.loads(payload)["uid"])


def _finished(server: ServeProcess) -> int:
    counts = requests.get(server.url("/health"), timeout=30).json()["tasks"]
    return int(counts["done"]) + int(counts["error"])


def _run(root: Path, workers: int, tasks: int) -> tuple[float, list[float]]:
    """Tasks/s and each task's latency, submitting while the workers run.

    Progress is watched on /health alone; each task's times are read from the
    service's database afterwards (created → finished, microseconds), so that
    measuring does not load the cores being measured.
    """
    image, template = _small_task_inputs()
    data_dir = Path(tempfile.mkdtemp(dir=root)) / "data"
    server = ServeProcess(data_dir, workers=workers).start()
    try:
        began = datetime.now(UTC).replace(tzinfo=None)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: _submit(server, image, template), range(tasks)))
        while _finished(server) < tasks:
            time.sleep(POLL_S)
    finally:
        server.stop()
    with closing(sqlite3.connect(data_dir / "aerovision.db")) as db:
        rows = db.execute("SELECT created_at, finished_at FROM tasks").fetchall()
    created = [datetime.fromisoformat(c) for c, _ in rows]
    finished = [datetime.fromisoformat(f) for _, f in rows]
    elapsed = (max(finished) - began).total_seconds()
    latencies = [(f - c).total_seconds() for c, f in zip(created, finished, strict=True)]
    return tasks / elapsed, latencies


def _drain(root: Path, workers: int, tasks: int) -> float:
    """Tasks/s of ``workers`` processes draining a queue filled beforehand (the API idle)."""
    image, template = _small_task_inputs()
    data_dir = Path(tempfile.mkdtemp(dir=root)) / "data"
    filler = ServeProcess(data_dir, workers=0).start()
    try:
        for _ in range(tasks):
            _submit(filler, image, template)
    finally:
        filler.stop()
    server = ServeProcess(data_dir, workers=workers).start()
    try:
        began, at_start = time.perf_counter(), _finished(server)
        while (done := _finished(server)) < tasks:
            time.sleep(POLL_S)
        elapsed = time.perf_counter() - began
    finally:
        server.stop()
    return (done - at_start) / elapsed


T = TypeVar("T")


def _alternating(measure: Callable[[int], T], rounds: int) -> dict[int, list[T]]:
    results: dict[int, list[T]] = {1: [], 2: []}
    for _ in range(rounds):
        for workers in (1, 2):
            results[workers].append(measure(workers))
    return results


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000


def _throughput_rows(root: Path, tasks: int, rounds: int) -> list[dict[str, object]]:
    runs = _alternating(lambda workers: _run(root, workers, tasks), rounds)
    median = {w: sorted(results)[len(results) // 2] for w, results in runs.items()}
    (rate_1, lat_1), (rate_2, lat_2) = median[1], median[2]
    every = {w: " ".join(f"{rate:.0f}" for rate, _ in runs[w]) for w in runs}
    return [
        {
            "name": f"throughput: {tasks} small template tasks, 1 → 2 workers (tasks/s)",
            "baseline_ms": rate_1,
            "aerovision_ms": rate_2,
            "ratio": rate_2 / rate_1,
            "note": f"medians of {rounds} rounds (1 worker: {every[1]}; 2: {every[2]}); "
            "submitted while they run, the API and this client on the same 2 cores",
        },
        {
            "name": "latency under load, 1 worker: p50 / p95 created→done (ms)",
            "baseline_ms": _pct(lat_1, 50),
            "aerovision_ms": _pct(lat_1, 95),
            "ratio": _pct(lat_1, 95) / _pct(lat_1, 50),
            "note": "all tasks submitted at once, so latency includes queueing",
        },
        {
            "name": "latency under load, 2 workers: p50 / p95 created→done (ms)",
            "baseline_ms": _pct(lat_2, 50),
            "aerovision_ms": _pct(lat_2, 95),
            "ratio": _pct(lat_2, 95) / _pct(lat_2, 50),
            "note": "all tasks submitted at once, so latency includes queueing",
        },
    ]


def _drain_rows(root: Path, tasks: int, rounds: int) -> list[dict[str, object]]:
    runs = _alternating(lambda workers: _drain(root, workers, tasks), rounds)
    rate_1, rate_2 = statistics.median(runs[1]), statistics.median(runs[2])
    every = {w: " ".join(f"{rate:.0f}" for rate in runs[w]) for w in runs}
    return [
        {
            "name": f"drain: {tasks} queued small template tasks, 1 → 2 workers (tasks/s)",
            "baseline_ms": rate_1,
            "aerovision_ms": rate_2,
            "ratio": rate_2 / rate_1,
            "note": f"medians of {rounds} rounds (1 worker: {every[1]}; 2: {every[2]}); queue "
            "filled first, the API running on the same 2 cores; goal ratio ≥ 1.6",
        }
    ]


def bench_throughput(
    tasks: int = 400, drain_tasks: int = 800, rounds: int = ROUNDS
) -> list[dict[str, object]]:
    """Both ways of loading the service; every run's files are kept until the end."""
    with tempfile.TemporaryDirectory() as tmp:
        return _throughput_rows(Path(tmp), tasks, rounds) + _drain_rows(
            Path(tmp), drain_tasks, rounds
        )
