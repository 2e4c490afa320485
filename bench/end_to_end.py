"""End to end: what a user waits for (submit → ``done``) against the bare OpenCV pipeline.

Both sides start from the same encoded files: the bare side decodes them and makes
the OpenCV calls the tool makes (``matchTemplate`` and ``minMaxLoc``; detect,
match, ratio test, ``findHomography``); the service side posts them to a real
``aerovision serve`` (one worker) and polls the task every 2 ms until it is done.
Rows: service p50 and p90 beside bare p50, and their ratio; then the overhead of a
single small task: submit → ``done`` minus the task's own time (the stages its
``result_data.timings`` reports: reading, decoding, matching).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import requests
from skimage import data as photos
from tests.server import ServeProcess

Row = dict[str, Any]
POLL_S = 0.002


def _encode(image: np.ndarray) -> bytes:
    return bytes(cv2.imencode(".png", image)[1].tobytes())


def _template_case(width: int, height: int) -> tuple[bytes, bytes]:
    """A photo of ``width``×``height`` holding a 64 px patch three times."""
    astronaut = photos.astronaut()  # type: ignore[no-untyped-call]
    scene = cv2.resize(cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR), (width, height))
    patch = scene[height // 3 : height // 3 + 64, width // 2 : width // 2 + 64].copy()
    for x, y in ((width // 8, height // 8), (width - 200, height - 200)):
        scene[y : y + 64, x : x + 64] = patch
    return _encode(scene), _encode(patch)


def _feature_case() -> tuple[bytes, bytes]:
    """A 1152×864 photo and the same photo turned by a homography."""
    coffee = photos.coffee()  # type: ignore[no-untyped-call]
    query = cv2.resize(cv2.cvtColor(coffee, cv2.COLOR_RGB2BGR), (1152, 864))
    h = np.array([[0.9, 0.12, 60.0], [-0.08, 0.95, 40.0], [1e-5, 2e-5, 1.0]])
    train = cv2.warpPerspective(query, h, (1152, 864))
    return _encode(query), _encode(train)


def _decode_grey(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    return image


def _bare_template(image: bytes, template: bytes) -> None:
    scene, patch = _decode_grey(image), _decode_grey(template)
    cv2.minMaxLoc(cv2.matchTemplate(scene, patch, cv2.TM_CCOEFF_NORMED))


def _bare_feature(detector: str, matcher: str) -> Callable[[bytes, bytes], None]:
    def run(query: bytes, train: bytes) -> None:
        q, t = _decode_grey(query), _decode_grey(train)
        made: cv2.Feature2D = (
            cv2.SIFT.create() if detector == "SIFT" else cv2.ORB.create(nfeatures=5000)
        )
        kq, dq = made.detectAndCompute(q, None)
        kt, dt = made.detectAndCompute(t, None)
        if matcher == "FLANN":
            match: cv2.DescriptorMatcher = cv2.FlannBasedMatcher(
                {"algorithm": 1, "trees": 5}, {"checks": 50}
            )
        else:
            match = cv2.BFMatcher(cv2.NORM_L2 if detector == "SIFT" else cv2.NORM_HAMMING)
        pairs = match.knnMatch(dq, dt, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.75 * p[1].distance]
        src = np.array([kq[m.queryIdx].pt for m in good], dtype=np.float32).reshape(-1, 1, 2)
        dst = np.array([kt[m.trainIdx].pt for m in good], dtype=np.float32).reshape(-1, 1, 2)
        cv2.findHomography(src, dst, cv2.USAC_MAGSAC, 5.0)

    return run


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def _submit_and_wait(
    server: ServeProcess, tool: str, files: dict[str, Any], form: dict[str, str]
) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    url = server.url(f"/api/v1/match/{tool}")
    response = requests.post(url, files=files, data=form, timeout=60)
    uid = response.json()["uid"]
    while True:
        task = requests.get(server.url(f"/api/v1/tasks/{uid}"), timeout=10).json()
        if task["status"] in ("done", "error"):
            break
        time.sleep(POLL_S)
    elapsed = time.perf_counter() - started
    if task["status"] != "done":
        raise RuntimeError(f"{tool} task ended in error: {task['error']}")
    return elapsed, task


def _overhead(server: ServeProcess, repeats: int) -> Row:
    """A small template task (320×240, 32 px): submit → done minus its own stages."""
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (0, 0), 2)
    files = {"image": ("scene.png", _encode(image)),
             "template": ("part.png", _encode(image[100:132, 150:182].copy()))}
    for _ in range(2):
        _submit_and_wait(server, "template", files, {})
    waits, own = [], []
    for _ in range(repeats):
        elapsed, task = _submit_and_wait(server, "template", files, {})
        waits.append(elapsed)
        own.append(sum(task["result_data"]["timings"].values()) / 1000)
    overheads = [w - o for w, o in zip(waits, own, strict=True)]
    return {
        "name": "single small task (320x240, 32 px): overhead",
        "baseline_ms": _p(own, 50),
        "aerovision_ms": _p(waits, 50),
        "p90_ms": _p(waits, 90),
        "ratio": _p(waits, 50) / _p(own, 50),
        "overhead_ms": _p(overheads, 50),
    }


def table(rows: list[Row]) -> str:
    """The end-to-end table: service p50 and p90, bare p50, ratio; and the overhead."""
    lines = [f"{'scenario':<52} {'service p50':>11} {'service p90':>11} {'bare p50':>9} "
             f"{'ratio':>6}"]
    for row in rows:
        if "overhead_ms" in row:
            lines.append(
                f"{row['name']:<52} {row['aerovision_ms']:>8.1f} ms {row['p90_ms']:>8.1f} ms "
                f"{'':>9} {'':>6}  the task's own time {row['baseline_ms']:.1f} ms, "
                f"overhead p50 {row['overhead_ms']:.1f} ms (submit→done minus own time)"
            )
            continue
        lines.append(
            f"{row['name']:<52} {row['aerovision_ms']:>8.1f} ms {row['p90_ms']:>8.1f} ms "
            f"{row['baseline_ms']:>6.1f} ms {row['ratio']:>5.2f}×"
        )
    return "\n".join(lines)


def bench_end_to_end(repeats: int = 10) -> list[Row]:
    big, big_t = _template_case(1920, 1080)
    small, small_t = _template_case(640, 480)
    query, train = _feature_case()
    cases: list[tuple[str, str, dict[str, Any], dict[str, str], Callable[[], None]]] = [
        ("template 1920x1080, 64 px template, 3 occurrences", "template",
         {"image": ("scene.png", big), "template": ("part.png", big_t)}, {},
         lambda: _bare_template(big, big_t)),
        ("template 640x480, 64 px template, 3 occurrences", "template",
         {"image": ("scene.png", small), "template": ("part.png", small_t)}, {},
         lambda: _bare_template(small, small_t)),
    ]
    for detector, matcher in (("SIFT", "FLANN"), ("ORB", "BFMatcher")):
        bare = _bare_feature(detector, matcher)
        cases.append((
            f"feature {detector}+{matcher} 1152x864", "feature",
            {"query_image": ("query.png", query), "train_image": ("train.png", train)},
            {"detector": detector, "matcher": matcher},
            lambda bare=bare: bare(query, train),  # type: ignore[misc]
        ))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = ServeProcess(Path(tmp) / "data", workers=1).start()
        try:
            for name, tool, files, form, bare_run in cases:
                for _ in range(2):  # warm-up: the worker's child, caches
                    _submit_and_wait(server, tool, files, form)
                service = [
                    _submit_and_wait(server, tool, files, form)[0] for _ in range(repeats)
                ]
                bare_times = []
                for _ in range(repeats):
                    started = time.perf_counter()
                    bare_run()
                    bare_times.append(time.perf_counter() - started)
                service_ms, bare_ms = _p(service, 50), _p(bare_times, 50)
                rows.append({
                    "name": name,
                    "baseline_ms": bare_ms,
                    "aerovision_ms": service_ms,
                    "p90_ms": _p(service, 90),
                    "ratio": service_ms / bare_ms,
                })
            rows.append(_overhead(server, repeats))
        finally:
            server.stop()
    return rows

