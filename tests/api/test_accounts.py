"""Accounts, tokens, permissions and tenants on live servers (SPEC-accounts.md), on
both backends: two API processes share one database; webhooks reach a real receiver."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from tests.conftest import backend_env
from tests.images import encode
from tests.receiver import Receiver
from tests.server import ServeProcess

ADMIN = ("admin@example.com", "admin-password-1")
RESOURCES = {
    "tasks": ["view", "creation", "deletion"],
    "settings": ["view", "modification"],
    "webhooks": ["view", "creation", "deletion"],
    "libraries": ["view", "creation", "modification", "deletion"],
    "recipes": ["view", "creation", "modification", "deletion"],
    "analyze": ["creation"],
    "events": ["view", "deletion"],
    "tokens": ["view", "creation", "modification", "deletion"],
    "accounts": ["view", "creation", "modification", "deletion"],
}
ADMIN_ACCOUNT = {"login": ADMIN[0], "password": ADMIN[1]}


@dataclass
class Deployment:
    first: ServeProcess
    second: ServeProcess
    """Another API process (no workers) on the same database, queue and store."""
    files: Path | None
    """The local file store (embedded backend), else None."""


@pytest.fixture(scope="module")
def deployment(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    data = tmp_path_factory.mktemp("accounts") / "data"
    env = {
        "AEROVISION_AUTH": "accounts",
        "AEROVISION_ADMIN_LOGIN": ADMIN[0],
        "AEROVISION_ADMIN_PASSWORD": ADMIN[1],
        "AEROVISION_WEBHOOK_ALLOW_PRIVATE": "1",
        "AEROVISION_WEBHOOK_RETRY_BASE_S": "0.2",
    }
    with backend_env(backend, request) as base:
        first = ServeProcess(data, workers=1, env={**base, **env}).start()
        second = ServeProcess(data, workers=0, env={**base, **env}).start()
        try:
            yield Deployment(first, second, data if backend == "embedded" else None)
        finally:
            second.stop()
            first.stop()


def _basic(login: str, password: str) -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


_counter = iter(range(10**6))


def _account(server: ServeProcess, kind: str = "user") -> dict[str, Any]:
    """A new account, and its password under ``password``."""
    login, password = f"user{next(_counter)}-{time.time_ns()}@example.com", "password-123"
    response = requests.post(
        server.url("/api/v1/accounts"), headers=_basic(*ADMIN), timeout=10,
        json={"login": login, "password": password, "account_type": kind},
    )
    assert response.status_code == 201, response.text
    return {**response.json(), "password": password}


def _token(
    server: ServeProcess, account: dict[str, Any], permissions: dict[str, list[str]],
    **extra: Any,
) -> str:
    response = requests.post(
        server.url("/api/v1/tokens"), headers=_basic(account["login"], account["password"]),
        json={"description": "test", "permissions": permissions, **extra}, timeout=10,
    )
    assert response.status_code == 201, response.text
    secret: str = response.json()["token"]
    return secret


def _image(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return encode(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))


def _submit(server: ServeProcess, headers: dict[str, str]) -> dict[str, Any]:
    image = _image()
    response = requests.post(
        server.url("/api/v1/match/template"), headers=headers, timeout=30,
        files={"image": ("scene.png", image), "template": ("part.png", image)},
    )
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def _wait(server: ServeProcess, uid: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        task: dict[str, Any] = requests.get(
            server.url(f"/api/v1/tasks/{uid}"), headers=headers, timeout=10
        ).json()
        if task["status"] in ("done", "error"):
            return task
        time.sleep(0.05)
    raise AssertionError(f"task {uid} did not finish")


# credentials

def test_no_wrong_or_expired_credentials_get_401_naming_the_problem(
    deployment: Deployment,
) -> None:
    server = deployment.first
    url = server.url("/api/v1/tasks")
    cases = [
        ({}, "credentials needed"),
        ({"Authorization": "Bearer av_nope"}, "unknown or revoked token"),
        ({"X-API-Key": "av_nope"}, "unknown or revoked token"),
        (_basic(ADMIN[0], "wrong-password"), "wrong login or password"),
        (_basic("nobody@example.com", "whatever-123"), "wrong login or password"),
        ({"Authorization": "Basic !!!"}, "not base64"),
        ({"Authorization": "Digest x"}, "is not Basic or Bearer"),
    ]
    for headers, detail in cases:
        response = requests.get(url, headers=headers, timeout=10)
        assert response.status_code == 401, (headers, response.text)
        assert detail in response.json()["detail"], (headers, response.json())
        assert "Bearer" in response.headers["WWW-Authenticate"]
    assert requests.get(url, params={"api_key": "av_nope"}, timeout=10).status_code == 401

    account = _account(server)
    token = _token(server, account, {"tasks": ["view"]})
    assert requests.get(url, headers=_bearer(token), timeout=10).status_code == 200
    token_id = requests.get(
        server.url("/api/v1/tokens"), headers=_basic(account["login"], account["password"]),
        timeout=10,
    ).json()[0]["token_id"]
    past = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0)
    response = requests.patch(
        server.url(f"/api/v1/tokens/{token_id}"),
        headers=_basic(account["login"], account["password"]),
        json={"expiration_time": past.isoformat()}, timeout=10,
    )
    assert response.status_code == 200, response.text
    response = requests.get(url, headers=_bearer(token), timeout=10)
    assert response.status_code == 401
    assert response.json()["detail"] == (
        f"token expired at {past.strftime('%Y-%m-%dT%H:%M:%S')} UTC"
    )


def test_the_health_page_ui_and_docs_need_no_credentials(deployment: Deployment) -> None:
    server = deployment.first
    health = requests.get(server.url("/health"), timeout=10).json()
    assert health["auth"] == "accounts"
    for path in ("/", "/docs", "/openapi.json"):
        assert requests.get(server.url(path), timeout=10).status_code == 200, path


def test_a_revoked_token_is_refused_by_every_api_process_at_once(
    deployment: Deployment,
) -> None:
    account = _account(deployment.first)
    token = _token(deployment.first, account, {"tasks": ["view"]})
    for server in (deployment.first, deployment.second):
        assert requests.get(
            server.url("/api/v1/tasks"), headers=_bearer(token), timeout=10
        ).status_code == 200
    basic = _basic(account["login"], account["password"])
    token_id = requests.get(
        deployment.second.url("/api/v1/tokens"), headers=basic, timeout=10
    ).json()[0]["token_id"]
    assert requests.delete(
        deployment.second.url(f"/api/v1/tokens/{token_id}"), headers=basic, timeout=10
    ).status_code == 204
    revoked = time.monotonic()
    response = requests.get(deployment.first.url("/api/v1/tasks"), headers=_bearer(token),
                            timeout=10)
    assert time.monotonic() - revoked < 1.0
    assert response.status_code == 401
    assert response.json()["detail"] == "unknown or revoked token"


def test_passwords_change_and_the_old_one_stops_working(deployment: Deployment) -> None:
    server = deployment.first
    account = _account(server)
    old = _basic(account["login"], account["password"])
    assert requests.get(server.url("/api/v1/account"), headers=old, timeout=10).json()[
        "login"] == account["login"]
    response = requests.patch(server.url("/api/v1/account"), headers=old, timeout=10,
                              json={"password": "another-password-9"})
    assert response.status_code == 200
    assert requests.get(server.url("/api/v1/account"), headers=old, timeout=10
                        ).status_code == 401
    new = _basic(account["login"], "another-password-9")
    assert requests.get(server.url("/api/v1/account"), headers=new, timeout=10
                        ).status_code == 200
    # a token cannot change its account
    token = _token(server, {**account, "password": "another-password-9"}, {"tasks": ["view"]})
    response = requests.patch(server.url("/api/v1/account"), headers=_bearer(token),
                              json={"description": "x"}, timeout=10)
    assert response.status_code == 403


# accounts

def test_accounts_are_managed_by_admins_only(deployment: Deployment) -> None:
    server = deployment.first
    user = _account(server)
    headers = _basic(user["login"], user["password"])
    for method, path in (("GET", "/api/v1/accounts"), ("POST", "/api/v1/accounts"),
                         ("GET", f"/api/v1/accounts/{user['account_id']}"),
                         ("DELETE", f"/api/v1/accounts/{user['account_id']}")):
        response = requests.request(method, server.url(path), headers=headers, timeout=10,
                                    json={"login": "x@example.com", "password": "12345678"})
        assert response.status_code == 403, (method, path)
        assert response.json() == {"detail": "only an admin account may manage accounts"}
    admin = _basic(*ADMIN)
    # an admin's token manages accounts only when it says so
    reader = _token(server, ADMIN_ACCOUNT, {"tasks": ["view"]})
    response = requests.get(server.url("/api/v1/accounts"), headers=_bearer(reader), timeout=10)
    assert response.status_code == 403
    assert response.json() == {"detail": "token lacks permission accounts:view"}
    manager = _token(server, ADMIN_ACCOUNT, {"accounts": ["view"]})
    assert requests.get(server.url("/api/v1/accounts"), headers=_bearer(manager),
                        timeout=10).status_code == 200
    # a user's token cannot even hold the permission
    response = requests.post(server.url("/api/v1/tokens"), headers=headers, timeout=10,
                             json={"permissions": {"accounts": ["view"]}})
    assert response.status_code == 403
    me = requests.get(server.url("/api/v1/account"), headers=headers, timeout=10).json()
    assert me["via"] == "password" and "accounts" not in me["permissions"]
    assert me["permissions"]["tasks"] == ["view", "creation", "deletion"]
    listed = requests.get(server.url("/api/v1/accounts?limit=200"), headers=admin,
                          timeout=10).json()
    logins = {a["login"] for a in listed["accounts"]}
    assert {"default", ADMIN[0], user["login"]} <= logins
    assert listed["total"] >= 3
    assert set(listed["accounts"][0]) == {
        "account_id", "login", "account_type", "description", "created_at"}
    again = requests.post(server.url("/api/v1/accounts"), headers=admin, timeout=10,
                          json={"login": user["login"], "password": "password-123"})
    assert again.status_code == 409
    short = requests.post(server.url("/api/v1/accounts"), headers=admin, timeout=10,
                          json={"login": "short@example.com", "password": "1234567"})
    assert short.status_code == 422


def test_deleting_an_account_removes_everything_it_owns(deployment: Deployment) -> None:
    server = deployment.first
    doomed = _account(server)
    headers = _basic(doomed["login"], doomed["password"])
    task = _wait(server, _submit(server, headers)["uid"], headers)
    assert task["status"] == "done"
    for key in task["result_files"] + task["input_files"]:
        assert requests.get(server.url(f"/{key}"), headers=headers, timeout=60
                            ).status_code == 200
    hook = requests.post(server.url("/api/v1/webhooks"), headers=headers, timeout=10,
                         json={"url": "http://127.0.0.1:9/x"}).json()
    token = _token(server, doomed, {"tasks": ["view"]})
    response = requests.delete(server.url(f"/api/v1/accounts/{doomed['account_id']}"),
                               headers=_basic(*ADMIN), timeout=30)
    assert response.status_code == 204
    assert requests.get(server.url("/api/v1/tasks"), headers=headers, timeout=10
                        ).status_code == 401
    assert requests.get(server.url("/api/v1/tasks"), headers=_bearer(token), timeout=10
                        ).status_code == 401
    admin = _basic(*ADMIN)
    assert requests.get(server.url(f"/api/v1/accounts/{doomed['account_id']}"),
                        headers=admin, timeout=10).status_code == 404
    assert hook["id"] not in {
        h["id"] for h in requests.get(server.url("/api/v1/webhooks"), headers=admin,
                                      timeout=10).json()
    }
    if deployment.files is not None:
        uid = task["uid"]
        left = [p for p in deployment.files.rglob("*") if uid in str(p) and p.is_file()]
        assert left == []
    default_id = "00000000-0000-0000-0000-000000000000"
    assert requests.delete(server.url(f"/api/v1/accounts/{default_id}"), headers=admin,
                           timeout=10).status_code == 409


# tenants

def test_accounts_never_see_each_others_data(deployment: Deployment) -> None:
    server = deployment.first
    alice, bob = _account(server), _account(server)
    a, b = _basic(alice["login"], alice["password"]), _basic(bob["login"], bob["password"])
    task = _wait(server, _submit(server, a)["uid"], a)
    hook = requests.post(server.url("/api/v1/webhooks"), headers=a, timeout=10,
                         json={"url": "http://127.0.0.1:9/alice"}).json()
    # bob: every object of alice's answers exactly like a missing one
    pairs = [
        (f"/api/v1/tasks/{task['uid']}", "/api/v1/tasks/00000000-0000-4000-8000-000000000000"),
        (f"/{task['input_files'][0]}", "/uploads/00000000-0000-4000-8000-000000000000/a.png"),
        (f"/{task['result_files'][0]}",
         "/results/00000000-0000-4000-8000-000000000000/matches.png"),
        (f"/api/v1/webhooks/{hook['id']}/deliveries", "/api/v1/webhooks/wh_0000000000000000/"
         "deliveries"),
    ]
    for theirs, missing in pairs:
        got = requests.get(server.url(theirs), headers=b, timeout=10)
        none = requests.get(server.url(missing), headers=b, timeout=10)
        assert got.status_code == none.status_code == 404, theirs
        assert got.json() == none.json(), theirs
    gone = requests.delete(server.url(f"/api/v1/webhooks/{hook['id']}"), headers=b, timeout=10)
    assert gone.status_code == 404
    assert requests.get(server.url("/api/v1/tasks"), headers=b, timeout=10).json() == {
        "total": 0, "tasks": []}
    assert requests.get(server.url("/api/v1/webhooks"), headers=b, timeout=10).json() == []
    mine = requests.get(server.url("/api/v1/tasks"), headers=a, timeout=10).json()
    assert mine["total"] == 1 and mine["tasks"][0]["uid"] == task["uid"]
    metrics = requests.get(server.url("/metrics"), headers=b, timeout=10).text
    assert not re.search(r'aerovision_tasks\{status="done",tool="template"\} [1-9]', metrics)
    metrics = requests.get(server.url("/metrics"), headers=a, timeout=10).text
    assert 'aerovision_tasks{status="done",tool="template"} 1.0' in metrics


def test_same_webhook_urls_side_by_side_each_hears_only_its_own_tasks(
    deployment: Deployment,
) -> None:
    server = deployment.first
    alice, bob = _account(server), _account(server)
    a, b = _basic(alice["login"], alice["password"]), _basic(bob["login"], bob["password"])
    first, second = Receiver().start(), Receiver().start()
    try:
        hooks = {}
        for headers, receiver, name in ((a, first, "alice"), (b, second, "bob")):
            response = requests.post(server.url("/api/v1/webhooks"), headers=headers,
                                     json={"url": receiver.url, "secret": "same"}, timeout=10)
            assert response.status_code == 201
            hooks[name] = response.json()["id"]
        uid = _wait(server, _submit(server, a)["uid"], a)["uid"]
        deadline = time.monotonic() + 30
        while not first.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r.body for r in first.received if uid.encode() in r.body]
        time.sleep(1.0)  # bob's receiver would have had it by now
        assert second.received == []
        assert requests.get(server.url(f"/api/v1/webhooks/{hooks['bob']}/deliveries"),
                            headers=b, timeout=10).json() == []
    finally:
        first.stop()
        second.stop()


def test_settings_are_per_account_over_the_deployment_defaults(
    deployment: Deployment,
) -> None:
    server = deployment.first
    alice, bob = _account(server), _account(server)
    a, b = _basic(alice["login"], alice["password"]), _basic(bob["login"], bob["password"])
    url = server.url("/api/v1/settings/template")
    before = requests.get(url, headers=b, timeout=10).json()
    response = requests.put(url, headers=a, json={"threshold": 0.55}, timeout=10)
    assert response.status_code == 200
    assert response.json()["params"]["threshold"] == 0.55
    assert requests.get(url, headers=a, timeout=10).json()["params"]["threshold"] == 0.55
    assert requests.get(url, headers=b, timeout=10).json() == before
    assert _submit(server, a)["params"]["threshold"] == 0.55
    assert _submit(server, b)["params"]["threshold"] == before["params"]["threshold"]


def test_advanced_users_read_every_account_with_a_token_of_visibility_all(
    deployment: Deployment,
) -> None:
    server = deployment.first
    owner, auditor, plain = _account(server), _account(server, "advanced_user"), _account(server)
    uid = _submit(server, _basic(owner["login"], owner["password"]))["uid"]
    every = {"tasks": ["view", "creation"], "webhooks": ["view", "deletion"]}
    reader = _token(server, auditor, every, visibility_area="all")
    assert requests.get(server.url(f"/api/v1/tasks/{uid}"), headers=_bearer(reader),
                        timeout=10).status_code == 200
    own = _token(server, auditor, every)
    assert requests.get(server.url(f"/api/v1/tasks/{uid}"), headers=_bearer(own),
                        timeout=10).status_code == 404
    # a user cannot make such a token
    response = requests.post(
        server.url("/api/v1/tokens"), headers=_basic(plain["login"], plain["password"]),
        json={"permissions": {"tasks": ["view"]}, "visibility_area": "all"}, timeout=10,
    )
    assert response.status_code == 403


def test_a_token_never_holds_more_than_its_creator(deployment: Deployment) -> None:
    server = deployment.first
    account = _account(server)
    maker = _token(server, account, {"tokens": ["creation"], "tasks": ["view"]})
    url = server.url("/api/v1/tokens")
    ok = requests.post(url, headers=_bearer(maker), timeout=10,
                       json={"permissions": {"tasks": ["view"]}})
    assert ok.status_code == 201
    assert set(ok.json()) == {"token_id", "token", "description", "permissions",
                              "expiration_time", "visibility_area", "created_at"}
    more = requests.post(url, headers=_bearer(maker), timeout=10,
                         json={"permissions": {"tasks": ["creation"]}})
    assert more.status_code == 403
    assert "tasks:creation" in more.json()["detail"]
    unknown = requests.post(url, headers=_bearer(maker), timeout=10,
                            json={"permissions": {"tasks": ["fly"]}})
    assert unknown.status_code == 422
    listed = requests.get(url, headers=_basic(account["login"], account["password"]),
                          timeout=10).json()
    assert all("token" not in t for t in listed) and len(listed) == 2


def test_luna_request_ids_come_back_under_their_own_header(deployment: Deployment) -> None:
    server = deployment.first
    account = _account(server)
    headers = _basic(account["login"], account["password"])
    luna = "1767225600,5b2f8e0c-1a2b-4c3d-8e9f-0123456789ab"
    response = requests.get(server.url("/api/v1/tasks"), timeout=10,
                            headers={**headers, "Luna-Request-Id": luna})
    assert response.headers["Luna-Request-Id"] == luna
    assert "X-Request-Id" not in response.headers
    response = requests.get(server.url("/api/v1/tasks"), timeout=10,
                            headers={**headers, "X-Request-Id": "mine-1"})
    assert response.headers["X-Request-Id"] == "mine-1"
    image = _image()
    response = requests.post(
        server.url("/api/v1/match/template"), headers={**headers, "Luna-Request-Id": luna},
        files={"image": ("a.png", image), "template": ("b.png", image)}, timeout=30,
    )
    assert response.headers["Luna-Request-Id"] == luna
    _wait(server, response.json()["uid"], headers)
    assert luna in server.log()


# the permission matrix, from /openapi.json

def _examples(server: ServeProcess, account: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """For each operation: a request that succeeds for ``account`` (path, json, files)."""
    basic = _basic(account["login"], account["password"])
    task = _wait(server, _submit(server, basic)["uid"], basic)
    image = _image()
    two = {"image": ("a.png", image), "template": ("b.png", image)}
    pair = {"query_image": ("a.png", image), "train_image": ("b.png", image)}
    spare = _account(server)["account_id"]
    return {
        ("post", "/api/v1/accounts"): (
            "/api/v1/accounts", {"login": f"m{time.time_ns()}@example.com",
                                 "password": "password-123"}, None,
        ),
        ("get", "/api/v1/accounts"): ("/api/v1/accounts", None, None),
        ("get", "/api/v1/accounts/{account_id}"): (f"/api/v1/accounts/{spare}", None, None),
        ("patch", "/api/v1/accounts/{account_id}"): (
            f"/api/v1/accounts/{spare}", {"description": "changed"}, None,
        ),
        ("delete", "/api/v1/accounts/{account_id}"): (f"/api/v1/accounts/{spare}", None, None),
        ("get", "/api/v1/tasks"): ("/api/v1/tasks", None, None),
        ("get", "/api/v1/tasks/{uid}"): (f"/api/v1/tasks/{task['uid']}", None, None),
        ("get", "/uploads/{path}"): (f"/{task['input_files'][0]}", None, None),
        ("get", "/thumbnails/{path}"): (f"/{task['thumbnails'][0]}", None, None),
        ("get", "/results/{path}"): (f"/{task['result_files'][0]}", None, None),
        ("post", "/api/v1/match/template"): ("/api/v1/match/template", None, two),
        ("post", "/api/v1/match/feature"): ("/api/v1/match/feature", None, pair),
        ("post", "/api/v1/match/inspect"): (
            "/api/v1/match/inspect", None, {"image": ("a.png", image)}
        ),
        ("post", "/api/v1/match/chain"): (
            "/api/v1/match/chain", None,
            {**two, "steps": (None, '[{"tool": "template"}]')},
        ),
        ("get", "/api/v1/webhooks"): ("/api/v1/webhooks", None, None),
        ("post", "/api/v1/webhooks"): ("/api/v1/webhooks", {"url": "http://127.0.0.1:9/m"},
                                       None),
        ("get", "/api/v1/tools"): ("/api/v1/tools", None, None),
        ("get", "/api/v1/version"): ("/api/v1/version", None, None),
        ("get", "/metrics"): ("/metrics", None, None),
        ("get", "/health"): ("/health", None, None),
        ("get", "/api/v1/account"): ("/api/v1/account", None, None),
        ("get", "/api/v1/tokens"): ("/api/v1/tokens", None, None),
        ("post", "/api/v1/tokens"): ("/api/v1/tokens", {"permissions": {}}, None),
    }


def _surface_files() -> dict[str, Any]:
    ply = (b"ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\n"
           b"property float z\nend_header\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n")
    return {"model": ("m.ply", ply), "scene": ("s.ply", ply)}


def test_every_route_needs_exactly_its_permission(deployment: Deployment) -> None:
    """For each operation of /openapi.json that names a permission: a token holding
    exactly it gets through (2xx where an example request is known, never 401/403); a
    token holding every other permission gets 403 naming it; no credentials get 401."""
    server = deployment.first
    account = _account(server)
    spec = requests.get(server.url("/openapi.json"), timeout=10).json()
    examples = _examples(server, account)
    checked = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            need = operation["x-permission"]
            example = examples.get((method, path))
            if example is None:
                concrete = re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", path)
                example = (concrete, None, None)
                if path.startswith("/api/v1/settings/"):
                    example = (path, {} if method == "put" else None, None)
                if path == "/api/v1/match/surface":
                    example = (path, None, _surface_files())
            target, body, files = example

            def call(headers: dict[str, str], target: str = target, body: Any = body,
                     files: Any = files, method: str = method) -> requests.Response:
                return requests.request(method, server.url(target), headers=headers,
                                        json=body, files=files, timeout=60)

            wire = path.startswith(("/RTSAsService/", "/GeneralClassifyService/"))

            def refused(response: requests.Response, status: int, detail: str | None = None,
                        wire: bool = wire) -> bool:
                """Refused as the route answers refusals: the seed's wire format with
                HTTP 200 and err_no 12, every other route with ``status``."""
                if wire:
                    body = response.json()
                    return response.status_code == 200 and body["err_no"] == 12 and (
                        detail is None or body["err_msg"] == f"authentication failed: {detail}")
                return response.status_code == status and (
                    detail is None or response.json() == {"detail": detail})

            if need == "open":
                assert call({}).status_code == 200, path
                continue
            assert refused(call({}), 401), (method, path)
            if need == "authenticated":
                weakest = _token(server, account, {})
                response = call(_bearer(weakest))
                assert response.status_code not in (401, 403), (method, path, response.text)
                continue
            resource, action = need.split(":")
            holder = ADMIN_ACCOUNT if resource == "accounts" else account
            exactly = _token(server, holder, {resource: [action]})
            response = call(_bearer(exactly))
            assert response.status_code not in (401, 403), (method, path, response.text)
            assert not refused(response, 403), (method, path, response.text)
            if (method, path) in examples:
                assert response.status_code < 300, (method, path, response.text)
            others = {r: [a for a in acts if (r, a) != (resource, action)]
                      for r, acts in RESOURCES.items()}
            if resource != "accounts":
                others.pop("accounts")
            response = call(_bearer(_token(server, holder, others)))
            assert refused(response, 403, f"token lacks permission {need}"), (method, path)
            checked += 1
    assert checked >= 20


def test_existing_data_stays_with_default_when_accounts_are_switched_on(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with backend_env(backend, request) as base:
        off = ServeProcess(data, workers=1, env=base).start()
        try:
            uid = _submit(off, {})["uid"]
            assert off.wait_task(uid)["status"] == "done"
            assert requests.put(off.url("/api/v1/settings/template"), json={"threshold": 0.7},
                                timeout=10).status_code == 200
        finally:
            off.stop()
        env = {**base, "AEROVISION_AUTH": "accounts", "AEROVISION_ADMIN_LOGIN": ADMIN[0],
               "AEROVISION_ADMIN_PASSWORD": ADMIN[1]}
        on = ServeProcess(data, workers=1, env=env).start()
        try:
            assert requests.get(on.url(f"/api/v1/tasks/{uid}"), timeout=10).status_code == 401
            admin = _basic(*ADMIN)
            assert requests.get(on.url(f"/api/v1/tasks/{uid}"), headers=admin,
                                timeout=10).status_code == 404  # the admin's own account
            default_id = "00000000-0000-0000-0000-000000000000"
            response = requests.patch(on.url(f"/api/v1/accounts/{default_id}"), headers=admin,
                                      json={"password": "default-pass-1"}, timeout=10)
            assert response.status_code == 200, response.text
            headers = _basic("default", "default-pass-1")
            task = requests.get(on.url(f"/api/v1/tasks/{uid}"), headers=headers, timeout=10)
            assert task.status_code == 200 and task.json()["status"] == "done"
            assert requests.get(on.url(f"/{task.json()['input_files'][0]}"), headers=headers,
                                timeout=10).status_code == 200
            settings = requests.get(on.url("/api/v1/settings/template"), headers=headers,
                                    timeout=10).json()
            assert settings["params"]["threshold"] == 0.7
        finally:
            on.stop()
