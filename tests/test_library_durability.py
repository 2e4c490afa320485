"""Libraries never lose an acknowledged image: a server killed while 1,000 images are
being added comes back with every image whose add was answered 201 (and none half
there); index files deleted or damaged by hand are rebuilt from the database with the
same search results; and adds and deletes through one API process are in the next
search of another."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import requests

from tests import library_truth as truth
from tests.conftest import backend_env
from tests.server import ServeProcess

IMAGES = 1000


def _small_images(count: int, seed: int = 0) -> Iterator[bytes]:
    """``count`` different small photographs: crops of scikit-image's, flipped and tinted."""
    rng = np.random.default_rng(seed)
    photos = [truth.colour(truth.photo(name)) for name in truth.LIBRARY_PHOTOS]
    for _ in range(count):
        photo = photos[int(rng.integers(len(photos)))]
        h, w = photo.shape[:2]
        side = int(rng.integers(80, 140))
        y, x = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
        crop = photo[y:y + side, x:x + side].astype(np.int16)
        crop = crop + rng.integers(-30, 30, 3)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        yield bytes(cv2.imencode(".png", np.clip(crop, 0, 255).astype(np.uint8))[1].tobytes())


@pytest.fixture
def deployment(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[
        tuple[Path, dict[str, str]]]:
    with backend_env(backend, request) as env:
        yield tmp_path / "data", {**env, "AEROVISION_LIBRARY_WORKERS": "2"}


def _library(server: ServeProcess, name: str) -> str:
    answer = requests.post(server.url("/api/v1/libraries"), json={"name": name}, timeout=30)
    assert answer.status_code == 201, answer.text
    library_id: str = answer.json()["library_id"]
    return library_id


def _search(server: ServeProcess, library_id: str, image: bytes, mode: str = "duplicate",
            **fields: Any) -> list[dict[str, Any]]:
    answer = requests.post(server.url(f"/api/v1/libraries/{library_id}/search"),
                           files={"image": ("q.png", image)}, data={"mode": mode, **fields},
                           timeout=120)
    assert answer.status_code == 200, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


def _all_images(server: ServeProcess, library_id: str) -> list[dict[str, Any]]:
    images: list[dict[str, Any]] = []
    while True:
        page = requests.get(server.url(f"/api/v1/libraries/{library_id}/images"),
                            params={"offset": len(images), "limit": 1000}, timeout=60).json()
        images += page["images"]
        if len(images) >= page["total"]:
            return images


def test_a_killed_server_keeps_every_acknowledged_image(
    deployment: tuple[Path, dict[str, str]],
) -> None:
    data_dir, env = deployment
    server = ServeProcess(data_dir, workers=0, env=env).start()
    library_id = _library(server, "bulk")
    files = list(_small_images(IMAGES))
    acknowledged: dict[int, str] = {}  # file number → image_id
    lock = threading.Lock()
    stop = threading.Event()

    def add(numbers: range) -> None:
        for start in range(numbers.start, numbers.stop, 5):
            if stop.is_set():
                return
            batch = list(range(start, min(start + 5, numbers.stop)))
            try:
                answer = requests.post(
                    server.url(f"/api/v1/libraries/{library_id}/images"),
                    files=[("image", (f"{n}.png", files[n])) for n in batch], timeout=120,
                )
            except requests.RequestException:
                return  # killed mid-request: nothing of this batch was acknowledged
            if answer.status_code != 201:
                return
            with lock:
                for n, entry in zip(batch, answer.json()["images"], strict=True):
                    assert "error" not in entry, entry
                    acknowledged[n] = entry["image_id"]

    threads = [threading.Thread(target=add, args=(range(0, IMAGES // 2),)),
               threading.Thread(target=add, args=(range(IMAGES // 2, IMAGES),))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 600
    while len(acknowledged) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.proc is not None
    os.killpg(server.proc.pid, signal.SIGKILL)  # the server, its pool, mid-add
    server.proc.wait(10)
    stop.set()
    for thread in threads:
        thread.join(130)
    assert 300 <= len(acknowledged) < IMAGES

    again = ServeProcess(data_dir, workers=0, env=env).start()
    try:
        present = _all_images(again, library_id)
        ids = {image["image_id"] for image in present}
        assert set(acknowledged.values()) <= ids  # every acknowledged image is there
        assert len(present) <= len(acknowledged) + 10  # at most the batches in flight
        for image in present:  # and none is half there: each has its file and thumbnail
            for key in (image["image"], image["thumbnail"]):
                assert requests.get(again.url("/" + key), timeout=30).status_code == 200, key
        sample = sorted(acknowledged)[::15]
        before = {}
        for n in sample:
            hits = _search(again, library_id, files[n], limit=1)
            assert hits and hits[0]["image_id"] == acknowledged[n], (n, hits[:1])
            before[n] = hits
        shown = requests.get(again.url(f"/api/v1/libraries/{library_id}"), timeout=30).json()
        assert shown["image_count"] == len(present)
        assert shown["index"] == {"state": "ready", "entries": len(present),
                                  "size_bytes": shown["index"]["size_bytes"]}
    finally:
        again.stop()

    # the index files deleted by hand: rebuilt from the database, same answers
    index_dir = data_dir / "index"
    files_there = list(index_dir.glob("*.npz"))
    assert files_there, "the index was saved"
    for path in files_there:
        path.unlink()
    rebuilt = ServeProcess(data_dir, workers=0, env=env).start()
    try:
        for n in sample:
            assert _search(rebuilt, library_id, files[n], limit=1) == before[n]
    finally:
        rebuilt.stop()
    # ... or damaged: a torn file is rebuilt too, never read as an empty index
    for path in index_dir.glob("*.npz"):
        path.write_bytes(path.read_bytes()[:100])
    damaged = ServeProcess(data_dir, workers=0, env=env).start()
    try:
        for n in sample[:5]:
            assert _search(damaged, library_id, files[n], limit=1) == before[n]
        assert "unusable" in damaged.log()
    finally:
        damaged.stop()


def test_another_api_process_sees_adds_deletes_and_tags_at_once(
    deployment: tuple[Path, dict[str, str]],
) -> None:
    data_dir, env = deployment
    first = ServeProcess(data_dir, workers=0, env=env).start()
    second = ServeProcess(data_dir, workers=0, env=env).start()
    try:
        library_id = _library(first, "shared")
        photos = truth.library_images()[:3]
        images = [truth.encode(image) for _, image in photos]
        assert _search(second, library_id, images[0]) == []  # the second has its index now
        added = requests.post(first.url(f"/api/v1/libraries/{library_id}/images"),
                              files=[("image", ("a.png", images[0])), ("image", ("b.png",
                                                                                 images[1]))],
                              timeout=120).json()["images"]
        hits = _search(second, library_id, images[0])
        assert [h["image_id"] for h in hits] == [added[0]["image_id"]]
        base = f"/api/v1/libraries/{library_id}/images"
        patched = requests.patch(second.url(f"{base}/{added[1]['image_id']}"),
                                 json={"tags": ["night"]}, timeout=30)
        assert patched.status_code == 200
        tagged = _search(first, library_id, images[1], tag="night")
        assert [h["image_id"] for h in tagged] == [added[1]["image_id"]]
        assert requests.delete(first.url(f"{base}/{added[0]['image_id']}"),
                               timeout=30).status_code == 204
        assert _search(second, library_id, images[0]) == []
        assert requests.delete(second.url(f"/api/v1/libraries/{library_id}"),
                               timeout=30).status_code == 204
        gone = requests.post(first.url(f"/api/v1/libraries/{library_id}/search"),
                             files={"image": ("q.png", images[1])}, timeout=60)
        assert gone.status_code == 404
    finally:
        second.stop()
        first.stop()
