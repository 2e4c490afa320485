"""POST /api/v1/match/feature end to end: the seed examples verbatim, geometry found."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import requests

from tests.api.seeds import run_fetch_example
from tests.images import encode, photo
from tests.receiver import Receiver
from tests.server import ServeProcess

SPEC_FIELDS = {"query_keypoints", "train_keypoints", "good_matches", "detector", "matcher"}
GEOMETRY = {"homography", "inliers", "inlier_ratio", "corners", "center", "found"}

CURL = """curl -X POST http://localhost:8888/api/v1/match/feature \\
  -F "query_image=@photo1.jpg" \\
  -F "train_image=@photo2.jpg"
"""
CURL_PARAMS = """curl -X POST http://localhost:8888/api/v1/match/feature \\
  -F "query_image=@photo1.jpg" \\
  -F "train_image=@photo2.jpg" \\
  -F "detector=ORB" \\
  -F "matcher=BFMatcher" \\
  -F "ratio_threshold=0.8" \\
  -F "max_matches=300"
"""
PYTHON = """
import requests
files = {
    "query_image": open("photo1.jpg", "rb"),
    "train_image": open("photo2.jpg", "rb"),
}
data = {
    "detector": "SIFT",
    "matcher": "FLANN",
    "ratio_threshold": "0.75",
    "max_matches": "200",
}
resp = requests.post(
    "http://localhost:8888/api/v1/match/feature",
    files=files, data=data,
)
task = resp.json()
result = requests.get(
    f"http://localhost:8888/api/v1/tasks/{task['uid']}"
).json()
"""
JAVASCRIPT = """
const form = new FormData();
form.append("query_image", fileInput1.files[0]);
form.append("train_image", fileInput2.files[0]);
form.append("detector", "SIFT");
form.append("ratio_threshold", "0.75");
const res = await fetch("/api/v1/match/feature", {
  method: "POST",
  body: form,
});
const task = await res.json();
const status = await fetch(`/api/v1/tasks/${task.uid}`);
const result = await status.json();
"""
WEBHOOK_EXAMPLE = """
import requests
BASE = "http://localhost:8888"
wh = requests.post(f"{BASE}/api/v1/webhooks", json={
    "url": "https://your-server.com/callback",
    "secret": "my-secret-key",
}).json()
task = requests.post(f"{BASE}/api/v1/match/feature", files={
    "query_image": open("photo1.jpg", "rb"),
    "train_image": open("photo2.jpg", "rb"),
}).json()
hooks = requests.get(f"{BASE}/api/v1/webhooks").json()
for h in hooks:
    print(f"  {h['id']} → {h['url']}")
