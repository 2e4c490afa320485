"""Security headers on everything the API serves.

Every answer carries ``X-Content-Type-Options: nosniff`` (a browser never
second-guesses the declared type), ``Referrer-Policy: no-referrer`` and a
``Content-Security-Policy`` chosen by what the path serves:

- the web UI (``/`` and ``/static/…``): its own scripts, styles and images only;
- the interactive docs (``/docs``, ``/redoc``): same-origin scripts only (the
  API serves Swagger UI's and ReDoc's files and Swagger UI's start-up script),
  inline styles (both libraries set them at run time), ``data:`` images
  (Swagger UI's icons) and ``blob:`` workers (ReDoc's search); no other host.
  ``/docs/oauth2-redirect`` is FastAPI's page, whose one inline script is
  allowed by its hash;
- everything else — JSON and the task files under ``/uploads``, ``/thumbnails``,
  ``/results``: nothing may run (``default-src 'none'; sandbox``), so even a
  file a browser did render could not execute script on the API's origin.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi.openapi.docs import get_swagger_ui_oauth2_redirect_html
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UI_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
DOCS_SCRIPTS = "'self'"
DOCS_POLICY_TEMPLATE = (
    "default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
DOCS_POLICY = DOCS_POLICY_TEMPLATE.format(scripts=DOCS_SCRIPTS)


def _inline_script_hashes(page: str) -> str:
    """The CSP sources ('sha256-…') of the inline scripts of ``page``."""
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)
    return " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in scripts
    )


OAUTH2_REDIRECT_POLICY = DOCS_POLICY_TEMPLATE.format(
    scripts=DOCS_SCRIPTS + " " + _inline_script_hashes(
        bytes(get_swagger_ui_oauth2_redirect_html().body).decode()
    )
)
"""FastAPI's page, hashed as the installed FastAPI writes it (it reflects no input)."""
LOCKED_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox"
"""Inline style only, so a browser's own image viewer still centres a picture."""

DOCS_PATHS = frozenset({"/docs", "/redoc"})


def policy_for(path: str) -> str:
    """The Content-Security-Policy of the answer to ``path``."""
    if path == "/" or path.startswith("/static/"):
        return UI_POLICY
    if path in DOCS_PATHS:
        return DOCS_POLICY
    if path == "/docs/oauth2-redirect":
        return OAUTH2_REDIRECT_POLICY
    return LOCKED_POLICY


class SecurityHeaders:
    """Adds the headers above to every HTTP answer (the app's own wins if it set one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"content-security-policy", policy_for(scope["path"]).encode()),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
