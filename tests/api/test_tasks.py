"""GET /api/v1/tasks and /api/v1/tasks/{uid}."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from tests.images import encode
from tests.server import ServeProcess


def _submit(server: ServeProcess) -> str:
    image = encode(np.random.default_rng(0).integers(0, 255, (60, 80), dtype=np.uint8))
    response = requests.post(
        server.url("/api/v1/match/template"),
        files={"image": ("a.png", image), "template": ("b.png", image[:])},
        timeout=10,
    )
    assert response.status_code == 201
    return str(response.json()["uid"])


def test_list_is_newest_first_with_total_and_paging(server: ServeProcess) -> None:
    uids = [_submit(server) for _ in range(3)]
    first = requests.get(server.url("/api/v1/tasks?offset=0&limit=2"), timeout=10).json()
    assert set(first) == {"total", "tasks"}
    assert first["total"] >= 3
    assert [t["uid"] for t in first["tasks"]] == [uids[2], uids[1]]
    second = requests.get(server.url("/api/v1/tasks"), params={"offset": 2, "limit": 1}, timeout=10)
    assert [t["uid"] for t in second.json()["tasks"]] == [uids[0]]
    default = requests.get(server.url("/api/v1/tasks"), timeout=10).json()
    assert len(default["tasks"]) == min(50, default["total"])


def test_list_past_the_end_is_empty(server: ServeProcess) -> None:
    page = requests.get(server.url("/api/v1/tasks?offset=100000"), timeout=10).json()
    assert page["tasks"] == [] and page["total"] >= 0


@pytest.mark.parametrize(
    ("query", "field"),
    [("offset=-1", "offset"), ("limit=0", "limit"), ("limit=201", "limit"), ("limit=x", "limit")],
)
def test_bad_paging_is_422(server: ServeProcess, query: str, field: str) -> None:
    response = requests.get(server.url(f"/api/v1/tasks?{query}"), timeout=10)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", field]


@pytest.mark.parametrize("uid", ["a1b2c3d4-e5f6-7890-abcd-ef1234567890", "not-a-uuid", "%2e%2e"])
def test_unknown_task_is_404_with_spec_body(server: ServeProcess, uid: str) -> None:
    response = requests.get(server.url(f"/api/v1/tasks/{uid}"), timeout=10)
    assert response.status_code == 404
    assert response.json() == {"detail": "Task not found"}


def test_get_task_returns_the_submitted_one(server: ServeProcess) -> None:
    uid = _submit(server)
    task = requests.get(server.url(f"/api/v1/tasks/{uid}"), timeout=10).json()
    assert task["uid"] == uid and task["tool"] == "template"
    done = server.wait_task(uid)
    assert done["status"] == "done"
    assert done["updated_at"] >= done["created_at"]
