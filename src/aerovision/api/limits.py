"""Request body limits by content type, enforced while the body streams in.

- ``multipart/form-data`` (uploads): up to the upload limit (413 above).
- Everything else (JSON bodies of settings and webhooks, stray content types):
  a small limit (``AEROVISION_MAX_JSON_KB``), so a 100 MB JSON array is refused
  before it is read, not parsed on the event loop. JSON bodies are read whole
  (they are small) and their nesting is measured in a worker thread before the
  route sees them: deeper than :data:`safejson.MAX_DEPTH` is a 422.

Error bodies never echo the input: a 413 says how large the body was and which
setting limits it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import anyio.to_thread
from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aerovision import safejson

MB = 1024 * 1024
"""Sizes in messages and settings are in MB of 2**20 bytes."""


def too_large(
    what: str, size: int | None, limit: int, setting: str, unit: str = "MB"
) -> HTTPException:
    """413 saying which limit was passed and its value, in the setting's ``unit`` (MB or KB)."""
    if size is None:
        shown = "larger"
    elif unit == "KB" and size < MB:
        shown = f"{size / 1024:.1f} KB"
    else:
        shown = f"{size / MB:.1f} MB"
    cap = f"{limit / 1024:g} KB" if unit == "KB" else f"{limit / MB:g} MB"
    return HTTPException(
        status_code=413, detail=f"{what} is {shown}; the limit is {cap} ({setting})"
    )


class _BodyTooLarge(Exception):
    """Raised from ``receive`` when a body turns out longer than allowed while streaming."""


def _content_type(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return str(value.decode("latin-1")).split(";", 1)[0].strip().lower()
    return ""


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


class BodyLimits:
    """Refuse request bodies over their content type's limit before reading them whole.

    A declared Content-Length over the limit is refused at once; a body that
    turns out longer while streaming is cut off with the same 413. JSON bodies
    nested too deeply get a 422 without reaching the route.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        upload_bytes: int,
        upload_setting: str,
        other_bytes: int,
        other_setting: str,
        wide: Sequence[tuple[str, int, str]] = (),
    ) -> None:
        self.app = app
        self.upload = (upload_bytes, upload_setting, "MB")
        self.other = (other_bytes, other_setting, "KB")
        self.wide = [(re.compile(path), (size, setting, "MB")) for path, size, setting in wide]
        """Paths (regular expressions) whose bodies may be larger, whatever their type."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        content_type = _content_type(scope)
        limit, setting, unit = self.upload if content_type == "multipart/form-data" else self.other
        for path, wider in self.wide:
            if path.match(scope.get("path", "")):
                limit, setting, unit = wider
                break
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            exc = too_large("the request body", declared, limit, setting, unit)
            await send_json(send, exc.status_code, exc.detail, close=True)
            return
        if is_json(content_type):
            await self._json(scope, receive, send, limit, setting)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large("the request body", None, limit, setting, unit)
            return message

        await self.app(scope, limited_receive, send)

    async def _json(
        self, scope: Scope, receive: Receive, send: Send, limit: int, setting: str
    ) -> None:
        try:
            body = await _read_all(receive, limit)
        except _BodyTooLarge:
            exc = too_large("the request body", None, limit, setting, "KB")
            await send_json(send, exc.status_code, exc.detail, close=True)
            return
        if body is None:  # the client went away
            return
        try:
            await anyio.to_thread.run_sync(safejson.check_depth, body)
        except safejson.TooDeep as too_deep:
            await send_json(send, 422, [_too_deep_error(too_deep)])
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _too_deep_error(exc: safejson.TooDeep) -> dict[str, object]:
    return {
        "type": "json_too_deep",
        "loc": ["body"],
        "msg": str(exc),
        "input": None,
        "ctx": {"depth": exc.depth, "limit": exc.limit},
    }


async def _read_all(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None if the client disconnected; :class:`_BodyTooLarge` past ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_json(send: Send, status: int, detail: object, *, close: bool = False) -> None:
    """A JSON ``{"detail": …}`` answer sent straight from a middleware."""
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:  # the rest of the body is not read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
