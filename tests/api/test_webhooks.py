"""Webhooks: registration API, signed at-least-once delivery to real receivers."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from tests.api.conftest import serve_for_module
from tests.images import encode, scene_with_patch
from tests.receiver import Receiver
from tests.server import ServeProcess

FAST_RETRIES = {"AEROVISION_WEBHOOK_RETRY_BASE_S": "1.5", "AEROVISION_WEBHOOK_TIMEOUT_S": "2"}


# The seed documentation's verification function, verbatim.
def verify_signature(body: bytes, secret: str, signature: str) -> bool:
    """Проверить подпись вебхука."""
    expected = "sha256=" + hmac.new(
        secret.encode(), body, hashlib.sha256,
    ).hexdigest()
    return hmac.compare_digest(expected, signature)


SEED_CURL_REGISTER = """curl -X POST http://localhost:8888/api/v1/webhooks \\
  -H "Content-Type: application/json" \\
  -d '{
    "url": "https://your-server.com/callback",
    "secret": "my-secret-key"
  }'
"""
SEED_CURL_LIST = "curl http://localhost:8888/api/v1/webhooks"
SEED_CURL_DELETE = "curl -X DELETE http://localhost:8888/api/v1/webhooks/{id} -w '%{{http_code}}'"


@pytest.fixture(scope="module")
def hooks_server(request: pytest.FixtureRequest, backend: str) -> Iterator[ServeProcess]:
    with serve_for_module(request, backend, "hooks", workers=1, env=FAST_RETRIES) as proc:
        yield proc


@pytest.fixture
def clean_hooks(hooks_server: ServeProcess) -> Iterator[None]:
    yield
    for hook in requests.get(hooks_server.url("/api/v1/webhooks"), timeout=10).json():
        requests.delete(hooks_server.url(f"/api/v1/webhooks/{hook['id']}"), timeout=10)


def _register(server: ServeProcess, url: str, secret: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url}
    if secret is not None:
        body["secret"] = secret
    response = requests.post(server.url("/api/v1/webhooks"), json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _submit(server: ServeProcess, ok: bool = True) -> str:
    scene, icon, _ = scene_with_patch(1)
    template = encode(icon) if ok else encode(np.zeros((600, 700), np.uint8))
    response = requests.post(
        server.url("/api/v1/match/template"),
        files={"image": ("scene.png", encode(scene)), "template": ("icon.png", template)},
        timeout=10,
    )
    return str(response.json()["uid"])


def test_seed_registration_examples_verbatim(hooks_server: ServeProcess, clean_hooks: None) -> None:
    def curl(command: str) -> str:
        command = command.replace("http://localhost:8888", hooks_server.base_url)
        return subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True).stdout

    hook = json.loads(curl(SEED_CURL_REGISTER))
    assert set(hook) == {"id", "url", "created_at"}
    assert hook["id"].startswith("wh_") and hook["url"] == "https://your-server.com/callback"
    listed = json.loads(curl(SEED_CURL_LIST))
    assert listed == [hook]  # the secret is never shown
    assert curl(SEED_CURL_DELETE.format(id=hook["id"])) == "204"
    assert json.loads(curl(SEED_CURL_LIST)) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://x/y"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "http://"}, "url"),
        ({}, "url"),
        ({"url": "http://127.0.0.1/x", "colour": 1}, "colour"),
        ({"url": "http://127.0.0.1/x", "secret": 5}, "secret"),
    ],
)
def test_bad_registration_is_422(hooks_server: ServeProcess, body: dict[str, Any], field: str) -> None:
    response = requests.post(hooks_server.url("/api/v1/webhooks"), json=body, timeout=10)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


def test_unknown_webhook_is_404(hooks_server: ServeProcess) -> None:
    for response in (
        requests.delete(hooks_server.url("/api/v1/webhooks/wh_nope"), timeout=10),
        requests.get(hooks_server.url("/api/v1/webhooks/wh_nope/deliveries"), timeout=10),
    ):
        assert response.status_code == 404
        assert response.json() == {"detail": "Webhook not found"}


def test_signed_delivery_of_a_done_and_an_error_task(hooks_server: ServeProcess, clean_hooks: None) -> None:
    receiver = Receiver().start()
    plain = Receiver().start()
    try:
        hook = _register(hooks_server, receiver.url, "my-secret")
        _register(hooks_server, plain.url)
        done_uid = _submit(hooks_server)
        error_uid = _submit(hooks_server, ok=False)
        got = {json.loads(r.body)["uid"]: r for r in receiver.wait_for(2, 30)}
        plain.wait_for(2, 30)
    finally:
        receiver.stop()
        plain.stop()
    done, error = got[done_uid], got[error_uid]
    for item in (done, error):
        assert item.headers["Content-Type"] == "application/json"
        signature = item.headers["X-Webhook-Signature"]
        assert verify_signature(item.body, "my-secret", signature)
        assert not verify_signature(item.body, "wrong-secret", signature)
        assert item.headers["X-Webhook-Id"] == hook["id"]
        assert item.headers["X-Webhook-Delivery"].startswith("dl_")
        assert item.headers["X-Webhook-Timestamp"]
    body = json.loads(done.body)
    task = requests.get(hooks_server.url(f"/api/v1/tasks/{done_uid}"), timeout=10).json()
    assert list(body)[:5] == ["uid", "status", "tool", "result_files", "result_data"]
    assert body["status"] == "done" and body["tool"] == "template"
    for key in ("result_files", "result_data", "params", "created_at", "updated_at", "error"):
        assert body[key] == task[key]
    assert done.headers["X-Webhook-Event"] == "task.done"
    failed = json.loads(error.body)
    assert failed["status"] == "error" and "larger than the image" in failed["error"]
    assert error.headers["X-Webhook-Event"] == "task.error"
    assert all("X-Webhook-Signature" not in r.headers for r in plain.received)


def test_retry_carries_the_same_delivery_id_and_bytes(hooks_server: ServeProcess, clean_hooks: None) -> None:
    receiver = Receiver(behaviour=[500, 200]).start()
    try:
        hook = _register(hooks_server, receiver.url, "s")
        _submit(hooks_server)
        first, second = receiver.wait_for(2, 30)
    finally:
        receiver.stop()
    assert first.headers["X-Webhook-Delivery"] == second.headers["X-Webhook-Delivery"]
    assert first.body == second.body
    assert first.headers["X-Webhook-Signature"] == second.headers["X-Webhook-Signature"]
    deliveries = _deliveries_until(hooks_server, hook["id"], "delivered")
    [delivery] = deliveries
    assert delivery["attempts"] == 2 and delivery["response_code"] == 200
    assert delivery["id"] == first.headers["X-Webhook-Delivery"]


def _deliveries_until(server: ServeProcess, hook_id: str, status: str, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        deliveries: list[dict[str, Any]] = requests.get(
            server.url(f"/api/v1/webhooks/{hook_id}/deliveries"), timeout=10
        ).json()
        if deliveries and all(d["status"] == status for d in deliveries):
            return deliveries
        assert time.monotonic() < deadline, deliveries
        time.sleep(0.1)


def test_a_hanging_receiver_does_not_delay_another(hooks_server: ServeProcess, clean_hooks: None) -> None:
    hanging = Receiver(behaviour="hang").start()
    quick = Receiver().start()
    try:
        _register(hooks_server, hanging.url)
        _register(hooks_server, quick.url)
        uid = _submit(hooks_server)
        hooks_server.wait_task(uid)
        ended = time.monotonic()
        [got] = quick.wait_for(1, 10)
        assert got.at - ended < 1.0
        hanging.wait_for(1, 10)
    finally:
        hanging.stop()
        quick.stop()


def test_receiver_down_for_20_s_then_up_gets_it(hooks_server: ServeProcess, clean_hooks: None) -> None:
    receiver = Receiver()  # not listening yet: connections are refused
    hook = _register(hooks_server, receiver.url, "k")
    uid = _submit(hooks_server)
    hooks_server.wait_task(uid)
    time.sleep(20)
    pending = requests.get(hooks_server.url(f"/api/v1/webhooks/{hook['id']}/deliveries"), timeout=10).json()
    assert pending[0]["status"] == "pending" and pending[0]["attempts"] >= 3
    assert pending[0]["next_attempt_at"] is not None and pending[0]["error"]
    receiver.start()
    try:
        [got] = receiver.wait_for(1, 40)
    finally:
        receiver.stop()
    assert json.loads(got.body)["uid"] == uid
    assert verify_signature(got.body, "k", got.headers["X-Webhook-Signature"])


def test_pending_deliveries_survive_a_restart(tmp_path: Path, fresh_backend: dict[str, str]) -> None:
    data_dir = tmp_path / "data"
    env = {**fresh_backend, **FAST_RETRIES}
    receiver = Receiver()
    first = ServeProcess(data_dir, workers=1, env=env).start()
    _register(first, receiver.url)
    uids = {_submit(first) for _ in range(3)}
    for uid in uids:
        first.wait_task(uid)
    first.stop()
    receiver.start()
    second = ServeProcess(data_dir, workers=1, env=env).start()
    try:
        got = receiver.wait_for(3, 40)
        assert {json.loads(r.body)["uid"] for r in got} == uids
    finally:
        second.stop()
        receiver.stop()
