"""Libraries at 1k / 10k / 100k images: add throughput, search p50/p95 per mode, recall,
memory per image — side by side with brute force.

A library of ``n`` small photographs (crops of scikit-image's, tinted and flipped, 80–140
px) is made on a real ``aerovision serve``: the first ``HTTP_FILL`` through
``POST …/images`` (batches of 20, two at a time: the add throughput a client sees), the
rest by the same describe-and-insert code in this process (the engine in two
processes, the store's ``add_image``), so that 100k images take minutes, not hours.
Queries, through ``POST …/search``: near-duplicates of library images (JPEG, resize,
crop, gamma), objects (a library image warped into another photograph), and distractors
(for ``similar``). Baselines, on the same queries: duplicates by an imagededup-style
perceptual hash over every library image (numpy Hamming); objects by bare OpenCV over
every library image (SIFT + FLANN + ratio test + MAGSAC per image, measured on
``OBJECT_BASELINE_SAMPLE`` images and scaled to ``n``: its recall is the best any
verification can do); similar by a numpy cosine over every image's descriptor.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import requests
from tests import library_truth as truth
from tests.server import ServeProcess

from aerovision.engine import imageio, retrieval
from aerovision.libraries.pool import describe_file
from aerovision.store import libraries as store
from aerovision.store.db import Database
from aerovision.store.files import LocalFileStore
from aerovision.store.scope import DEFAULT

Row = dict[str, Any]
SIZES = (1_000, 10_000, 100_000)
HTTP_FILL = 10_000
OBJECT_BASELINE_SAMPLE = 200
QUERIES = {"duplicate": 40, "object": 20, "similar": 20}


def _images(count: int, seed: int = 0) -> Iterator[bytes]:
    rng = np.random.default_rng(seed)
    photos = [truth.colour(truth.photo(name)) for name in truth.LIBRARY_PHOTOS]
    for _ in range(count):
        photo = photos[int(rng.integers(len(photos)))]
        h, w = photo.shape[:2]
        side = int(rng.integers(80, 141))
        y, x = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
        crop = photo[y:y + side, x:x + side].astype(np.int16) + rng.integers(-40, 40, 3)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if rng.random() < 0.5:
            crop = np.rot90(crop)
        yield bytes(cv2.imencode(".png", np.clip(crop, 0, 255).astype(np.uint8))[1].tobytes())


def _sign(data: bytes) -> dict[str, int]:
    """The content signature the service gives the file."""
    image = imageio.decode_image(data, max_pixels=10**8)
    sign1, sign2 = retrieval.split_contsign(retrieval.contsign(image))
    return {"sign1": sign1, "sign2": sign2}


def _decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def _http_fill(server: ServeProcess, library_id: str, files: list[bytes]) -> float:
    """Images per second through the add route."""
    url = server.url(f"/api/v1/libraries/{library_id}/images")
    batches = [files[i:i + 20] for i in range(0, len(files), 20)]

    def send(batch: list[bytes]) -> None:
        answer = requests.post(url, files=[("image", (f"{i}.png", d)) for i, d in
                                           enumerate(batch)], data={"dedup": "off"}, timeout=600)
        answer.raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(send, batches))
    return len(files) / (time.perf_counter() - started)


def _direct_fill(data_dir: Path, library_id: str, files: list[bytes]) -> float:
    """Images per second by the service's own describe and insert, in this process."""
    db = Database(f"sqlite:///{data_dir / 'aerovision.db'}")
    files_store = LocalFileStore(data_dir)
    started = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        described = pool.map(describe_file, files, [10**8] * len(files), chunksize=64)
        for data, one in zip(files, described, strict=True):
            d = one.description
            new = store.NewImage(
                contsign=retrieval.to_signed(d.contsign), phash=retrieval.to_signed(d.phash),
                vector=d.vector.astype("<f4").tobytes(), features=d.features.to_bytes(),
                width=d.width, height=d.height, brief="", tags=[], external_id=None,
                file_key="", thumbnail_key="",
            )
            keys = (f"libraries/{library_id}/images/{new.image_id}.png",
                    f"libraries/{library_id}/thumbnails/{new.image_id}.jpg")
            files_store.write(keys[0], data)
            files_store.write(keys[1], one.thumbnail)
            new = store.NewImage(**{**new.__dict__, "file_key": keys[0], "thumbnail_key": keys[1]})
            store.add_image(db, DEFAULT, library_id, new, refuse_same_sign=False)
    rate = len(files) / (time.perf_counter() - started)
    db.dispose()
    return rate


