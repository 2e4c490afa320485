"""Health, version and the root page."""

from __future__ import annotations

import logging
import platform
import threading
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse

from aerovision import API_VERSION, __version__
from aerovision.api.deps import ServicesDep
from aerovision.api.schemas import HealthOut, VersionOut
from aerovision.store import tasks as task_store
from aerovision.store import workers as worker_store
from aerovision.store.files import FileStore, StoreUnavailable

log = logging.getLogger(__name__)

router = APIRouter(tags=["system"])

WORKER_ALIVE_WITHIN_S = 30.0
"""A worker counts as alive if it reported in this recently."""

FILES_PROBE_EVERY_S = 3.0
"""/health writes and deletes a small file in the store at most this often; in
between it repeats the last verdict (so /health stays cheap when polled)."""

_UNREACHABLE = ("ConnectionError", "TimeoutError", "ConnectionRefusedError", "OSError")
"""Exception classes (or their bases) that mean the peer did not answer."""


def _cause(part: str, exc: Exception) -> str:
    """What /health shows of a failure: the part and a short class of cause, never the
    message (it names hosts, ports, paths, sometimes credentials). The server log gets
    the whole error."""
    log.warning("/health: the %s failed: %s: %s", part, type(exc).__name__, exc)
    name = type(exc).__name__
    original = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
    names = {c.__name__ for c in type(exc).__mro__}
    if original is not None:
        names |= {c.__name__ for c in type(original).__mro__}
    text = str(exc).lower()
    if names & set(_UNREACHABLE) or (
        name in ("OperationalError", "InterfaceError") and ("connect" in text or "timeout" in text)
    ):
        return f"error: {part} unreachable ({name})"
    return f"error: {name}"


class _FilesProbe:
    """The file store's write check, done at most every FILES_PROBE_EVERY_S per store."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[int, tuple[float, str]] = {}

    def verdict(self, store: FileStore) -> str:
        with self._lock:  # one probe at a time; the others wait and reuse its verdict
            key = id(store)
            now = time.monotonic()
            cached = self._last.get(key)
            if cached is not None and now - cached[0] < FILES_PROBE_EVERY_S:
                return cached[1]
            try:
                store.check_writable()
                verdict = "ok"
            except StoreUnavailable as exc:
                log.warning("/health: %s (%r)", exc, exc.__cause__ or exc)
                verdict = f"error: {exc}"
            except Exception as exc:  # reported, not raised
                verdict = _cause("file store", exc)
            self._last[key] = (time.monotonic(), verdict)
            return verdict


_files_probe = _FilesProbe()


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
    """200 when the database and queue answer, the file store takes writes and at least
    one worker is alive, else 503 (each part says what failed, in short)."""
    database = queue = "ok"
    depth: int | None = None
    workers = 0
    counts: dict[str, int] = {}
    try:
        services.db.ping()
        workers = worker_store.alive_count(services.db, WORKER_ALIVE_WITHIN_S)
        counts = task_store.count_by_status(services.db)
    except Exception as exc:  # shown in short, logged in full
        database = _cause("database", exc)
    try:
        services.queue.ping()
        depth = services.queue.depth()
    except Exception as exc:  # shown in short, logged in full
        queue = _cause("queue", exc)
    files = _files_probe.verdict(services.store)
    ok = database == "ok" and queue == "ok" and files == "ok" and workers > 0
    body = HealthOut(
        status="ok" if ok else "degraded",
        auth=services.settings.auth_mode,
        database=database,
        queue=queue,
        files=files,
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
