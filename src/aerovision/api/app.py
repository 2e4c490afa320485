"""The FastAPI application."""

from __future__ import annotations

import hashlib
import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from importlib.resources import files as package_files
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

from aerovision import __version__
from aerovision.api import auth, errors
from aerovision.api.headers import SecurityHeaders
from aerovision.api.limits import BodyLimits
from aerovision.api.middleware import HeadAsGet, RefuseControlCharacters, RequestContext
from aerovision.api.routes import (
    accounts,
    files,
    libraries,
    match,
    metrics,
    rtsas,
    settings,
    system,
    tasks,
    tools,
    webhooks,
)
from aerovision.api.services import Services
from aerovision.config import Settings, get_settings

DESCRIPTION = """
Compare images and 3D surfaces. Each `POST /api/v1/match/<tool>` stores the
uploaded files and returns a queued task (201); poll `GET /api/v1/tasks/{uid}`
until `status` is `done` or `error`. Result pictures are downloaded at
`GET /<path>` for each path in `result_files`.
"""

FORM_FIELDS_BYTES = 1024 * 1024
"""Room for the non-file form fields of one upload request."""


class RevalidatedStaticFiles(StaticFiles):
    """UI assets: browsers revalidate (ETag) on each load, so an upgrade never pairs a
    new index.html with an old cached script."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
"""The files of /docs and /redoc, from the fastapi-offline package, by name and type."""

REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
"""ReDoc's sidebar always tries this image (no option turns it off). It is served as an
empty ``data:`` image instead, which fails to decode, so ReDoc drops it: no request
leaves the machine and the page stays within its CSP."""

SWAGGER_UI_INIT = """\
// Starts Swagger UI on /docs; the page's #swagger-ui element names the URLs.
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  oauth2RedirectUrl: new URL(root.dataset.oauth2RedirectUrl, window.location.href).href,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""
"""Swagger UI's start-up, served as a same-origin file so the page needs no inline script."""

SWAGGER_UI_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - Swagger UI</title>
<link rel="stylesheet" href="{root}/docs/assets/swagger-ui.css">
<link rel="icon" href="{root}/docs/assets/favicon.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{root}/openapi.json"
     data-oauth2-redirect-url="{root}/docs/oauth2-redirect"></div>
<script src="{root}/docs/assets/swagger-ui-bundle.js"></script>
<script src="{root}/docs/swagger-ui-init.js"></script>
</body>
</html>
"""


@cache
def _docs_asset(name: str) -> tuple[bytes, str]:
    """One file of DOCS_ASSETS and its ETag, read once per process."""
    body = (package_files("fastapi_offline") / "static" / name).read_bytes()
    if name == "redoc.standalone.js":
        body = body.replace(REDOC_LOGO, b"data:,")
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _revalidated(request: Request, body: bytes, etag: str, media_type: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _add_docs(app: FastAPI) -> None:
    """/docs (Swagger UI), /docs/oauth2-redirect and /redoc, with every file they load
    served here (fastapi-offline ships Swagger UI's and ReDoc's), so they work offline."""

    def root(request: Request) -> str:
        return html.escape(str(request.scope.get("root_path", "")).rstrip("/"))

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        page = SWAGGER_UI_PAGE.format(title=html.escape(app.title), root=root(request))
        return HTMLResponse(page)

    @app.get("/docs/swagger-ui-init.js", include_in_schema=False)
    async def swagger_ui_init(request: Request) -> Response:
        body = SWAGGER_UI_INIT.encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        return _revalidated(request, body, etag, DOCS_ASSETS["swagger-ui-bundle.js"])

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/docs/assets/{name}", include_in_schema=False)
    async def docs_asset(request: Request, name: str) -> Response:
        if name not in DOCS_ASSETS:
            raise HTTPException(status_code=404, detail="Not Found")
        body, etag = _docs_asset(name)
        return _revalidated(request, body, etag, DOCS_ASSETS[name])

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=f"{root(request)}/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root(request)}/docs/assets/redoc.standalone.js",
            redoc_favicon_url=f"{root(request)}/docs/assets/favicon.png",
            with_google_fonts=False,
        )


def _document_permissions(app: FastAPI) -> None:
    """``/openapi.json``: each operation names what it needs (``x-permission``)."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = auth.document_permissions(plain())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(config: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the app; ``services`` is opened from ``config`` at start-up unless given."""
    config = config or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = services is None
        app.state.services = services or Services.open(config)
        if config.auth_mode == "accounts" and config.admin_login and config.admin_password:
            from aerovision.store.accounts import ensure_admin

            ensure_admin(
                app.state.services.db, config.admin_login,
                config.admin_password.get_secret_value(),
            )
        if config.embedder_model is not None:  # a model that cannot be used stops the start
            app.state.services.libraries  # noqa: B018
        try:
            yield
        finally:
            if own:
                app.state.services.close()

    app = FastAPI(
        title="AeroVision",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # _add_docs serves them without a CDN
        redoc_url=None,
        dependencies=[Depends(auth.authorize)],  # each route's need: api/auth.py
    )
    # added innermost first: a request meets RequestContext, SecurityHeaders,
    # RefuseControlCharacters, HeadAsGet and BodyLimits in that order
    app.add_middleware(
        BodyLimits,
        upload_bytes=2 * config.max_upload_bytes + FORM_FIELDS_BYTES,
        upload_setting="AEROVISION_MAX_UPLOAD_MB, per file",
        other_bytes=config.max_json_bytes,
        other_setting="AEROVISION_MAX_JSON_KB",
        wide=[
            # up to 100 images per request
            (r"^/api/v1/libraries/[^/]+/images$", 100 * config.max_upload_bytes
             + FORM_FIELDS_BYTES, "AEROVISION_MAX_UPLOAD_MB, per file, 100 files"),
            # the seed's JSON bodies carry an image in base64
            ("^(" + "|".join(rtsas.HANDLERS) + ")$", 4 * config.max_upload_bytes // 3
             + FORM_FIELDS_BYTES, "AEROVISION_MAX_UPLOAD_MB, as base64"),
        ],
    )
    app.add_middleware(HeadAsGet)
    app.add_middleware(RefuseControlCharacters)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestContext)
    if config.cors_origin_list:  # outermost: preflights carry no key and get answered here
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "X-Request-Id", "Luna-Request-Id",
                           "Content-Type"],
            expose_headers=["X-Request-Id", "Luna-Request-Id"],
        )
    errors.install(app)
    for module in (match, tasks, settings, tools, webhooks, files, system, metrics, accounts,
                   libraries, rtsas):
        app.include_router(module.router)
    auth.check_routes(app)
    _document_permissions(app)
    _add_docs(app)
    app.mount("/static", RevalidatedStaticFiles(directory=system.WEB_DIR), name="static")
    return app
