"""Error responses: one place that turns failures into SPEC's 4xx bodies."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

log = logging.getLogger(__name__)


def field_error(field: str, message: str, given: Any = None) -> RequestValidationError:
    """A 422 in FastAPI's format naming the form or body ``field``."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", field), "msg": message, "input": given}]
    )


def _public_input(value: Any) -> Any:
    """What a 422 shows of the input: never file contents or parser internals."""
    if isinstance(value, UploadFile):
        return value.filename
    if isinstance(value, dict):
        return None  # the whole form: the loc already says what is missing
    if isinstance(value, bytes):
        return None
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = []
    for error in exc.errors():
        item = {
            "type": error.get("type", "value_error"),
            "loc": list(error.get("loc", ())),
            "msg": error.get("msg", ""),
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
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        allowed: set[str] = set()
        for route in request.app.routes:
            if isinstance(route, Route) and route.path_regex.match(request.url.path):
                allowed |= route.methods or set()
        headers["Allow"] = ", ".join(sorted(allowed))
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=headers)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
