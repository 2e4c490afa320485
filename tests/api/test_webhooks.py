"""Webhooks: registration API, signed at-least-once delivery to real receivers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from aerovision.config import Settings
from aerovision.store import webhooks as webhook_store
from aerovision.store.db import Database
from aerovision.store.scope import DEFAULT as DEFAULT_OWNER
from tests.api.conftest import serve_for_module
from tests.images import encode, scene_with_patch
from tests.receiver import Receiver, TricklingReceiver
from tests.server import ServeProcess, free_port

LOCAL_RECEIVERS = {"AEROVISION_WEBHOOK_ALLOW_PRIVATE": "1"}
"""The tests' receivers listen on 127.0.0.1, which webhooks may not reach by default."""

FAST_RETRIES = {
    "AEROVISION_WEBHOOK_RETRY_BASE_S": "1.5", "AEROVISION_WEBHOOK_TIMEOUT_S": "2",
    **LOCAL_RECEIVERS,
}


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


# -- where webhooks may point (AEROVISION_WEBHOOK_ALLOW_PRIVATE unset: the default)


@pytest.fixture(scope="module")
def strict_server(request: pytest.FixtureRequest, backend: str) -> Iterator[ServeProcess]:
    """A `serve` with the default address policy (no AEROVISION_WEBHOOK_ALLOW_PRIVATE)."""
    env = {"AEROVISION_WEBHOOK_RETRY_BASE_S": "1.5", "AEROVISION_WEBHOOK_TIMEOUT_S": "2"}
    with serve_for_module(request, backend, "strict", workers=1, env=env) as proc:
        assert "AEROVISION_WEBHOOK_ALLOW_PRIVATE" not in proc.env
        yield proc


HINT = ("; webhooks may reach public addresses only (the server allows private ones with "
        "AEROVISION_WEBHOOK_ALLOW_PRIVATE=1)")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:6379/", "127.0.0.1 is a loopback address" + HINT),
        ("http://127.0.0.1:5432/", "127.0.0.1 is a loopback address" + HINT),
        ("http://[::1]:8888/", "::1 is a loopback address" + HINT),
        ("http://localhost:6379/", "localhost is a loopback name (RFC 6761)" + HINT),
        ("http://localhost./", "localhost. is a loopback name (RFC 6761)" + HINT),
        ("http://0x7f.1/", "0x7f.1 resolves to 127.0.0.1, a loopback address" + HINT),
        ("http://017700000001/", "017700000001 resolves to 127.0.0.1, a loopback address" + HINT),
        ("http://[::ffff:127.0.0.1]/",
         "::ffff:127.0.0.1 is an IPv4-mapped form of 127.0.0.1, a loopback address" + HINT),
        ("http://10.0.0.5/hook", "10.0.0.5 is a private address" + HINT),
        ("http://100.64.0.1/hook", "100.64.0.1 is a shared (carrier-grade NAT) address" + HINT),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        ("http://0xa9fea9fe/", "0xa9fea9fe resolves to 169.254.169.254, a cloud metadata address"),
        ("http://2852039166/", "2852039166 resolves to 169.254.169.254, a cloud metadata address"),
        ("http://[::ffff:169.254.169.254]/",
         ("::ffff:169.254.169.254 is an IPv4-mapped form of 169.254.169.254, a cloud metadata "
         "address")),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata address"),
    ],
)
def test_private_and_metadata_addresses_are_refused_by_default(
    strict_server: ServeProcess, url: str, reason: str
) -> None:
    response = requests.post(strict_server.url("/api/v1/webhooks"), json={"url": url}, timeout=10)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "url"]
    assert error["msg"] == f"url refused: {reason}"
    assert requests.get(strict_server.url("/api/v1/webhooks"), timeout=10).json() == []


