"""Per-request context and HTTP hygiene.

- :class:`RequestContext`: request id, the access log (secrets in the query
  redacted, whatever their case), API keys.
- :class:`RefuseControlCharacters`: a path or query with a NUL or another
  control character is refused before any route or database sees it.
- :class:`HeadAsGet`: ``HEAD`` wherever ``GET`` is, with the same headers and
  no body.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aerovision.api.limits import send_json
from aerovision.observability import REQUEST_ID, request_id_from

log = logging.getLogger("aerovision.access")

OPEN_PATHS = frozenset({"/health"})
"""Routes that answer without an API key."""

KEY_PARAM = "api_key"

SECRET_PARAMS = frozenset(
    {"api_key", "apikey", "api-key", "key", "token", "access_token", "secret", "password",
     "signature"}
)
"""Query parameters whose value never reaches a log line, compared without case."""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _redacted_query(query: str) -> str:
    if not query:
        return ""
    pairs = [
        (k, "***" if k.lower() in SECRET_PARAMS else v)
        for k, v in parse_qsl(query, keep_blank_values=True)
    ]
    return "?" + urlencode(pairs, safe="*")


def _given_key(scope: Scope) -> str | None:
    auth = _header(scope, b"authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    header = _header(scope, b"x-api-key")
    if header:
        return header.strip()
    for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
        if key == KEY_PARAM:
            return str(value)
    return None


def key_is_valid(given: str | None, keys: list[str]) -> bool:
    """Constant-time comparison against every configured key."""
    if not given:
        return False
    found = False
    for key in keys:
        found |= hmac.compare_digest(given.encode(), key.encode())
    return found


class RequestContext:
    """Outermost middleware: ``X-Request-Id`` in and out, one access-log line per
    request (secret query values redacted, keys never logged; the log formatter
    escapes control characters, so a path cannot forge a line), and 401 without
    a valid key when keys are configured."""

    def __init__(self, app: ASGIApp, *, api_keys: list[str]) -> None:
        self.app = app
        self.api_keys = api_keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(_header(scope, b"x-request-id"))
        token = REQUEST_ID.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            if self.api_keys and scope["path"] not in OPEN_PATHS and not key_is_valid(
                _given_key(scope), self.api_keys
            ):
                await _unauthorized(send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        except BaseException:
            status = status or 500  # what the server answers for an error that escaped
            raise
        finally:
            log.info(
                "%s %s%s %s %.1f ms",
                scope["method"],
                scope["path"],
                _redacted_query(scope.get("query_string", b"").decode("latin-1")),
                status or "- (client gone before the answer)",
                (time.perf_counter() - started) * 1000,
            )
            REQUEST_ID.reset(token)


async def _unauthorized(send: Send) -> None:
    body = json.dumps(
        {"detail": "Missing or invalid API key: send Authorization: Bearer <key>, "
         "X-API-Key: <key>, or ?api_key=<key>"}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="aerovision"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


CONTROL = frozenset(chr(c) for c in [*range(0x20), 0x7F])


def has_control(text: str) -> bool:
    """True if ``text`` holds a NUL, CR, LF, TAB or any other C0 control or DEL."""
    return not CONTROL.isdisjoint(text)


class RefuseControlCharacters:
    """404 for a path, 422 for a query, that holds a control character (``%00``…).

    No resource name has one, and PostgreSQL cannot even compare a string with a
    NUL, so they are refused here, once, for every route and every backend.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if has_control(scope["path"]):
                await send_json(send, 404, "Not Found")
                return
            query = scope.get("query_string", b"").decode("latin-1")
            for name, value in parse_qsl(query, keep_blank_values=True):
                if has_control(name) or has_control(value):
                    detail = [{
                        "type": "string_pattern_mismatch",
                        "loc": ["query", name if not has_control(name) else "?"],
                        "msg": "control characters (NUL, CR, LF, …) are not accepted",
                        "input": None,
                    }]
                    await send_json(send, 422, detail)
                    return
        await self.app(scope, receive, send)


class HeadAsGet:
    """Answer ``HEAD`` as the ``GET`` of the same path would, without its body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        started = False

        async def headers_only(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                await send(message)
            elif message["type"] == "http.response.body" and started:
                started = False  # one empty, final body; the rest is dropped
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET"}, receive, headers_only)
