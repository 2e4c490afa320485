"""Upload size limit: 413 with a message naming the limit."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import numpy as np
import pytest
import requests

from tests.api.conftest import serve_for_module
from tests.images import encode
from tests.server import ServeProcess


@pytest.fixture(scope="module")
def small_server(request: pytest.FixtureRequest, backend: str) -> Iterator[ServeProcess]:
    with serve_for_module(request, backend, "limits", workers=0, env={"AEROVISION_MAX_UPLOAD_MB": "0.5"}) as proc:
        yield proc


def _noise_png(side: int) -> bytes:
    return encode(np.random.default_rng(3).integers(0, 255, (side, side, 3), dtype=np.uint8))


def test_file_over_the_limit_is_413_naming_field_and_limit(small_server: ServeProcess) -> None:
    big = _noise_png(500)  # ~750 kB of incompressible pixels
    assert len(big) > 0.5 * 1024 * 1024
    response = requests.post(
        small_server.url("/api/v1/match/template"),
        files={"image": ("big.png", big), "template": ("t.png", _noise_png(8))},
        timeout=30,
    )
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert detail.startswith("image: the file is")
    assert "AEROVISION_MAX_UPLOAD_MB" in detail and "0.5 MB" in detail


def test_declared_body_over_the_limit_is_refused_before_reading(small_server: ServeProcess) -> None:
    with socket.create_connection(("127.0.0.1", small_server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/match/template HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 100000000\r\n\r\n"
        )
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.split(b" ", 2)[1] == b"413"
    assert b"the limit is" in reply


def test_streamed_body_over_the_limit_is_413(small_server: ServeProcess) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n"
        for _ in range(40):
            yield b"\0" * 65536

    response = requests.post(
        small_server.url("/api/v1/match/template"),
        data=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
        timeout=30,
    )
    assert response.status_code == 413


def test_under_the_limit_is_accepted(small_server: ServeProcess) -> None:
    response = requests.post(
        small_server.url("/api/v1/match/template"),
        files={"image": ("a.png", _noise_png(64)), "template": ("t.png", _noise_png(8))},
        timeout=30,
    )
    assert response.status_code == 201


def test_health_is_503_without_workers(small_server: ServeProcess) -> None:
    response = requests.get(small_server.url("/health"), timeout=10)
    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["workers"] == 0
