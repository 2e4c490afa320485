"""Service overhead: submit→done latency of a small task minus the engine's own time."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import requests
from tests.server import ServeProcess

from aerovision.jobs.runners import Job, run_job
from aerovision.store.files import LocalFileStore


def _small_task_inputs() -> tuple[bytes, bytes]:
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (0, 0), 2)
    template = image[100:132, 150:182].copy()
    return cv2.imencode(".png", image)[1].tobytes(), cv2.imencode(".png", template)[1].tobytes()


def _engine_ms(image: bytes, template: bytes, repeats: int) -> float:
    """The same work a worker's child does (decode, match, render, thumbnails), in process."""
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalFileStore(Path(tmp))
        store.write("uploads/u/scene.png", image)
        store.write("uploads/u/part.png", template)
        job = Job(
            uid="u", tool="template", input_fields=("image", "template"),
            params={"method": "TM_CCOEFF_NORMED", "threshold": 0.8, "max_results": 20,
                    "use_grayscale": True},
            input_files=("uploads/u/scene.png", "uploads/u/part.png"),
            thumbnails=("thumbnails/u/scene.png", "thumbnails/u/part.png"),
            results_prefix="results/u", max_image_pixels=100_000_000,
        )
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            run_job(job, store)
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def bench_service(repeats: int = 20) -> list[dict[str, object]]:
    image, template = _small_task_inputs()
    with tempfile.TemporaryDirectory() as tmp:
        server = ServeProcess(Path(tmp) / "data", workers=1).start()
        try:
            latencies = []
            for _ in range(repeats + 2):
                started = time.perf_counter()
                uid = requests.post(
                    server.url("/api/v1/match/template"),
                    files={"image": ("scene.png", image), "template": ("part.png", template)},
                    timeout=30,
                ).json()["uid"]
                while requests.get(server.url(f"/api/v1/tasks/{uid}"), timeout=5).json()[
                    "status"
                ] not in ("done", "error"):
                    time.sleep(0.002)
                latencies.append(time.perf_counter() - started)
        finally:
            server.stop()
    latency_ms = statistics.median(latencies[2:]) * 1000  # the first two warm up
    engine_ms = _engine_ms(image, template, repeats)
    return [
        {
            "name": "service: small template task (320x240, t32), submit→done",
            "baseline_ms": engine_ms,
            "aerovision_ms": latency_ms,
            "ratio": latency_ms / engine_ms,
            "note": f"overhead {latency_ms - engine_ms:.1f} ms (latency minus engine time)",
        }
    ]
