"""What every route gets from the HTTP layer: body limits by content type, JSON
nesting limits, security headers, HEAD and 405 ``Allow``, control characters
refused, log lines that cannot be forged, and read timeouts for slow clients.

All against a real `aerovision serve` on both backends.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.api.conftest import serve_for_module
from tests.images import encode, photo
from tests.server import ServeProcess


@pytest.fixture(scope="module")
def strict_server(request: pytest.FixtureRequest, backend: str) -> Iterator[ServeProcess]:
    """Short read timeouts, so the slow-client tests take seconds."""
    env = {
        "AEROVISION_HEADER_TIMEOUT_S": "2",
        "AEROVISION_BODY_TIMEOUT_S": "2",
        "AEROVISION_BODY_MIN_RATE": "500",
    }
    with serve_for_module(request, backend, "hygiene", workers=1, env=env) as proc:
        yield proc


def _raw(server: ServeProcess, head: bytes, body: bytes = b"", timeout: float = 20) -> bytes:
    """Send ``head`` and ``body`` as given and read the whole answer (Connection: close)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(head + body)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
    return reply


def _status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


# --- JSON bodies: size and depth ---------------------------------------------------------


def test_a_100_mb_json_body_is_refused_at_once_and_others_keep_being_answered(
    strict_server: ServeProcess,
) -> None:
    """The 100 MB array is refused from its Content-Length within a second, the 413 does
    not echo it, and another client's requests answer quickly all along."""
    latencies: list[float] = []
    stop = threading.Event()

    def other_client() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                started = time.perf_counter()
                assert session.get(strict_server.url("/api/v1/version"), timeout=10).ok
                latencies.append(time.perf_counter() - started)

    probe = threading.Thread(target=other_client)
    probe.start()
    while len(latencies) < 3:  # the probe's connection is warm before the big body starts
        time.sleep(0.01)
    latencies.clear()
    try:
        with socket.create_connection(("127.0.0.1", strict_server.port), timeout=10) as sock:
            started = time.perf_counter()
            sock.sendall(
                b"PUT /api/v1/settings/template HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
            )
            sent = 0
            chunk = b"[" + b"1," * 32767
            reply = b""
            sock.settimeout(0.05)
            while sent < 100 * 1024 * 1024 and not reply:
                try:
                    sock.sendall(chunk)
                    sent += len(chunk)
                    reply = sock.recv(65536)
                except (TimeoutError, BlockingIOError):
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    break
            sock.settimeout(5)
            while not reply.endswith(b"}"):
                more = sock.recv(65536)
                if not more:
                    break
                reply += more
            refused_after = time.perf_counter() - started
    finally:
        time.sleep(0.3)
        stop.set()
        probe.join()
    assert _status(reply) == 413
    assert refused_after < 1.0
    body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert body == {
        "detail": "the request body is 100.0 MB; the limit is 64 KB (AEROVISION_MAX_JSON_KB)"
    }
    assert len(latencies) >= 3 and max(latencies) < 0.1, latencies
    memory_kb = _resident_kb(strict_server.proc.pid if strict_server.proc else 0)
    assert memory_kb < 300 * 1024


def _resident_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_streamed_json_body_over_the_limit_is_413_without_a_declared_length(
    strict_server: ServeProcess,
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"method": "'
        for _ in range(10):
            yield b"x" * 16384

    response = requests.put(
        strict_server.url("/api/v1/settings/template"),
        data=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413
    assert "AEROVISION_MAX_JSON_KB" in response.json()["detail"]


@pytest.mark.parametrize("depth", [33, 500, 900, 5000])
@pytest.mark.parametrize(
    "route", ["/api/v1/settings/template", "/api/v1/settings/surface", "/api/v1/webhooks"]
)
def test_deeply_nested_json_is_a_422_naming_the_limit(
    strict_server: ServeProcess, route: str, depth: int
) -> None:
    method = "POST" if route.endswith("webhooks") else "PUT"
    body = '{"url": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    response = requests.request(
        method, strict_server.url(route), data=body,
        headers={"Content-Type": "application/json"}, timeout=10,
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": [{
            "type": "json_too_deep",
            "loc": ["body"],
            "msg": f"JSON nests {depth} levels deep; at most 32 are accepted",
            "input": None,
            "ctx": {"depth": depth, "limit": 32},
        }]
    }