def test_a_public_or_unresolvable_host_is_accepted_by_default(strict_server: ServeProcess) -> None:
    """Nothing is connected to at registration. A name that does not resolve (yet, or not
    from the API's machine) is accepted: each delivery checks again."""
    hooks = []
    for url in ("https://93.184.216.34/hook", "https://your-server.com/callback",
                "https://no-such-host.invalid/hook"):
        response = requests.post(strict_server.url("/api/v1/webhooks"), json={"url": url},
                                 timeout=10)
        assert response.status_code == 201, response.text
        hooks.append(response.json()["id"])
    for hook in hooks:
        requests.delete(strict_server.url(f"/api/v1/webhooks/{hook}"), timeout=10)


def test_allow_private_accepts_local_receivers_but_never_metadata(
    hooks_server: ServeProcess, clean_hooks: None
) -> None:
    assert _register(hooks_server, "http://127.0.0.1:6379/")["url"] == "http://127.0.0.1:6379/"
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/"):
        response = requests.post(hooks_server.url("/api/v1/webhooks"), json={"url": url},
                                 timeout=10)
        assert response.status_code == 422
        assert "a cloud metadata address" in response.json()["detail"][0]["msg"]


def _database(server: ServeProcess) -> Database:
    """The server's own database (to write rows the API would refuse today)."""
    settings = Settings(
        data_dir=server.data_dir,
        database_url=server.env.get("AEROVISION_DATABASE_URL"),
        queue_url=server.env.get("AEROVISION_QUEUE_URL"),
    )
    return Database(settings.db_url)


def _wait_deliveries(
    server: ServeProcess,
    hook_id: str,
    done: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 30,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        deliveries: list[dict[str, Any]] = requests.get(
            server.url(f"/api/v1/webhooks/{hook_id}/deliveries"), timeout=10
        ).json()
        if deliveries and done(deliveries):
            return deliveries
        assert time.monotonic() < deadline, deliveries
        time.sleep(0.1)


def test_stored_webhooks_with_refused_urls_fail_at_send_time(strict_server: ServeProcess) -> None:
    """Webhooks stored before these rules (or whose name now resolves elsewhere): each
    delivery is one recorded, final failure saying why, and nothing is sent."""
    receiver = Receiver().start()
    db = _database(strict_server)
    crlf = f"http://127.0.0.1:{receiver.port}/a\r\nX-Injected: 1"
    ctrl = f"http://127.0.0.1:{receiver.port}/\x01"
    control = "url must not contain control characters or whitespace: "
    legacy = {
        receiver.url: "address refused: 127.0.0.1 is a loopback address",
        f"http://localhost:{receiver.port}/x":
            "address refused: localhost is a loopback name (RFC 6761)",
        crlf: f"{control}U+000D at position {crlf.index(chr(13))}; the webhook cannot be sent to",
        ctrl: f"{control}U+0001 at position {ctrl.index(chr(1))}; the webhook cannot be sent to",
    }
    hooks = {webhook_store.create_webhook(db, DEFAULT_OWNER, url, "s").id: error for url, error in legacy.items()}
    try:
        uid = _submit(strict_server)
        strict_server.wait_task(uid)
        for hook_id, error in hooks.items():
            [delivery] = _deliveries_until(strict_server, hook_id, "failed")
            assert delivery["task_uid"] == uid
            assert delivery["attempts"] == 1 and delivery["error"] == error
            assert delivery["response_code"] is None and delivery["next_attempt_at"] is None
        time.sleep(2)  # no retry follows
        for hook_id in hooks:
            [delivery] = _deliveries_until(strict_server, hook_id, "failed")
            assert delivery["attempts"] == 1
        assert receiver.received == []
        assert "Traceback" not in strict_server.log()
    finally:
        for hook_id in hooks:
            webhook_store.delete_webhook(db, DEFAULT_OWNER, hook_id)
        db.dispose()
        receiver.stop()


# -- what the request may carry


@pytest.mark.parametrize("char", ["\r", "\n", "\t", "\x00", "\x7f", "\x85", " ", "\u2028"])
def test_control_characters_in_a_url_are_422(hooks_server: ServeProcess, char: str) -> None:
    url = f"http://127.0.0.1:9/a{char}b"
    response = requests.post(hooks_server.url("/api/v1/webhooks"), json={"url": url}, timeout=10)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "url"]
    assert error["msg"] == (
        "Value error, url must not contain control characters or whitespace: "
        f"U+{ord(char):04X} at position {url.index(char)}"
    )
    assert requests.get(hooks_server.url("/api/v1/webhooks"), timeout=10).json() == []


