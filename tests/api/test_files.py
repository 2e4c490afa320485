"""GET /uploads/…, /thumbnails/…, /results/…: content types and no way out of the store."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import requests

from tests.images import encode, photo, png_chunk
from tests.server import ServeProcess


def _raw_get(server: ServeProcess, target: str) -> int:
    """Send the request line exactly as given (no client-side path normalisation)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return int(reply.split(b" ", 2)[1])


@pytest.mark.parametrize(
    "target",
    [
        "/uploads/../aerovision.db",
        "/uploads/%2e%2e/aerovision.db",
        "/uploads/..%2faerovision.db",
        "/results/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/thumbnails//etc/passwd",
        "/uploads/%00",
        "/results/..\\..\\aerovision.db",
        "/uploads/",
    ],
)
def test_no_path_outside_the_store(server: ServeProcess, target: str) -> None:
    assert _raw_get(server, target) == 404


def test_jpeg_inputs_keep_their_type(server: ServeProcess) -> None:
    image = encode(photo("coffee"), ".jpg")
    template = encode(photo("coffee")[100:160, 200:260], ".jpg")
    response = requests.post(
        server.url("/api/v1/match/template"),
        files={"image": ("photo.jpg", image), "template": ("part.jpeg", template)},
        timeout=10,
    )
    task = server.wait_task(response.json()["uid"])
    assert task["status"] == "done"
    for path in task["input_files"] + task["thumbnails"]:
        got = requests.get(server.url(f"/{path}"), timeout=60)
        assert got.status_code == 200
        assert got.headers["content-type"] == "image/jpeg"
    thumb = requests.get(server.url(f"/{task['thumbnails'][0]}"), timeout=10).content
    import cv2

    decoded = cv2.imdecode(np.frombuffer(thumb, np.uint8), cv2.IMREAD_COLOR)
    assert max(decoded.shape[:2]) == 256


def test_missing_file_is_404(server: ServeProcess) -> None:
    response = requests.get(server.url("/results/no-such-task/matches.png"), timeout=10)
    assert response.status_code == 404
    assert response.json() == {"detail": "File not found"}


def png_with_html(script: str) -> bytes:
    """A valid PNG that carries an HTML page in a tEXt chunk (a polyglot)."""
    png = encode(photo("coffee")[:64, :64])
    page = f"<html><body><script>{script}</script></body></html>".encode()
    at = png.index(b"IDAT") - 4
    return png[:at] + png_chunk(b"tEXt", b"Comment\x00" + page) + png[at:]


def upload_polyglot(server: ServeProcess, name: str, script: str) -> tuple[str, bytes]:
    """Submit a template task whose template is :func:`png_with_html` named ``name``;
    the stored upload's path and its bytes."""
    polyglot = png_with_html(script)
    response = requests.post(
        server.url("/api/v1/match/template"),
        files={"image": ("image.png", encode(photo("coffee")[:128, :128])),
               "template": (name, polyglot)},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["input_files"][1]), polyglot


@pytest.mark.parametrize(
    "name", ["x.html", "x.htm", "x.shtml", "x.xhtml", "x.js", "x.svg", "x.xml", "x.txt", "x"]
)
def test_an_upload_never_comes_back_as_a_page(server: ServeProcess, name: str) -> None:
    """Whatever the client named it, an upload is served as an image type from the
    allow-list or as an octet-stream attachment, never as HTML, script or SVG."""
    path, polyglot = upload_polyglot(server, name, "fetch('/api/v1/tasks')")
    got = requests.get(server.url(f"/{path}"), timeout=60)
    assert got.status_code == 200
    assert got.content == polyglot
    assert got.headers["content-type"] == "application/octet-stream"
    stored = path.rsplit("/", 1)[1]
    assert got.headers["content-disposition"] == f'attachment; filename="{stored}"'
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"].startswith("default-src 'none'")
    assert "sandbox" in got.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("name", "media_type"),
    [("a.png", "image/png"), ("a.JPG", "image/jpeg"), ("a.bmp", "image/bmp"),
     ("a.tiff", "image/tiff")],
)
def test_images_keep_their_type_inline(server: ServeProcess, name: str, media_type: str) -> None:
    ext = "." + name.rsplit(".", 1)[1].lower().replace("jpg", "jpeg")
    data = encode(photo("coffee")[:96, :96], ".jpg" if ext == ".jpeg" else ext)
    response = requests.post(
        server.url("/api/v1/match/template"),
        files={"image": (name, data), "template": ("t.png", encode(photo("coffee")[:32, :32]))},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    got = requests.get(server.url(f"/{response.json()['input_files'][0]}"), timeout=10)
    assert got.headers["content-type"] == media_type
    assert "content-disposition" not in got.headers
