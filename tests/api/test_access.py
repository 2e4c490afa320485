"""Access control, request ids, logs, metrics and CORS on a live server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import requests

from tests.api.conftest import serve_for_module
from tests.images import encode
from tests.server import ServeProcess

KEYS = ("k-first-0123456789", "k-second-abcdef")


@pytest.fixture(scope="module")
def locked(request: pytest.FixtureRequest, backend: str) -> Iterator[ServeProcess]:
    with serve_for_module(request, backend, "locked", workers=1, env={
        "AEROVISION_API_KEYS": ",".join(KEYS),
        "AEROVISION_LOG_FORMAT": "json",
        "AEROVISION_CORS_ORIGINS": "https://app.example",
    }) as proc:
        yield proc


def _operations(server: ServeProcess) -> list[tuple[str, str]]:
    spec = requests.get(server.url(f"/openapi.json?api_key={KEYS[0]}"), timeout=10).json()
    ops = [
        (method.upper(), re.sub(r"\{[^}]+\}", "x", path))
        for path, item in spec["paths"].items()
        for method in item
    ]
    return ops


OPEN_PAGES = ("/openapi.json", "/docs", "/", "/static/app.js")
"""The UI shell and the docs: open, so that the UI can ask for the key."""


def test_the_ui_shell_and_the_docs_need_no_key(locked: ServeProcess) -> None:
    for path in OPEN_PAGES:
        assert requests.get(locked.url(path), timeout=10).status_code == 200, path


def test_every_route_but_health_needs_a_key(locked: ServeProcess) -> None:
    operations = _operations(locked)
    assert len(operations) > 15
    forms: list[dict[str, Any]] = [
        {"headers": {"Authorization": f"Bearer {KEYS[0]}"}},
        {"headers": {"X-API-Key": KEYS[1]}},
        {"params": {"api_key": KEYS[0]}},
    ]
    for method, path in operations:
        url = locked.url(path)
        for bad in ({}, {"headers": {"Authorization": "Bearer wrong"}}, {"params": {"api_key": ""}},
                    {"headers": {"X-API-Key": KEYS[0] + "x"}}):
            response = requests.request(method, url, timeout=10, allow_redirects=False, **bad)
            if path == "/health":
                assert response.status_code != 401, (method, path)
            elif path.startswith(("/RTSAsService/", "/GeneralClassifyService/")):
                # the seed's wire format: HTTP 200 and its own code for a failed check
                assert response.status_code == 200, (method, path, bad)
                assert response.json()["err_no"] == 12 and "API key" in response.json()["err_msg"]
            else:
                assert response.status_code == 401, (method, path, bad)
                assert "API key" in response.json()["detail"]
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
        for good in forms:
            response = requests.request(method, url, timeout=10, allow_redirects=False, **good)
            assert response.status_code != 401, (method, path, good)
            if path.startswith(("/RTSAsService/", "/GeneralClassifyService/")):
                assert response.json()["err_no"] != 12, (method, path, good)
            assert response.status_code < 500, (method, path, response.text)


def test_keys_work_end_to_end_and_are_never_logged(locked: ServeProcess) -> None:
    image = encode(np.random.default_rng(0).integers(0, 255, (40, 40), dtype=np.uint8))
    response = requests.post(
        locked.url("/api/v1/match/template"),
        params={"api_key": KEYS[0]},
        files={"image": ("a.png", image), "template": ("b.png", image)},
        timeout=10,
    )
    assert response.status_code == 201
    uid = response.json()["uid"]
    headers = {"X-API-Key": KEYS[1]}
    task = requests.get(locked.url(f"/api/v1/tasks/{uid}"), headers=headers, timeout=10).json()
    while task["status"] not in ("done", "error"):
        task = requests.get(locked.url(f"/api/v1/tasks/{uid}"), headers=headers, timeout=10).json()
    assert task["status"] == "done"
    log = locked.log()
    for key in KEYS:
        assert key not in log
    assert "api_key=%2A%2A%2A" in log or "api_key=***" in log


def test_request_id_is_echoed_or_made_and_reaches_the_worker_log(locked: ServeProcess) -> None:
    auth = {"X-API-Key": KEYS[0]}
    made = requests.get(locked.url("/api/v1/version"), headers=auth, timeout=10)
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-Id"])
    bogus = requests.get(locked.url("/health"), headers={"X-Request-Id": "bad id\twith spaces"}, timeout=10)
    assert re.fullmatch(r"[0-9a-f]{32}", bogus.headers["X-Request-Id"])
    unauthorised = requests.get(locked.url("/api/v1/tasks"), headers={"X-Request-Id": "rid-401"}, timeout=10)
    assert unauthorised.headers["X-Request-Id"] == "rid-401"

    image = encode(np.random.default_rng(1).integers(0, 255, (40, 40), dtype=np.uint8))
    response = requests.post(
        locked.url("/api/v1/match/template"),
        headers={**auth, "X-Request-Id": "trace-me-42"},
        files={"image": ("a.png", image), "template": ("b.png", image)},
        timeout=10,
    )
    assert response.headers["X-Request-Id"] == "trace-me-42"
    uid = response.json()["uid"]
    for _ in range(200):
        if requests.get(locked.url(f"/api/v1/tasks/{uid}"), headers=auth, timeout=10).json()["status"] == "done":
            break
    lines = [json.loads(line) for line in locked.log().splitlines() if line.startswith("{")]
    traced = [line for line in lines if line["request_id"] == "trace-me-42"]
    processes = {line["process"] for line in traced}
    assert "MainProcess" in processes  # the API's access log
    assert any(p.startswith("worker") for p in processes), processes  # the worker ran it
    assert any(uid in line["message"] and "done" in line["message"] for line in traced)
    assert {"time", "level", "logger", "process", "request_id", "message"} <= set(traced[0])


def test_metrics(locked: ServeProcess) -> None:
    text = requests.get(locked.url("/metrics"), headers={"X-API-Key": KEYS[0]}, timeout=10).text
    assert re.search(r'^aerovision_tasks\{status="done",tool="template"\} [1-9]', text, re.MULTILINE)
    assert re.search(r"^aerovision_queue_depth \d", text, re.MULTILINE)
    assert re.search(r"^aerovision_workers_alive 1\.0", text, re.MULTILINE)
    assert re.search(r'^aerovision_task_duration_seconds_count\{tool="template"\} [1-9]', text, re.MULTILINE)
    assert 'aerovision_task_duration_seconds_bucket{le="+Inf",tool="template"}' in text
    assert re.search(r'^aerovision_webhook_deliveries\{status="pending"\} \d', text, re.MULTILINE)


def test_cors_only_for_configured_origins(locked: ServeProcess, server: ServeProcess) -> None:
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key",
    }
    allowed = requests.options(locked.url("/api/v1/match/template"), headers=preflight, timeout=10)
    assert allowed.headers.get("Access-Control-Allow-Origin") == "https://app.example"
    other = requests.options(
        locked.url("/api/v1/match/template"), headers={**preflight, "Origin": "https://evil.example"},
        timeout=10,
    )
    assert "Access-Control-Allow-Origin" not in other.headers
    # the default is same origin only: no CORS headers at all
    plain = requests.get(server.url("/api/v1/version"), headers={"Origin": "https://app.example"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in plain.headers