@pytest.mark.parametrize("char", ["\x00", "\r", "\x1b"])
def test_control_characters_in_a_secret_are_422(hooks_server: ServeProcess, char: str) -> None:
    body = {"url": "http://127.0.0.1:9/x", "secret": f"se{char}cret"}
    response = requests.post(hooks_server.url("/api/v1/webhooks"), json=body, timeout=10)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "secret"]
    assert error["msg"] == (
        f"Value error, secret must not contain control characters: U+{ord(char):04X} at position 2"
    )
    assert requests.get(hooks_server.url("/api/v1/webhooks"), timeout=10).json() == []


@pytest.mark.parametrize("hook_id", ["wh_%00", "wh_%00x", "%00", "wh_%0D%0A", "wh_x%20y"])
def test_a_malformed_webhook_id_is_404(hooks_server: ServeProcess, hook_id: str) -> None:
    for response in (
        requests.delete(hooks_server.url(f"/api/v1/webhooks/{hook_id}"), timeout=10),
        requests.get(hooks_server.url(f"/api/v1/webhooks/{hook_id}/deliveries"), timeout=10),
    ):
        assert response.status_code == 404, response.text


def test_credentials_in_a_url_are_masked_and_never_logged(
    hooks_server: ServeProcess, clean_hooks: None
) -> None:
    receiver = Receiver().start()
    password, token = "hunter2-pass", "tok-9f8e7d"
    url = f"http://hook-user:{password}@127.0.0.1:{receiver.port}/cb?token={token}"
    masked = f"http://hook-user:***@127.0.0.1:{receiver.port}/cb?token={token}"
    dead = f"http://{token}@127.0.0.1:{free_port()}/cb"
    try:
        hook = _register(hooks_server, url, "s")
        dead_hook = _register(hooks_server, dead)
        assert hook["url"] == masked
        assert dead_hook["url"] == f"http://***@127.0.0.1:{dead.rsplit(':', 1)[1]}"
        listed = {h["id"]: h["url"] for h in
                  requests.get(hooks_server.url("/api/v1/webhooks"), timeout=10).json()}
        assert listed == {hook["id"]: masked, dead_hook["id"]: dead_hook["url"]}
        uid = _submit(hooks_server)
        [got] = receiver.wait_for(1, 30)
        [failed] = _wait_deliveries(hooks_server, dead_hook["id"], lambda d: d[0]["attempts"] >= 1)
    finally:
        receiver.stop()
    # the real URL is what is sent to: its user info as Basic authentication
    assert json.loads(got.body)["uid"] == uid and got.path == f"/cb?token={token}"
    assert base64.b64decode(got.headers["Authorization"].split()[1]).decode() == (
        f"hook-user:{password}"
    )
    assert failed["error"].startswith("ConnectError") and token not in failed["error"]
    log = hooks_server.log()
    assert f"delivery {got.headers['X-Webhook-Delivery']} done (HTTP 200)" in log
    assert password not in log and token not in log
    assert "HTTP Request:" not in log  # httpx's INFO line with the full URL


# -- slow receivers


def test_a_trickling_answer_is_cut_off_after_the_timeout(
    hooks_server: ServeProcess, clean_hooks: None
) -> None:
    """Every byte comes well within AEROVISION_WEBHOOK_TIMEOUT_S (2 s here); the answer
    as a whole does not: the attempt ends at 2 s and is retried."""
    trickler = TricklingReceiver(interval=0.5).start()
    try:
        hook = _register(hooks_server, trickler.url)
        _submit(hooks_server)
        [delivery] = _wait_deliveries(hooks_server, hook["id"], lambda d: d[0]["attempts"] >= 1,
                                      timeout=20)
        first = trickler.connections[0]
    finally:
        trickler.stop()
    assert delivery["status"] == "pending" and delivery["next_attempt_at"] is not None
    assert delivery["error"] == "no answer within 2 s" and delivery["response_code"] is None
    assert first.closed is not None and 1.8 <= first.closed - first.opened < 3.0