def _queries(files: list[bytes], rng: np.random.Generator) -> dict[str, list[tuple[bytes, Any]]]:
    """Per mode: (query file, what it should find: the library file's number, or None)."""
    out: dict[str, list[tuple[bytes, Any]]] = {"duplicate": [], "object": [], "similar": []}
    for _ in range(QUERIES["duplicate"]):
        n = int(rng.integers(len(files)))
        _, variant = truth.near_duplicate(_decode(files[n]), rng)
        out["duplicate"].append((truth.encode(variant, ".jpg"), n))
    for i in range(QUERIES["object"]):
        n = int(rng.integers(len(files)))
        case = truth.object_query(_decode(files[n]), rng, i)
        out["object"].append((truth.encode(case.query), n))
    for image in truth.distractors()[: QUERIES["similar"]]:
        out["similar"].append((truth.encode(image), None))
    return out


def _search(server: ServeProcess, library_id: str, data: bytes, mode: str) -> tuple[float, Any]:
    started = time.perf_counter()
    answer = requests.post(server.url(f"/api/v1/libraries/{library_id}/search"),
                           files={"image": ("q.png", data)}, data={"mode": mode, "limit": 5},
                           timeout=600)
    answer.raise_for_status()
    return time.perf_counter() - started, answer.json()


def _ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000) if values else math.nan


def _phash_baseline(files: list[bytes], queries: list[tuple[bytes, Any]]) -> tuple[float, float]:
    """imagededup's PHash (32×32 DCT, 8×8 low frequencies against their median), every
    library image's hash compared with numpy: (p50 ms per query, recall@1)."""
    def phash(image: np.ndarray) -> int:
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        dct = cv2.dct(cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32))
        low = dct[:8, :8].reshape(64)
        return int.from_bytes(np.packbits(low > np.median(low)).tobytes(), "big")

    hashes = np.array([phash(_decode(f)) for f in files], np.uint64)
    times, hits = [], 0
    for data, expected in queries:
        started = time.perf_counter()
        value = phash(_decode(data))
        best = int(np.argmin(np.bitwise_count(hashes ^ np.uint64(value))))
        times.append(time.perf_counter() - started)
        hits += best == expected
    return _ms(times, 50), hits / len(queries)


def _object_baseline(files: list[bytes], queries: list[tuple[bytes, Any]], n: int
                     ) -> tuple[float, float]:
    """Bare OpenCV against every library image: (p50 ms scaled to ``n``, recall@1 on a
    library of the sample plus the expected images)."""
    sift = cv2.SIFT.create()
    rng = np.random.default_rng(1)
    sample = sorted(set(rng.choice(len(files), min(OBJECT_BASELINE_SAMPLE, len(files)),
                                   replace=False).tolist()) | {e for _, e in queries})
    described = {i: sift.detectAndCompute(cv2.cvtColor(_decode(files[i]), cv2.COLOR_BGR2GRAY),
                                          None) for i in sample}
    matcher = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 5}, {"checks": 50})
    times, hits = [], 0
    for data, expected in queries:
        started = time.perf_counter()
        kq, dq = sift.detectAndCompute(cv2.cvtColor(_decode(data), cv2.COLOR_BGR2GRAY), None)
        best, best_inliers = None, 0
        for i, (kt, dt) in described.items():
            if dt is None or dq is None or len(dt) < 2:
                continue
            pairs = matcher.knnMatch(dt, dq, k=2)
            good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.75 * p[1].distance]
            if len(good) < 8:
                continue
            src = np.array([kt[m.queryIdx].pt for m in good], np.float32)
            dst = np.array([kq[m.trainIdx].pt for m in good], np.float32)
            _, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, 5.0)
            inliers = int(mask.sum()) if mask is not None else 0
            if inliers > best_inliers:
                best, best_inliers = i, inliers
        times.append((time.perf_counter() - started) * n / len(described))
        hits += best == expected
    return _ms(times, 50), hits / len(queries)