requests.delete(f"{BASE}/api/v1/webhooks/{wh['id']}")
"""

# The query (an object cut from a photograph) sits in the train image under this homography.
H_TRUE = np.array([[0.9, -0.25, 120.0], [0.22, 0.88, 60.0], [0.0002, 0.0001, 1.0]])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("feature-files")
    query = photo("astronaut")[40:300, 120:380]
    backdrop = cv2.resize(photo("coffee"), (640, 480))
    warped = cv2.warpPerspective(query, H_TRUE, (640, 480))
    mask = cv2.warpPerspective(np.full(query.shape[:2], 255, np.uint8), H_TRUE, (640, 480))
    scene = np.where(mask[..., None] > 0, warped, backdrop)
    (folder / "photo1.jpg").write_bytes(encode(query, ".jpg"))
    (folder / "photo2.jpg").write_bytes(encode(scene, ".jpg"))
    return folder


def _local(text: str, server: ServeProcess) -> str:
    return text.replace("http://localhost:8888", server.base_url)


def _assert_located(task: dict[str, Any], server: ServeProcess, detector: str = "SIFT") -> None:
    assert task["status"] == "done", task["error"]
    data = task["result_data"]
    assert SPEC_FIELDS | GEOMETRY <= set(data)
    assert data["detector"] == detector
    assert all(isinstance(data[k], int) for k in ("query_keypoints", "train_keypoints", "good_matches"))
    assert data["good_matches"] > 20 and data["found"] is True
    h, w = 260, 260
    truth = cv2.perspectiveTransform(
        np.array([[[0, 0], [w, 0], [w, h], [0, h]]], np.float64), H_TRUE
    )[0]
    error = np.linalg.norm(np.array(data["corners"]) - truth, axis=1).mean()
    assert error < 5.0, error
    assert task["result_files"] == [f"results/{task['uid']}/matches.png"]
    picture = requests.get(server.url(f"/{task['result_files'][0]}"), timeout=60)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"


def test_seed_curl_examples_verbatim(server: ServeProcess, workdir: Path) -> None:
    def curl(command: str) -> dict[str, Any]:
        out = subprocess.run(["bash", "-c", _local(command, server)], cwd=workdir,
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    plain = curl(CURL)
    assert plain["status"] == "queued" and plain["tool"] == "feature"
    assert plain["params"] == {"detector": "SIFT", "matcher": "FLANN", "ratio_threshold": 0.75, "max_matches": 200}
    assert plain["input_files"] == [f"uploads/{plain['uid']}/photo1.jpg", f"uploads/{plain['uid']}/photo2.jpg"]
    assert plain["thumbnails"] == [f"thumbnails/{plain['uid']}/photo1.jpg", f"thumbnails/{plain['uid']}/photo2.jpg"]
    orb = curl(CURL_PARAMS)
    assert orb["params"] == {"detector": "ORB", "matcher": "BFMatcher", "ratio_threshold": 0.8, "max_matches": 300}
    _assert_located(server.wait_task(plain["uid"]), server)
    _assert_located(server.wait_task(orb["uid"]), server, "ORB")


def test_seed_python_example_verbatim(server: ServeProcess, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    namespace: dict[str, Any] = {}
    exec(compile(_local(PYTHON, server), "seed", "exec"), namespace)
    assert namespace["resp"].status_code == 201
    assert namespace["result"]["uid"] == namespace["task"]["uid"]
    _assert_located(server.wait_task(namespace["task"]["uid"]), server)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the fetch example")
def test_seed_javascript_example_verbatim(server: ServeProcess, workdir: Path) -> None:
    answer = run_fetch_example(
        JAVASCRIPT, base_url=server.base_url, cwd=workdir,
        inputs={"fileInput1": "photo1.jpg", "fileInput2": "photo2.jpg"}, result="{task, result}",
    )
    assert answer["task"]["params"]["detector"] == "SIFT"
    _assert_located(server.wait_task(answer["task"]["uid"]), server)


def test_seed_webhook_example_verbatim(
    server: ServeProcess, workdir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The seed's register → submit → list → delete flow (its receiver URL is not
    reachable from here, so delivery itself is tested with local receivers elsewhere)."""
    monkeypatch.chdir(workdir)
    namespace: dict[str, Any] = {}
    exec(compile(_local(WEBHOOK_EXAMPLE, server), "seed", "exec"), namespace)
    assert namespace["wh"]["id"].startswith("wh_")
    assert namespace["task"]["tool"] == "feature"
    assert f"{namespace['wh']['id']} → https://your-server.com/callback" in capsys.readouterr().out
    remaining = requests.get(server.url("/api/v1/webhooks"), timeout=10).json()
    assert namespace["wh"]["id"] not in [h["id"] for h in remaining]
    _assert_located(server.wait_task(namespace["task"]["uid"]), server)


def test_feature_task_is_delivered_to_a_webhook(server: ServeProcess, workdir: Path) -> None:
    receiver = Receiver().start()
    hook = requests.post(server.url("/api/v1/webhooks"), json={"url": receiver.url}, timeout=10).json()
    try:
        task = requests.post(
            server.url("/api/v1/match/feature"),
            files={"query_image": open(workdir / "photo1.jpg", "rb"),
                   "train_image": open(workdir / "photo2.jpg", "rb")},
            timeout=30,
        ).json()
        got = [r for r in receiver.wait_for(1, 60) if json.loads(r.body)["uid"] == task["uid"]]
        while not got:
            got = [r for r in receiver.wait_for(len(receiver.received) + 1, 60)
                   if json.loads(r.body)["uid"] == task["uid"]]
        body = json.loads(got[0].body)
        assert body["status"] == "done" and body["result_data"]["found"] is True
    finally:
        requests.delete(server.url(f"/api/v1/webhooks/{hook['id']}"), timeout=10)
        receiver.stop()


def test_unrelated_images_are_not_found(server: ServeProcess) -> None:
    response = requests.post(
        server.url("/api/v1/match/feature"),
        files={"query_image": ("a.png", encode(photo("chelsea")[:200, :200])),
               "train_image": ("b.png", encode(photo("coffee")))},
        timeout=30,
    )
    task = server.wait_task(response.json()["uid"])
    assert task["status"] == "done"
    assert task["result_data"]["found"] is False


def test_textureless_images_are_done_with_zeros(server: ServeProcess) -> None:
    flat = encode(np.full((64, 64, 3), 90, np.uint8))
    response = requests.post(
        server.url("/api/v1/match/feature"),
        files={"query_image": ("a.png", flat), "train_image": ("b.png", flat)},
        timeout=30,
    )
    task = server.wait_task(response.json()["uid"])
    assert task["status"] == "done"
    data = task["result_data"]
    assert data["query_keypoints"] == 0 and data["good_matches"] == 0 and data["found"] is False
    assert data["homography"] is None