@pytest.mark.parametrize("depth", [40, 900, 2000])
def test_deeply_nested_chain_steps_are_a_422(strict_server: ServeProcess, depth: int) -> None:
    image = encode(photo("coffee")[:64, :64])
    steps = "[" * depth + "]" * depth
    response = requests.post(
        strict_server.url("/api/v1/match/chain"),
        files={"image": ("a.png", image), "template": ("b.png", image)},
        data={"steps": steps},
        timeout=10,
    )
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "steps"]
    assert error["msg"] == f"steps: JSON nests {depth} levels deep; at most 32 are accepted"
    assert error["input"] is None


def test_nesting_within_the_limit_still_reaches_validation(strict_server: ServeProcess) -> None:
    response = requests.put(
        strict_server.url("/api/v1/settings/template"),
        data='{"method": ' + "[" * 30 + "]" * 30 + "}",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "method"]


def test_a_422_never_echoes_large_input(strict_server: ServeProcess) -> None:
    response = requests.put(
        strict_server.url("/api/v1/settings/template"),
        json={"method": "x" * 50000},
        timeout=10,
    )
    assert response.status_code == 422
    assert len(response.content) < 2000
    shown = response.json()["detail"][0]["input"]
    assert shown == "x" * 200 + "… (50000 characters)"


def test_null_is_refused_as_the_schema_says(strict_server: ServeProcess) -> None:
    response = requests.put(
        strict_server.url("/api/v1/settings/template"), json={"threshold": None}, timeout=10
    )
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "threshold"]
    assert "must not be null" in error["msg"]
    schema = requests.get(strict_server.url("/openapi.json"), timeout=10).json()
    update = schema["components"]["schemas"]["TemplateParamsUpdate"]["properties"]
    for field in update.values():
        assert "anyOf" not in field and "default" not in field, field
    chain = schema["components"]["schemas"]["ChainForm"]["properties"]["steps"]
    assert chain["minLength"] == 1


# --- security headers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "policy_start"),
    [
        ("/", "default-src 'self'"),
        ("/static/app.js", "default-src 'self'"),
        ("/docs", "default-src 'self'; script-src 'self';"),
        ("/api/v1/tasks", "default-src 'none'"),
        ("/openapi.json", "default-src 'none'"),
        ("/health", "default-src 'none'"),
        ("/results/none/matches.png", "default-src 'none'"),
        ("/api/v1/no-such-route", "default-src 'none'"),
    ],
)
def test_every_answer_has_nosniff_and_a_content_security_policy(
    strict_server: ServeProcess, path: str, policy_start: str
) -> None:
    response = requests.get(strict_server.url(path), timeout=10)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    policy = response.headers["Content-Security-Policy"]
    assert policy.startswith(policy_start)
    assert "frame-ancestors 'none'" in policy
    if policy_start == "default-src 'none'":
        assert policy.endswith("sandbox")


# --- methods ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/v1/tasks", "GET, HEAD"),
        ("POST", "/api/v1/tasks/abc", "GET, HEAD"),
        ("POST", "/api/v1/settings/template", "GET, HEAD, PUT"),
        ("GET", "/api/v1/match/template", "POST"),
        ("PUT", "/api/v1/webhooks", "GET, HEAD, POST"),
        ("GET", "/api/v1/webhooks/wh_1", "DELETE"),
        ("POST", "/health", "GET, HEAD"),
        ("DELETE", "/uploads/a/b.png", "GET, HEAD"),
    ],
)
def test_405_lists_the_allowed_methods(
    strict_server: ServeProcess, method: str, path: str, allow: str
) -> None:
    response = requests.request(method, strict_server.url(path), timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    assert response.json() == {"detail": "Method Not Allowed"}


def test_head_answers_wherever_get_does(strict_server: ServeProcess) -> None:
    image = encode(photo("coffee")[:80, :80])
    task = requests.post(
        strict_server.url("/api/v1/match/template"),
        files={"image": ("a.png", image), "template": ("b.png", image[:])},
        timeout=10,
    ).json()
    for path in ["/health", "/api/v1/version", "/api/v1/tasks", f"/api/v1/tasks/{task['uid']}",
                 f"/{task['input_files'][0]}", "/", "/openapi.json"]:
        got = requests.get(strict_server.url(path), timeout=10)
        head = requests.head(strict_server.url(path), timeout=10)
        assert head.status_code == got.status_code, path
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"], path
        if path == f"/{task['input_files'][0]}":
            assert head.headers["content-length"] == str(len(image))
    assert requests.head(strict_server.url("/uploads/none/x.png"), timeout=10).status_code == 404


# --- control characters ---------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/api/v1/tasks/abc%00def",
        "/api/v1/tasks/%00",
        "/api/v1/tasks/a%0d%0ab",
        "/api/v1/webhooks/wh_%00/deliveries",
        "/api/v1/settings/templ%00ate",
        "/results/x%00/matches.png",
    ],
)
def test_a_path_with_a_control_character_is_404(strict_server: ServeProcess, target: str) -> None:
    reply = _raw(strict_server, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                 .encode())
    assert _status(reply) == 404
    assert reply.endswith(b'{"detail": "Not Found"}')


