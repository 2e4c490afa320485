"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from aerovision import __version__
from aerovision.api import errors
from aerovision.api.headers import SecurityHeaders
from aerovision.api.limits import BodyLimits
from aerovision.api.middleware import HeadAsGet, RefuseControlCharacters, RequestContext
from aerovision.api.routes import (
    files,
    match,
    metrics,
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


def create_app(config: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the app; ``services`` is opened from ``config`` at start-up unless given."""
    config = config or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = services is None
        app.state.services = services or Services.open(config)
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
    )
    # added innermost first: a request meets RequestContext, SecurityHeaders,
    # RefuseControlCharacters, HeadAsGet and BodyLimits in that order
    app.add_middleware(
        BodyLimits,
        upload_bytes=2 * config.max_upload_bytes + FORM_FIELDS_BYTES,
        upload_setting="AEROVISION_MAX_UPLOAD_MB, per file",
        other_bytes=config.max_json_bytes,
        other_setting="AEROVISION_MAX_JSON_KB",
    )
    app.add_middleware(HeadAsGet)
    app.add_middleware(RefuseControlCharacters)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestContext, api_keys=config.api_key_list)
    if config.cors_origin_list:  # outermost: preflights carry no key and get answered here
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "X-Request-Id", "Content-Type"],
            expose_headers=["X-Request-Id"],
        )
    errors.install(app)
    for module in (match, tasks, settings, tools, webhooks, files, system, metrics):
        app.include_router(module.router)
    app.mount("/static", RevalidatedStaticFiles(directory=system.WEB_DIR), name="static")
    return app
