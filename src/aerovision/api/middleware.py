"""Per-request context and HTTP hygiene.

- :class:`RequestContext`: request id, the access log (secrets in the query
  redacted, whatever their case).
- :class:`RefuseControlCharacters`: a path or query with a NUL or another
  control character is refused before any route or database sees it.
- :class:`HeadAsGet`: ``HEAD`` wherever ``GET`` is, with the same headers and
  no body.
"""

from __future__ import annotations

import logging
import re
import time
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aerovision.api.limits import send_json
from aerovision.observability import REQUEST_ID, request_id_from

log = logging.getLogger("aerovision.access")

LUNA_ID = re.compile(
    r"^[0-9]{1,12},[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
"""LUNA's request id: ``<unix seconds>,<uuid>``."""

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


class RequestContext:
    """Outermost middleware: the request id in and out (``X-Request-Id``, or LUNA's
    ``Luna-Request-Id`` answered under the header it came in), and one access-log line
    per request (secret query values redacted, keys never logged; the log formatter
    escapes control characters, so a path cannot forge a line). Who may call what is
    :mod:`aerovision.api.auth`'s."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        own = _header(scope, b"x-request-id")
        luna = _header(scope, b"luna-request-id") if own is None else None
        if luna is not None and LUNA_ID.match(luna):
            request_id, id_header = luna, b"luna-request-id"
        else:
            request_id, id_header = request_id_from(own), b"x-request-id"
        token = REQUEST_ID.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != id_header]
                headers.append((id_header, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
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