def _vector_baseline(server_vectors: np.ndarray, queries: list[tuple[bytes, Any]]) -> float:
    times = []
    for data, _ in queries:
        started = time.perf_counter()
        vector = retrieval.global_vector(_decode(data))
        np.argsort(-(server_vectors @ vector))[:5]
        times.append(time.perf_counter() - started)
    return _ms(times, 50)


def bench_libraries(sizes: tuple[int, ...] = SIZES) -> list[Row]:
    rows: list[Row] = []
    every = list(_images(max(sizes)))
    for n in sizes:
        files = every[:n]
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp) / "data"
            env = {"AEROVISION_LIBRARY_WORKERS": "2"}
            server = ServeProcess(data_dir, workers=0, env=env).start()
            try:
                library_id = requests.post(server.url("/api/v1/libraries"),
                                           json={"name": f"bench-{n}"}, timeout=30
                                           ).json()["library_id"]
                http_n = min(n, HTTP_FILL)
                http_rate = _http_fill(server, library_id, files[:http_n])
                direct_rate = _direct_fill(data_dir, library_id, files[http_n:]) \
                    if n > http_n else math.nan
                queries = _queries(files, np.random.default_rng(n))
                _search(server, library_id, queries["similar"][0][0], "similar")  # warm
                shown = requests.get(server.url(f"/api/v1/libraries/{library_id}"),
                                     timeout=600).json()
                db_bytes = (data_dir / "aerovision.db").stat().st_size
                for mode, cases in queries.items():
                    times, hits = [], 0
                    for data, expected in cases:
                        elapsed, found = _search(server, library_id, data, mode)
                        times.append(elapsed)
                        if expected is not None and found["results"]:
                            top = found["results"][0]
                            hits += top["match_type"] == mode and top["contsign"] == _sign(
                                files[expected])
                    rows.append({"n": n, "mode": mode, "p50": _ms(times, 50),
                                 "p95": _ms(times, 95),
                                 "recall": hits / len(cases) if mode != "similar" else math.nan})
                vectors = np.stack([retrieval.global_vector(_decode(f)) for f in files[:2000]])
                vectors = np.tile(vectors, (math.ceil(n / len(vectors)), 1))[:n]
                base = {
                    "duplicate": _phash_baseline(files, queries["duplicate"]),
                    "object": _object_baseline(files, queries["object"], n),
                    "similar": (_vector_baseline(vectors, queries["similar"]), math.nan),
                }
                for row in rows[-3:]:
                    row["baseline_p50"], row["baseline_recall"] = base[row["mode"]]
                rows[-3]["add_http"] = http_rate
                rows[-3]["add_direct"] = direct_rate
                rows[-3]["index_bytes"] = shown["index"]["size_bytes"] / n
                rows[-3]["db_bytes"] = db_bytes / n
            finally:
                server.stop()
    return rows


def table(rows: list[Row]) -> str:
    lines = [f"{'images':>7} {'mode':<10} {'p50':>9} {'p95':>9} {'recall@1':>8} "
             f"{'brute p50':>10} {'brute recall':>12} {'speed-up':>8}  notes"]
    for row in rows:
        notes = ""
        if "add_http" in row:
            direct = "" if math.isnan(row["add_direct"]) else \
                f", {row['add_direct']:.0f}/s engine+store (past {HTTP_FILL})"
            notes = (f"add {row['add_http']:.0f} images/s by HTTP{direct}; memory per image: "
                     f"index {row['index_bytes']:.0f} B, database {row['db_bytes'] / 1024:.1f} KB")
        recall = "" if math.isnan(row["recall"]) else f"{row['recall']:.2f}"
        base_recall = "" if math.isnan(row["baseline_recall"]) else f"{row['baseline_recall']:.2f}"
        lines.append(
            f"{row['n']:>7} {row['mode']:<10} {row['p50']:>6.1f} ms {row['p95']:>6.1f} ms "
            f"{recall:>8} {row['baseline_p50']:>7.1f} ms {base_recall:>12} "
            f"{row['baseline_p50'] / row['p50']:>7.1f}×  {notes}"
        )
    return "\n".join(lines)


def sizes_from_env() -> tuple[int, ...]:
    text = os.environ.get("AEROVISION_BENCH_LIBRARY_SIZES", "")
    return tuple(int(part) for part in text.split(",") if part.strip()) or SIZES
