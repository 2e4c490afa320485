"""POST /api/v1/match/template end to end against a real `aerovision serve`."""

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

from tests.api import seeds
from tests.images import encode, scene_with_patch
from tests.server import ServeProcess

TASK_KEYS = {
    "uid", "status", "tool", "params", "created_at", "updated_at", "input_files",
    "thumbnails", "result_files", "result_data", "error",
}
MATCH_KEYS = {"x", "y", "w", "h", "score"}
DEFAULT_PARAMS = {
    "method": "TM_CCOEFF_NORMED", "threshold": 0.8, "max_results": 20, "use_grayscale": True,
}
TIMESTAMP = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the seeds' screenshot.png (icon pasted 3 times) and icon.png."""
    folder = tmp_path_factory.mktemp("seed-files")
    scene, icon, _ = scene_with_patch(3, seed=7)
    (folder / "screenshot.png").write_bytes(encode(scene))
    (folder / "icon.png").write_bytes(encode(icon))
    return folder


def _local(text: str, server: ServeProcess) -> str:
    return text.replace("http://localhost:8888", server.base_url)


def _run_curl(command: str, cwd: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(out.stdout)


def _assert_task_shape(task: dict[str, Any]) -> None:
    assert set(task) == TASK_KEYS
    assert task["tool"] == "template"
    assert task["status"] in ("queued", "processing", "done", "error")
    for key in ("created_at", "updated_at"):
        assert __import__("re").match(TIMESTAMP, task[key]), task[key]
    uid = task["uid"]
    assert task["input_files"] == [f"uploads/{uid}/screenshot.png", f"uploads/{uid}/icon.png"]
    assert task["thumbnails"] == [f"thumbnails/{uid}/screenshot.png", f"thumbnails/{uid}/icon.png"]


def _assert_done(task: dict[str, Any], server: ServeProcess) -> None:
    _assert_task_shape(task)
    assert task["status"] == "done", task["error"]
    assert task["error"] is None
    uid = task["uid"]
    assert task["result_files"] == [f"results/{uid}/matches.png", f"results/{uid}/heatmap.png"]
    data = task["result_data"]
    assert {"method", "matches_found", "best_score", "filtered_matches", "matches"} <= set(data)
    assert isinstance(data["method"], str)
    assert isinstance(data["matches_found"], int) and isinstance(data["filtered_matches"], int)
    assert isinstance(data["best_score"], float)
    assert data["matches_found"] == len(data["matches"])
    for match in data["matches"]:
        assert set(match) == MATCH_KEYS
        assert all(isinstance(match[k], int) for k in "xywh")
        assert isinstance(match["score"], float) and 0.0 <= match["score"] <= 1.0
    for path in task["result_files"] + task["thumbnails"] + task["input_files"]:
        response = requests.get(server.url(f"/{path}"), timeout=60)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == "image/png"
        assert cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED) is not None


def test_seed_curl_examples_verbatim(server: ServeProcess, workdir: Path) -> None:
    task = _run_curl(_local(seeds.CURL_SUBMIT, server), workdir)
    _assert_task_shape(task)
    assert task["status"] == "queued"
    assert task["params"] == DEFAULT_PARAMS
    assert task["result_files"] == [] and task["result_data"] == {} and task["error"] is None

    with_params = _run_curl(_local(seeds.CURL_SUBMIT_WITH_PARAMS, server), workdir)
    assert with_params["params"] == {
        "method": "TM_CCORR_NORMED", "threshold": 0.9, "max_results": 10, "use_grayscale": True,
    }

    server.wait_task(task["uid"])
    status = _run_curl(_local(seeds.CURL_STATUS.format(uid=task["uid"]), server), workdir)
    _assert_done(status, server)
    assert status["result_data"]["method"] == "TM_CCOEFF_NORMED"
    assert status["result_data"]["matches_found"] == 3
    assert status["result_data"]["filtered_matches"] == 3

    done = server.wait_task(with_params["uid"])
    _assert_done(done, server)
    assert done["result_data"]["method"] == "TM_CCORR_NORMED"
    assert 1 <= done["result_data"]["matches_found"] <= 10


