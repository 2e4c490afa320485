"""Pictures after the verdict: a task is ``done`` as soon as its result is known, and
every file it lists downloads right after ``done``, on both backends.

Most tools draw their pictures only when first downloaded (the download asks, a
worker runs the task again for its files, the download waits); thumbnails are
written right after the verdict. A client that polls to ``done`` and downloads every
listed file at once must always get them all, complete, with the right sizes.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import cv2
import numpy as np
import requests

from tests.images import encode, photo, scene_with_patch
from tests.server import ServeProcess


def _poll_done(server: ServeProcess, uid: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll as fast as a user would (every 2 ms) until the task has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task: dict[str, Any] = requests.get(
            server.url(f"/api/v1/tasks/{uid}"), timeout=10
        ).json()
        if task["status"] in ("done", "error"):
            return task
        time.sleep(0.002)
    raise AssertionError(f"task {uid} not done within {timeout} s")


def _picture(answer: requests.Response) -> np.ndarray:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    assert int(answer.headers["content-length"]) == len(answer.content)
    image = cv2.imdecode(np.frombuffer(answer.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None, "not a complete PNG"
    return image


def _submit(server: ServeProcess, tool: str, files: dict[str, tuple[str, bytes]],
            data: dict[str, str] | None = None) -> str:
    response = requests.post(server.url(f"/api/v1/match/{tool}"), files=files,
                             data=data or {}, timeout=60)
    assert response.status_code == 201, response.text
    uid: str = response.json()["uid"]
    return uid


def test_every_file_of_a_template_task_downloads_right_after_done(
    server: ServeProcess,
) -> None:
    scene, patch, [(x, y)] = scene_with_patch(1)
    uid = _submit(server, "template", {"image": ("scene.png", encode(scene)),
                                       "template": ("part.png", encode(patch))})
    task = _poll_done(server, uid)
    assert task["status"] == "done", task["error"]
    assert (task["result_data"]["matches"][0]["x"], task["result_data"]["matches"][0]["y"]) == (
        x, y)
    assert set(task["result_data"]["timings"]) == {"read_ms", "decode_ms", "match_ms"}
    assert task["result_files"] == [f"results/{uid}/matches.png", f"results/{uid}/heatmap.png"]

    shapes = {key: _picture(requests.get(server.url(f"/{key}"), timeout=60)).shape
              for key in task["result_files"] + task["thumbnails"]}

    assert shapes == {
        f"results/{uid}/matches.png": (480, 640, 3),
        f"results/{uid}/heatmap.png": (480, 640, 3),
        task["thumbnails"][0]: (192, 256, 3),
        task["thumbnails"][1]: (48, 48, 3),
    }
    # the result did not change when the pictures were made
    assert requests.get(server.url(f"/api/v1/tasks/{uid}"), timeout=10).json() == task


def test_downloads_at_once_of_every_picture_get_them_all_from_one_run(
    server: ServeProcess,
) -> None:
    """A page showing a result asks for all its pictures together: the task runs again
    once for them, and every download gets its complete file."""
    scene, patch, _ = scene_with_patch(2, seed=3)
    uid = _submit(server, "template", {"image": ("scene.png", encode(scene)),
                                       "template": ("part.png", encode(patch))})
    task = _poll_done(server, uid)
    assert task["status"] == "done", task["error"]
    keys = task["result_files"] * 3 + task["thumbnails"]
    answers: dict[int, requests.Response] = {}

    def fetch(index: int, key: str) -> None:
        answers[index] = requests.get(server.url(f"/{key}"), timeout=60)

    threads = [threading.Thread(target=fetch, args=(i, k)) for i, k in enumerate(keys)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    bodies: dict[str, set[bytes]] = {}
    for index, key in enumerate(keys):
        _picture(answers[index])
        bodies.setdefault(key, set()).add(answers[index].content)
    assert all(len(seen) == 1 for seen in bodies.values())  # the same file each time
    runs = re.findall(rf"task {uid} \(template\): writing its files", server.log())
    assert len(runs) == 1, runs


def test_a_feature_task_and_an_inspect_task_give_their_pictures_right_after_done(
    server: ServeProcess,
) -> None:
    query = cv2.resize(photo("coffee"), (400, 300))
    h = np.array([[0.9, 0.1, 40.0], [-0.05, 0.95, 20.0], [1e-5, 1e-5, 1.0]])
    train = cv2.warpPerspective(query, h, (480, 360))
    feature = _submit(server, "feature", {"query_image": ("q.png", encode(query)),
                                          "train_image": ("t.jpg", encode(train, ".jpg"))})
    inspect = _submit(server, "inspect", {"image": ("i.png", encode(query))})

    done = _poll_done(server, feature)
    assert done["status"] == "done" and done["result_data"]["found"] is True
    [matches] = done["result_files"]
    # query and train side by side (and a caption)
    height, width, _ = _picture(requests.get(server.url(f"/{matches}"), timeout=60)).shape
    assert height >= 360 and width >= 400 + 480
    assert _picture(requests.get(server.url(f"/{done['thumbnails'][0]}"), timeout=60)).shape == (
        192, 256, 3)

    described = _poll_done(server, inspect)
    assert described["status"] == "done"
    [histogram] = described["result_files"]
    assert _picture(requests.get(server.url(f"/{histogram}"), timeout=60)).ndim == 3


def test_a_file_no_task_owes_is_a_404_at_once(server: ServeProcess) -> None:
    scene, patch, _ = scene_with_patch(1)
    uid = _submit(server, "template", {"image": ("scene.png", encode(scene)),
                                       "template": ("part.png", encode(patch))})
    assert _poll_done(server, uid)["status"] == "done"
    started = time.monotonic()
    for key in (f"results/{uid}/other.png", f"thumbnails/{uid}/other.png",
                "results/no-such-task/matches.png"):
        answer = requests.get(server.url(f"/{key}"), timeout=10)
        assert answer.status_code == 404 and answer.json() == {"detail": "File not found"}
    assert time.monotonic() - started < 5  # no waiting for what nothing will write
