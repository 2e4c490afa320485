"""GET /api/v1/tools, the routes made from the registry, and the inspect tool end to end."""

from __future__ import annotations

import cv2
import numpy as np
import requests

from aerovision.params import defaults
from aerovision.tools import TOOLS
from tests.images import encode, photo
from tests.server import ServeProcess


def test_tools_lists_every_registered_tool_in_order(server: ServeProcess) -> None:
    answer = requests.get(server.url("/api/v1/tools"), timeout=10).json()
    assert [t["name"] for t in answer["tools"]] == ["template", "feature", "surface", "inspect",
                                                    "search", "chain"]
    assert answer["max_chain_steps"] == 10
    template = answer["tools"][0]
    assert template == {
        "name": "template",
        "title": "Template matching",
        "summary": TOOLS["template"].summary,
        "docs": TOOLS["template"].docs,
        "submit": "/api/v1/match/template",
        "settings": "/api/v1/settings/template",
        "inputs": [
            {"name": "image", "kind": "image", "help": "Target image (PNG, JPEG, BMP, TIFF).",
             "required": True, "many": False,
             "accept": [".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"]},
            {"name": "template", "kind": "image",
             "help": "Template to find (PNG, JPEG, BMP, TIFF); a PNG's transparent pixels are "
             "ignored.", "required": True, "many": False,
             "accept": [".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"]},
        ],
        "params_schema": TOOLS["template"].params.model_json_schema(),
        "defaults": {"method": "TM_CCOEFF_NORMED", "threshold": 0.8, "max_results": 20,
                     "use_grayscale": True},
        "presets": [
            {"name": "Icon on a screenshot",
             "note": "Exact pixel search; a high threshold for a single match.",
             "params": {"method": "TM_CCOEFF_NORMED", "threshold": 0.9, "use_grayscale": True}},
            {"name": "Multi-detection", "note": "Every copy of an object; a medium threshold "
             "plus NMS.", "params": {"method": "TM_CCOEFF_NORMED", "threshold": 0.8,
                                     "max_results": 50}},
            {"name": "Colour search", "note": "When colour matters: no grayscale conversion.",
             "params": {"method": "TM_CCOEFF_NORMED", "threshold": 0.8, "use_grayscale": False}},
            {"name": "Visual QC", "note": "Is the element there? A strict threshold.",
             "params": {"method": "TM_CCOEFF_NORMED", "threshold": 0.95}},
        ],
        "found": {"field": "filtered_matches", "above": 0},
        "found_when": [{"name": "matches", "field": "filtered_matches", "above": 0}],
        "result_line": "{filtered_matches#match|matches}, best score {best_score:.4g}",
        "chainable": True,
    }
    chain = answer["tools"][-1]
    assert chain["settings"] is None and chain["defaults"] == {} and not chain["chainable"]
    assert chain["found"] == {"field": "chain_result", "equals": "found"}
    assert [i["kind"] for i in chain["inputs"]] == ["any", "any"]
    feature = answer["tools"][1]
    assert feature["found_when"] == [
        {"name": "good_matches", "field": "good_matches", "above": 0},
        {"name": "homography", "field": "found", "equals": True},
    ]


def test_every_preset_is_valid_for_its_tool() -> None:
    for tool in TOOLS.values():
        for preset in tool.presets:
            tool.validate_params({**defaults(tool.name), **preset.params})


def test_routes_exist_for_every_registered_tool(server: ServeProcess) -> None:
    schema = requests.get(server.url("/openapi.json"), timeout=10).json()
    for name, tool in TOOLS.items():
        operation = schema["paths"][f"/api/v1/match/{name}"]["post"]
        assert operation["summary"] == tool.title
        form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
        fields = schema["components"]["schemas"][form.rsplit("/", 1)[1]]["properties"]
        assert set(tool.input_names) <= set(fields)
        has_settings = f"/api/v1/settings/{name}" in schema["paths"]
        assert has_settings == tool.has_settings, name


def test_inspect_describes_a_photograph(server: ServeProcess) -> None:
    image = photo("coffee")
    blurred = cv2.GaussianBlur(image, (0, 0), 4)
    found = []
    for picture in (image, blurred):
        response = requests.post(
            server.url("/api/v1/match/inspect"),
            files={"image": ("coffee.png", encode(picture))},
            data={"bins": "16"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        assert response.json()["params"] == {"bins": 16}
        task = server.wait_task(response.json()["uid"])
        assert task["status"] == "done", task["error"]
        found.append(task["result_data"])
    sharp, soft = found
    height, width = image.shape[:2]
    assert (sharp["width"], sharp["height"], sharp["channels"]) == (width, height, 3)
    assert [c["name"] for c in sharp["channel_stats"]] == ["blue", "green", "red"]
    for stats, plane in zip(sharp["channel_stats"], cv2.split(image), strict=True):
        assert stats["mean"] == round(float(plane.mean()), 3)
        assert (stats["min"], stats["max"]) == (int(plane.min()), int(plane.max()))
        assert len(stats["histogram"]) == 16 and sum(stats["histogram"]) == width * height
    assert soft["sharpness"] < sharp["sharpness"] / 5
    histogram = requests.get(server.url(f"/{task['result_files'][0]}"), timeout=60)
    assert histogram.headers["content-type"] == "image/png"
    decoded = cv2.imdecode(np.frombuffer(histogram.content, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (200, 512, 3)


def test_inspect_refuses_a_second_input_and_a_bad_bins(server: ServeProcess) -> None:
    image = encode(photo("coffee")[:64, :64])
    extra = requests.post(
        server.url("/api/v1/match/inspect"),
        files={"image": ("a.png", image), "template": ("b.png", image)},
        timeout=10,
    )
    assert extra.status_code == 422
    assert extra.json()["detail"][0]["loc"] == ["body", "template"]
    bad = requests.post(
        server.url("/api/v1/match/inspect"), files={"image": ("a.png", image)},
        data={"bins": "1"}, timeout=10,
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "bins"]