def test_delete_with_a_nul_in_the_id_is_404(strict_server: ServeProcess) -> None:
    reply = _raw(strict_server, b"DELETE /api/v1/webhooks/wh_%00 HTTP/1.1\r\nHost: x\r\n"
                 b"Connection: close\r\n\r\n")
    assert _status(reply) == 404


def test_a_query_with_a_control_character_is_422(strict_server: ServeProcess) -> None:
    response = requests.get(strict_server.url("/api/v1/tasks?limit=5%00"), timeout=10)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "limit"]


# --- the access log -------------------------------------------------------------------


def test_log_lines_cannot_be_forged_and_secret_parameters_are_redacted(
    strict_server: ServeProcess,
) -> None:
    forged = "2026-01-01 00:00:00,000 INFO MainProcess aerovision.access [x]: GET /admin 200"
    target = "/api/v1/nothing%0d%0a" + forged.replace(" ", "%20") + "%1b%5b2J"
    query = "?API_KEY=hunter2&Token=hunter3&Api_Key=hunter4&page=1"
    _raw(strict_server, f"GET {target}{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
         .encode())
    time.sleep(0.2)
    log = strict_server.log()
    assert "hunter" not in log
    lines = [line for line in log.splitlines() if "/api/v1/nothing" in line]
    assert len(lines) == 1
    (line,) = lines
    assert "\x1b" not in line and "\r" not in line
    assert "nothing\\x0d\\x0a2026-01-01" in line and "\\x1b[2J" in line
    assert "API_KEY=***&Token=***&Api_Key=***&page=1" in line
    assert not any(other.startswith("2026-01-01") for other in log.splitlines())


# --- slow clients -----------------------------------------------------------------------


def _trickle(server: ServeProcess, head: bytes, byte: bytes, seconds: float) -> tuple[bytes, float]:
    """Send ``head``, then one ``byte`` a second; the answer and when the server hung up."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=seconds + 10) as sock:
        started = time.monotonic()
        sock.sendall(head)
        reply = b""
        sock.settimeout(1.0)
        while time.monotonic() - started < seconds:
            try:
                sock.sendall(byte)
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if not chunk:
                break
            reply += chunk
        return reply, time.monotonic() - started


def test_slow_headers_are_cut_off_with_408(strict_server: ServeProcess) -> None:
    reply, after = _trickle(strict_server, b"GET /health HTTP/1.1\r\nHost: x\r\n", b"X", 30)
    assert _status(reply) == 408
    assert b"the request headers did not arrive within 2 s" in reply
    assert after < 6


def test_a_trickling_body_is_cut_off_with_408(strict_server: ServeProcess) -> None:
    head = (b"PUT /api/v1/settings/template HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    reply, after = _trickle(strict_server, head, b" ", 30)
    assert _status(reply) == 408
    assert b"at least 500 are needed after 2 s" in reply
    assert after < 8


def test_ten_slow_clients_do_not_hold_their_connections(strict_server: ServeProcess) -> None:
    results: list[float] = []

    def one() -> None:
        results.append(_trickle(strict_server, b"GET /health HTTP/1.1\r\n", b"X", 60)[1])

    threads = [threading.Thread(target=one) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 10 and max(results) < 8, results
    assert requests.get(strict_server.url("/api/v1/version"), timeout=5).ok


def test_an_idle_keep_alive_connection_gets_a_fresh_header_deadline(
    strict_server: ServeProcess,
) -> None:
    """A client reusing its connection after each answer is never cut off."""
    with requests.Session() as session:
        for _ in range(4):
            assert session.get(strict_server.url("/api/v1/version"), timeout=5).ok
            time.sleep(1.5)
