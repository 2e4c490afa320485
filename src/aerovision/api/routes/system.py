"""Health, version and the root page."""

from __future__ import annotations

import platform
from pathlib import Path
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse

from aerovision import API_VERSION, __version__
from aerovision.api.deps import ServicesDep
from aerovision.api.schemas import HealthOut, VersionOut
from aerovision.store import tasks as task_store
from aerovision.store import workers as worker_store

router = APIRouter(tags=["system"])

WORKER_ALIVE_WITHIN_S = 30.0
"""A worker counts as alive if it reported in this recently."""


def _opencv_version() -> str:
    for dist in ("opencv-contrib-python-headless", "opencv-contrib-python", "opencv-python"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return "unknown"


@router.get(
    "/health",
    summary="Database, queue and worker liveness",
    responses={503: {"model": HealthOut, "description": "Degraded: see which part failed."}},
)
def health(services: ServicesDep) -> JSONResponse:
    """200 when the database and queue answer and at least one worker is alive, else 503."""
    database = queue = "ok"
    depth: int | None = None
    workers = 0
    counts: dict[str, int] = {}
    try:
        services.db.ping()
        workers = worker_store.alive_count(services.db, WORKER_ALIVE_WITHIN_S)
        counts = task_store.count_by_status(services.db)
    except Exception as exc:
        database = f"error: {type(exc).__name__}: {exc}"
    try:
        services.queue.ping()
        depth = services.queue.depth()
    except Exception as exc:
        queue = f"error: {type(exc).__name__}: {exc}"
    ok = database == "ok" and queue == "ok" and workers > 0
    body = HealthOut(
        status="ok" if ok else "degraded",
        database=database,
        queue=queue,
        queue_depth=depth,
        workers=workers,
        tasks=counts,
    )
    return JSONResponse(status_code=200 if ok else 503, content=body.model_dump())


@router.get("/api/v1/version", summary="Service and library versions")
def get_version() -> VersionOut:
    return VersionOut(
        name="aerovision",
        version=__version__,
        api_version=API_VERSION,
        opencv=_opencv_version(),
        python=platform.python_version(),
    )


WEB_DIR = Path(__file__).resolve().parents[2] / "web"
"""The browser UI (static files shipped in the package)."""


@router.get("/", include_in_schema=False)
def root() -> FileResponse:
    """The web UI."""
    return FileResponse(
        WEB_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"}
    )
