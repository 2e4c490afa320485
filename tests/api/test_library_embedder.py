"""A user's ONNX embedding model makes ``similar`` semantic (here: a tiny model the test
writes itself, whose embedding is an image's mean colour), images added before the
model was set are embedded afterwards, and a model that cannot be used stops the start."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import pytest
import requests
from onnx import TensorProto, helper

from tests import library_truth as truth
from tests.conftest import backend_env
from tests.server import ServeProcess


def _mean_colour_model(path: Path) -> Path:
    """image (1, 3, 16, 16) → its mean per channel (1, 3): what "looks alike" means here."""
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image"], ["embedding"], axes=[2, 3], keepdims=0)],
        "mean_colour",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _similar(server: ServeProcess, library_id: str, image: bytes) -> dict[str, Any]:
    answer = requests.post(server.url(f"/api/v1/libraries/{library_id}/search"),
                           files={"image": ("q.png", image)}, data={"mode": "similar"},
                           timeout=120)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_an_embedding_model_decides_what_is_similar(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    model = _mean_colour_model(tmp_path / "mean.onnx")
    astronaut = truth.colour(truth.photo("astronaut.png"))
    red = np.zeros_like(astronaut)
    red[:] = (40, 40, 220)  # BGR: plain red
    reddened = cv2.addWeighted(astronaut, 0.25, red, 0.75, 0)  # the astronaut, under red
    with backend_env("embedded", request) as env:
        data = tmp_path / "data"
        plain = ServeProcess(data, workers=0, env=env).start()
        try:
            library_id = requests.post(plain.url("/api/v1/libraries"), json={"name": "looks"},
                                       timeout=30).json()["library_id"]
            added = requests.post(
                plain.url(f"/api/v1/libraries/{library_id}/images"),
                files=[("image", ("astronaut.png", truth.encode(astronaut))),
                       ("image", ("red.png", truth.encode(red)))], timeout=120,
            ).json()["images"]
            ids = {"astronaut": added[0]["image_id"], "red": added[1]["image_id"]}
            # the classical descriptor: layout and texture make it the astronaut
            classical = _similar(plain, library_id, truth.encode(reddened))
            assert classical["results"][0]["image_id"] == ids["astronaut"]
        finally:
            plain.stop()

        settings = {**env, "AEROVISION_EMBEDDER_MODEL": str(model),
                    "AEROVISION_EMBEDDER_SIZE": "16"}
        semantic = ServeProcess(data, workers=0, env=settings).start()
        try:
            # the images were added before the model: embedded in the background
            first = _similar(semantic, library_id, truth.encode(reddened))
            assert first["timings"].get("unembedded", 0) <= 2
            deadline = time.monotonic() + 60
            found = first
            while found["timings"].get("unembedded", 0) and time.monotonic() < deadline:
                time.sleep(0.2)
                found = _similar(semantic, library_id, truth.encode(reddened))
            assert "unembedded" not in found["timings"], found["timings"]
            assert [h["image_id"] for h in found["results"]] == [ids["red"], ids["astronaut"]]
            assert found["results"][0]["match_type"] == "similar"
            # a new image is embedded when it is added
            blue = np.zeros_like(astronaut)
            blue[:] = (220, 40, 40)
            new = requests.post(semantic.url(f"/api/v1/libraries/{library_id}/images"),
                                files=[("image", ("blue.png", truth.encode(blue)))],
                                timeout=120).json()["images"][0]
            bluish = cv2.addWeighted(astronaut, 0.3, blue, 0.7, 0)
            again = _similar(semantic, library_id, truth.encode(bluish))
            assert "unembedded" not in again["timings"]
            assert again["results"][0]["image_id"] == new["image_id"]
        finally:
            semantic.stop()

        # a model that is not one: the server says so and does not start
        broken = tmp_path / "broken.onnx"
        broken.write_bytes(b"not a model")
        bad = ServeProcess(data, workers=0, env={**env, "AEROVISION_EMBEDDER_MODEL": str(broken)})
        with pytest.raises(RuntimeError, match="broken.onnx could not be loaded"):
            bad.start()