def _latencies(received: list[Any]) -> list[float]:
    """Seconds from each task's end (X-Webhook-Timestamp, whole seconds) to its arrival."""
    return [
        r.wall - datetime.strptime(r.headers["X-Webhook-Timestamp"], "%Y-%m-%dT%H:%M:%S")
        .replace(tzinfo=UTC).timestamp()
        for r in received
    ]


def _slow_receiver_run(
    tmp_path: Path, env: dict[str, str], tasks: int
) -> tuple[Receiver, TricklingReceiver, ServeProcess]:
    """A `serve`, a trickling receiver (1 byte every 3 s) and a healthy one registered,
    ``tasks`` tasks run; returns once the healthy receiver has every delivery."""
    trickler = TricklingReceiver(interval=3.0).start()
    healthy = Receiver().start()
    server = ServeProcess(tmp_path / "data", workers=2, env=env).start()
    try:
        _register(server, trickler.url)
        _register(server, healthy.url)
        uids = [_submit(server) for _ in range(tasks)]
        for uid in uids:
            server.wait_task(uid, timeout=120)
        healthy.wait_for(tasks, 60)
        assert {json.loads(r.body)["uid"] for r in healthy.received} == set(uids)
    except BaseException:
        trickler.stop()
        healthy.stop()
        server.stop()
        raise
    return healthy, trickler, server


def test_a_trickling_receiver_and_70_tasks_delay_no_other_receiver(
    tmp_path: Path, fresh_backend: dict[str, str]
) -> None:
    """The issue's acceptance test, with the default timeout (5 s) and slots (64): a
    healthy receiver gets every delivery within 10 s of its task's end, and no delivery
    ever has two attempts in flight at once."""
    env = {**fresh_backend, **LOCAL_RECEIVERS, "AEROVISION_WEBHOOK_RETRY_BASE_S": "1.5"}
    healthy, trickler, server = _slow_receiver_run(tmp_path, env, 70)
    try:
        time.sleep(6)  # let retries of the first trickled deliveries overlap the rest
    finally:
        trickler.stop()
        healthy.stop()
        server.stop()
    latencies = _latencies(healthy.received)
    print(f"healthy receiver: max {max(latencies):.1f} s after the task ended, "
          f"median {sorted(latencies)[len(latencies) // 2]:.1f} s")
    assert max(latencies) <= 10.0, sorted(latencies)[-5:]
    assert trickler.connections, "the trickling receiver was never tried"
    assert set(trickler.max_open_per_delivery.values()) == {1}  # one attempt at a time
    assert trickler.max_overlap() <= 4  # AEROVISION_WEBHOOK_PER_RECEIVER's default
    for connection in trickler.connections:
        if connection.closed is not None:
            assert connection.closed - connection.opened < 5.0 + 1.5


def test_one_receiver_gets_at_most_its_share_of_the_slots(
    tmp_path: Path, fresh_backend: dict[str, str]
) -> None:
    """4 slots, 2 per receiver: the trickling receiver never holds more than 2, so the
    healthy one always has slots left."""
    env = {**fresh_backend, **LOCAL_RECEIVERS, "AEROVISION_WEBHOOK_CONCURRENCY": "4",
           "AEROVISION_WEBHOOK_PER_RECEIVER": "2"}
    healthy, trickler, server = _slow_receiver_run(tmp_path, env, 16)
    trickler.stop()
    healthy.stop()
    server.stop()
    latencies = _latencies(healthy.received)
    assert max(latencies) <= 10.0, sorted(latencies)[-5:]
    assert trickler.max_overlap() == 2
