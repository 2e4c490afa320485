"""Error responses: one place that turns failures into SPEC's 4xx bodies."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger(__name__)


def field_error(field: str, message: str, given: Any = None) -> RequestValidationError:
    """A 422 in FastAPI's format naming the form or body ``field``."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", field), "msg": message, "input": given}]
    )


SHOWN_INPUT_CHARS = 200
"""A 422 shows at most this much of a rejected value: it never echoes large input."""

SHOWN_ITEMS = 20
"""…and at most this many items of a rejected array or object."""


def _public_input(value: Any) -> Any:
    """What a 422 shows of the input: never file contents or parser internals."""
    if isinstance(value, UploadFile):
        return value.filename
    if isinstance(value, dict):
        return None  # the whole form: the loc already says what is missing
    if isinstance(value, bytes):
        return None
    return value


def _jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` made JSON-safe and small: long text cut, long or deep containers elided."""
    if isinstance(value, str):
        if len(value) > SHOWN_INPUT_CHARS:
            return value[:SHOWN_INPUT_CHARS] + f"… ({len(value)} characters)"
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN and Infinity are not JSON
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple, dict)) and (len(value) > SHOWN_ITEMS or depth >= 4):
        return None
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k)[:SHOWN_INPUT_CHARS]: _jsonable(v, depth + 1) for k, v in value.items()}
    return _jsonable(str(value), depth)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = []
    for error in exc.errors():
        item = {
            "type": error.get("type", "value_error"),
            "loc": [_jsonable(part) for part in error.get("loc", ())],
            "msg": _jsonable(error.get("msg", "")),
            "input": _jsonable(_public_input(error.get("input"))),
        }
        if "ctx" in error:
            item["ctx"] = _jsonable(error["ctx"])
        detail.append(item)
    return JSONResponse(status_code=422, content={"detail": detail})


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's answers, except that a 405 lists every method the path allows
    (routes of one path may be registered separately, e.g. GET and PUT settings)."""
    assert isinstance(exc, StarletteHTTPException)
    from aerovision.api.routes import rtsas

    if exc.status_code in (401, 403) and rtsas.is_wire_path(request.url.path):
        return rtsas.auth_failed(str(exc.detail))  # the seed's clients read err_no 12
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=headers)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at this path (routes of one path may be
    registered apart, e.g. GET and PUT of settings); HEAD wherever GET is."""
    routes = request.app.router.routes
    allowed = {
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in routes
        )
    }
    if "GET" in allowed:
        allowed.add("HEAD")
    return sorted(allowed)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: the client gets JSON with the request id (the server logs the traceback)."""
    request_id = request.scope.get("state", {}).get("request_id")
    return JSONResponse(
        {"detail": f"internal error (request {request_id}); the server log has the details"},
        status_code=500,
    )


STORE_RETRY_AFTER_S = 30
"""Retry-After of a 503 answered because the file store failed."""


async def _store_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """The file store failed (read-only, full, unreachable): the service's fault, a 503
    whose message names the cause (never a path); the server log gets the details."""
    log.error("the file store failed: %s (%r)", exc, exc.__cause__ or exc)
    return JSONResponse(
        {"detail": f"{exc}; try again later"},
        status_code=503,
        headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
    )


def install(app: FastAPI) -> None:
    from aerovision.store.files import StoreUnavailable

    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)
