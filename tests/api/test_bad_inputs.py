"""A corpus of bad and odd inputs: each is a clear 4xx at submission or a task
`error` with a message, never a 5xx or a hung task; good odd inputs work; and
the next valid task still succeeds."""

from __future__ import annotations

import re
from typing import Any

import cv2
import numpy as np
import pytest
import requests

from tests.images import encode, jpeg_with_orientation, photo, png_bomb, png_chunk, png_header
from tests.server import ServeProcess


def _good() -> tuple[bytes, bytes]:
    scene = photo("coffee")[:200, :300]
    return encode(scene), encode(scene[50:98, 100:148])


def _truncated(ext: str) -> bytes:
    data = encode(photo("astronaut")[:200, :200], ext)
    return data[: len(data) // 2]


def _gif() -> bytes:
    return b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"


def _webp() -> bytes:
    ok, buf = cv2.imencode(".webp", photo("coffee")[:32, :32])
    assert ok
    return buf.tobytes()


REFUSED: dict[str, tuple[bytes, str]] = {
    "zero bytes": (b"", "file is empty"),
    "text renamed .png": (b"just some text, not an image\n" * 3, "not a PNG, JPEG, BMP or TIFF"),
    "GIF": (_gif(), "not a PNG, JPEG, BMP or TIFF"),
    "WebP": (_webp(), "not a PNG, JPEG, BMP or TIFF"),
    "PNG signature only": (b"\x89PNG\r\n\x1a\n", "PNG"),
    "PNG with a broken IHDR checksum": (png_header(10, 10)[:-1] + b"\x00", "PNG"),
    "JPEG marker only": (b"\xff\xd8\xff", "JPEG"),
    "PLY given as an image": (b"ply\nformat ascii 1.0\nend_header\n", "not a PNG, JPEG, BMP or TIFF"),
}

TASK_ERRORS: dict[str, tuple[bytes, str]] = {
    "truncated PNG": (_truncated(".png"), "corrupt or truncated"),
    "truncated JPEG": (_truncated(".jpg"), "JPEG"),
    "PNG header claiming 40000×40000": (
        png_header(40000, 40000) + png_chunk(b"IEND", b""), "AEROVISION_MAX_IMAGE_PIXELS"
    ),
    "decompression bomb": (png_bomb(15000, 15000), "AEROVISION_MAX_IMAGE_PIXELS"),
}


def _submit(server: ServeProcess, image: bytes, template: bytes, **data: str) -> requests.Response:
    return requests.post(
        server.url("/api/v1/match/template"),
        files={"image": ("image.png", image), "template": ("template.png", template)},
        data=data,
        timeout=30,
    )


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_at_submission(server: ServeProcess, case: str) -> None:
    content, message = REFUSED[case]
    good_image, _ = _good()
    response = _submit(server, good_image, content)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "template"]
    assert message in error["msg"]


@pytest.mark.parametrize("case", list(TASK_ERRORS))
def test_task_error_with_a_clear_message(server: ServeProcess, case: str) -> None:
    content, message = TASK_ERRORS[case]
    _, template = _good()
    response = _submit(server, content, template)
    assert response.status_code == 201, response.text
    task = server.wait_task(response.json()["uid"], timeout=60)
    assert task["status"] == "error"
    assert task["error"].startswith("image: ")
    assert message in task["error"]
    if "AEROVISION_MAX_IMAGE_PIXELS" in message:  # refused before allocating: memory stays small
        [line] = [x for x in server.log().splitlines() if f"task {task['uid']} error" in x]
        peak_mb = float(re.search(r"peak memory (\d+) MB", line).group(1))  # type: ignore[union-attr]
        assert peak_mb < 400


def _odd_cases() -> dict[str, tuple[bytes, bytes, Any]]:
    rng = np.random.default_rng(0)
    scene = photo("coffee")[:120, :160]
    patch_at = (60, 30)  # x, y
    patch = scene[30:62, 60:92]
    sixteen = (scene.astype(np.uint16) * 257)
    bgra = np.dstack([scene, np.full(scene.shape[:2], 255, np.uint8)])
    grey = cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY)
    rotated = cv2.rotate(scene, cv2.ROTATE_90_CLOCKWISE)  # what EXIF orientation 6 displays
    return {
        "16-bit PNG": (encode(sixteen), encode(patch), patch_at),
        "4-channel PNG": (encode(bgra), encode(patch), patch_at),
        "grayscale JPEG": (encode(grey, ".jpg"), encode(cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)), patch_at),
        "EXIF-rotated JPEG": (
            jpeg_with_orientation(scene, 6), encode(rotated[60:92, 40:72]), (40, 60)
        ),
        "BMP and TIFF": (encode(scene, ".bmp"), encode(patch, ".tiff"), patch_at),
        "1×1 image and template": (
            encode(rng.integers(0, 255, (1, 1, 3), dtype=np.uint8)),
            encode(rng.integers(0, 255, (1, 1, 3), dtype=np.uint8)),
            None,
        ),
    }


@pytest.mark.parametrize("case", list(_odd_cases()))
def test_odd_but_valid_images(server: ServeProcess, case: str) -> None:
    image, template, expected = _odd_cases()[case]
    params = {"method": "TM_SQDIFF_NORMED", "threshold": "0.1"} if expected is None else {}
    task = server.wait_task(_submit(server, image, template, **params).json()["uid"])
    assert task["status"] == "done", task["error"]
    if expected is not None:
        best = task["result_data"]["matches"][0]
        assert abs(best["x"] - expected[0]) <= 2 and abs(best["y"] - expected[1]) <= 2, best


BOUNDS = [
    ("threshold", "0.1", True), ("threshold", "0.0999", False), ("threshold", "1.0", True),
    ("threshold", "1.0001", False), ("threshold", "nan", False), ("threshold", "inf", False),
    ("max_results", "1", True), ("max_results", "0", False), ("max_results", "1000", True),
    ("max_results", "1001", False), ("max_results", "-5", False), ("max_results", "1e3", False),
    ("use_grayscale", "false", True), ("use_grayscale", "0", True), ("use_grayscale", "2", False),
    ("method", "TM_SQDIFF", True), ("method", "tm_sqdiff", False), ("method", "", True),
]


@pytest.mark.parametrize(("field", "value", "accepted"), BOUNDS)
def test_every_bound(server: ServeProcess, field: str, value: str, accepted: bool) -> None:
    image, template = _good()
    response = _submit(server, image, template, **{field: value})
    if accepted:
        assert response.status_code == 201, response.text
    else:
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", field]


def test_the_next_valid_task_still_succeeds(server: ServeProcess) -> None:
    image, template = _good()
    task = server.wait_task(_submit(server, image, template).json()["uid"])
    assert task["status"] == "done"
    assert task["result_data"]["matches"][0]["x"] == 100
