"""Request body size limit, enforced while the body streams in (413)."""

from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MB = 1024 * 1024
"""Sizes in messages and settings are in MB of 2**20 bytes."""


def too_large(what: str, size: int | None, limit: int, setting: str) -> HTTPException:
    """413 saying which limit was passed and its value."""
    shown = f"{size / MB:.1f} MB" if size is not None else "larger"
    return HTTPException(
        status_code=413,
        detail=f"{what} is {shown}; the limit is {limit / MB:g} MB ({setting})",
    )


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` before reading them whole.

    A declared Content-Length over the limit is refused at once; a body that
    turns out longer while streaming is cut off with the same 413.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, setting: str) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.setting = setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
                if declared is not None and declared > self.max_bytes:
                    exc = too_large("the request", declared, self.max_bytes, self.setting)
                    await _send_json(send, exc.status_code, exc.detail)
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise too_large("the request", None, self.max_bytes, self.setting)
            return message

        await self.app(scope, limited_receive, send)


async def _send_json(send: Send, status: int, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
