"""GET/PUT /api/v1/settings/{tool}."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import numpy as np
import pytest
import requests

from aerovision.params import defaults
from tests.api import seeds
from tests.images import encode
from tests.server import ServeProcess


@pytest.fixture
def restore_settings(server: ServeProcess) -> Iterator[None]:
    yield
    for tool in ("template", "feature", "surface"):
        requests.put(server.url(f"/api/v1/settings/{tool}"), json=defaults(tool), timeout=10)


@pytest.mark.parametrize("tool", ["template", "feature", "surface"])
def test_get_defaults(server: ServeProcess, tool: str) -> None:
    response = requests.get(server.url(f"/api/v1/settings/{tool}"), timeout=10)
    assert response.status_code == 200
    assert response.json() == {"tool": tool, "params": defaults(tool)}


def test_seed_settings_curl_examples(server: ServeProcess, restore_settings: None) -> None:
    def curl(command: str) -> dict[str, object]:
        command = command.replace("http://localhost:8888", server.base_url)
        out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    assert curl(seeds.SETTINGS_CURL_GET) == {"tool": "template", "params": defaults("template")}
    expected = {"method": "TM_CCOEFF_NORMED", "threshold": 0.9, "max_results": 10, "use_grayscale": True}
    assert curl(seeds.SETTINGS_CURL_PUT) == {"tool": "template", "params": expected}
    assert curl(seeds.SETTINGS_CURL_GET) == {"tool": "template", "params": expected}


def test_partial_put_and_requests_use_the_settings(server: ServeProcess, restore_settings: None) -> None:
    response = requests.put(server.url("/api/v1/settings/template"), json={"threshold": 0.95}, timeout=10)
    assert response.json() == {"tool": "template", "params": {**defaults("template"), "threshold": 0.95}}
    response = requests.put(
        server.url("/api/v1/settings/template"), json={"method": "TM_SQDIFF_NORMED"}, timeout=10
    )
    assert response.json()["params"]["threshold"] == 0.95
    image = encode(np.random.default_rng(1).integers(0, 255, (50, 50), dtype=np.uint8))
    files = {"image": ("a.png", image), "template": ("b.png", image)}
    task = requests.post(server.url("/api/v1/match/template"), files=files, timeout=10).json()
    assert task["params"] == {
        "method": "TM_SQDIFF_NORMED", "threshold": 0.95, "max_results": 20, "use_grayscale": True,
    }
    task = requests.post(
        server.url("/api/v1/match/template"), files=files, data={"threshold": "0.5"}, timeout=10
    ).json()
    assert task["params"]["threshold"] == 0.5 and task["params"]["method"] == "TM_SQDIFF_NORMED"
    done = server.wait_task(task["uid"])
    assert done["params"] == task["params"]
    assert done["result_data"]["method"] == "TM_SQDIFF_NORMED"


@pytest.mark.parametrize(
    ("tool", "body", "field", "error_type"),
    [
        ("template", {"threshold": 2}, "threshold", "less_than_equal"),
        ("template", {"method": "TM_X"}, "method", "literal_error"),
        ("template", {"colour": True}, "colour", "extra_forbidden"),
        ("template", {"max_results": None}, "max_results", "value_error"),
        ("feature", {"ratio_threshold": 0.05}, "ratio_threshold", "greater_than_equal"),
        ("feature", {"detector": "SURF"}, "detector", "literal_error"),
        ("feature", {"max_matches": 5001}, "max_matches", "less_than_equal"),
        ("surface", {"num_angles": 0}, "num_angles", "greater_than_equal"),
        ("surface", {"relative_sampling_step": 0.6}, "relative_sampling_step", "less_than_equal"),
        ("surface", {"icp_iterations": 1001}, "icp_iterations", "less_than_equal"),
        ("surface", {"icp_tolerance": 0}, "icp_tolerance", "greater_than"),
    ],
)
def test_invalid_put_is_422_and_changes_nothing(
    server: ServeProcess, tool: str, body: dict[str, object], field: str, error_type: str
) -> None:
    response = requests.put(server.url(f"/api/v1/settings/{tool}"), json=body, timeout=10)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", field]
    assert error["type"] == error_type
    assert requests.get(server.url(f"/api/v1/settings/{tool}"), timeout=10).json()["params"] == defaults(tool)


@pytest.mark.parametrize("body", ["[1, 2]", "not json", '"text"'])
def test_put_needs_a_json_object(server: ServeProcess, body: str) -> None:
    response = requests.put(
        server.url("/api/v1/settings/template"), data=body,
        headers={"Content-Type": "application/json"}, timeout=10,
    )
    assert response.status_code == 422


def test_unknown_tool_is_404(server: ServeProcess) -> None:
    assert requests.get(server.url("/api/v1/settings/chain"), timeout=10).status_code == 404