def test_seed_python_example_verbatim(server: ServeProcess, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    namespace: dict[str, Any] = {}
    exec(compile(_local(seeds.PYTHON, server), "seed-python-example", "exec"), namespace)
    assert namespace["resp"].status_code == 201
    status = namespace["status"]
    _assert_done(status, server)
    assert status["result_data"]["matches_found"] == 3
    assert status["params"] == DEFAULT_PARAMS


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the fetch example")
def test_seed_javascript_fetch_example_verbatim(server: ServeProcess, workdir: Path) -> None:
    """The browser example, run by node with `fetch` resolving relative URLs to the server."""
    answer = seeds.run_fetch_example(
        seeds.JAVASCRIPT, base_url=server.base_url, cwd=workdir,
        inputs={"imageInput": "screenshot.png", "templateInput": "icon.png"},
        result="{status: res.status, task, result}",
    )
    assert answer["status"] == 201
    assert answer["task"]["status"] == "queued"
    _assert_done(answer["result"], server)
    assert answer["result"]["result_data"]["matches_found"] == 3


def _submit(server: ServeProcess, image: bytes, template: bytes, **fields: Any) -> requests.Response:
    return requests.post(
        server.url("/api/v1/match/template"),
        files={"image": ("screenshot.png", image), "template": ("icon.png", template)},
        data={k: str(v) for k, v in fields.items()},
        timeout=30,
    )


@pytest.mark.parametrize(
    ("field", "value", "error_type"),
    [
        ("method", "TM_FOO", "literal_error"),
        ("threshold", "1.5", "less_than_equal"),
        ("threshold", "0.05", "greater_than_equal"),
        ("threshold", "high", "float_parsing"),
        ("max_results", "0", "greater_than_equal"),
        ("max_results", "1001", "less_than_equal"),
        ("max_results", "2.5", "int_parsing"),
        ("use_grayscale", "maybe", "bool_parsing"),
        ("treshold", "0.9", "extra_forbidden"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(
    server: ServeProcess, workdir: Path, field: str, value: str, error_type: str
) -> None:
    response = _submit(
        server, (workdir / "screenshot.png").read_bytes(), (workdir / "icon.png").read_bytes(),
        **{field: value},
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", field]
    assert error["type"] == error_type
    assert error["msg"]
    assert error["input"] == value


@pytest.mark.parametrize("value", ["0.1", "1.0", "1", "0.8"])
def test_threshold_bounds_are_accepted(server: ServeProcess, workdir: Path, value: str) -> None:
    response = _submit(
        server, (workdir / "screenshot.png").read_bytes(), (workdir / "icon.png").read_bytes(),
        threshold=value,
    )
    assert response.status_code == 201
    assert response.json()["params"]["threshold"] == float(value)


def test_missing_file_is_422(server: ServeProcess, workdir: Path) -> None:
    response = requests.post(
        server.url("/api/v1/match/template"),
        files={"image": ("screenshot.png", (workdir / "screenshot.png").read_bytes())},
        timeout=10,
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "template"] and error["type"] == "missing"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "file is empty"),
        (b"hello, I am text pretending to be a PNG", "not a PNG, JPEG, BMP or TIFF image"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG"),
        (b"GIF89a" + b"\x00" * 20, "not a PNG, JPEG, BMP or TIFF image"),
    ],
)
def test_unusable_file_is_422_naming_the_field(
    server: ServeProcess, workdir: Path, content: bytes, message: str
) -> None:
    response = _submit(server, (workdir / "screenshot.png").read_bytes(), content)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "template"]
    assert message in error["msg"]
    assert error["input"] == "icon.png"


def test_template_larger_than_image_is_a_task_error(server: ServeProcess) -> None:
    small = encode(np.full((20, 30, 3), 128, np.uint8))
    big = encode(np.full((40, 40, 3), 128, np.uint8))
    task = server.wait_task(_submit(server, small, big).json()["uid"])
    assert task["status"] == "error"
    assert "larger than the image" in task["error"]
    assert task["result_files"] == [] and task["result_data"] == {}


def test_corrupt_body_after_valid_header_is_a_task_error(server: ServeProcess, workdir: Path) -> None:
    whole = (workdir / "screenshot.png").read_bytes()
    truncated = whole[: len(whole) // 3]
    task = server.wait_task(_submit(server, truncated, (workdir / "icon.png").read_bytes()).json()["uid"])
    assert task["status"] == "error"
    assert task["error"].startswith("image: ")
    assert "corrupt or truncated" in task["error"]


def test_same_file_name_twice_does_not_overwrite(server: ServeProcess, workdir: Path) -> None:
    image = (workdir / "screenshot.png").read_bytes()
    icon = (workdir / "icon.png").read_bytes()
    response = requests.post(
        server.url("/api/v1/match/template"),
        files={"image": ("same.png", image), "template": ("same.png", icon)},
        timeout=10,
    )
    task = response.json()
    uid = task["uid"]
    assert task["input_files"] == [f"uploads/{uid}/same.png", f"uploads/{uid}/same_1.png"]
    assert requests.get(server.url(f"/{task['input_files'][0]}"), timeout=10).content == image
    assert requests.get(server.url(f"/{task['input_files'][1]}"), timeout=10).content == icon
    assert server.wait_task(uid)["status"] == "done"


def test_hostile_file_names_are_sanitised(server: ServeProcess, workdir: Path) -> None:
    response = requests.post(
        server.url("/api/v1/match/template"),
        files={
            "image": ("../../../etc/passwd.png", (workdir / "screenshot.png").read_bytes()),
            "template": ("..\\..\\x y$.png", (workdir / "icon.png").read_bytes()),
        },
        timeout=10,
    )
    uid = response.json()["uid"]
    assert response.json()["input_files"] == [f"uploads/{uid}/passwd.png", f"uploads/{uid}/x_y.png"]
