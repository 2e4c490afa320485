"""GET /uploads/…, /thumbnails/…, /results/…: the files tasks list.

A task is ``done`` before its thumbnails are written (after its verdict), and
most tools' pictures are drawn only when first downloaded: a download of a file
its ``done`` task lists but that is not written yet asks for it if needed (the
task's uid goes to the front of the queue, and a worker runs it again for its
files) and waits for it, up to :data:`PENDING_WAIT_S`.

Every file belongs to the task named in its key (``<area>/<uid>/<name>``): a
download answers only for a task the caller's account may see, and 404 exactly
as for a missing file otherwise.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import FileResponse, StreamingResponse

from aerovision.api.auth import CallerDep
from aerovision.api.deps import ServicesDep
from aerovision.api.schemas import Message
from aerovision.api.services import Services
from aerovision.store import tasks as task_store
from aerovision.store.files import PUBLIC_AREAS, BadKey
from aerovision.store.models import FilesPending
from aerovision.store.scope import Owner

PENDING_WAIT_S = 30.0
"""Longest a download waits for a picture its ``done`` task is still writing; then 503."""

PENDING_POLL_S = 0.01
"""How often a waiting download asks the database whether the task still owes the
file (the database, not the store: on S3 each look would be a request)."""

router = APIRouter(tags=["files"])

SHOWN_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}
"""The only types a file is served as; anything else (PLY included, and any name a
client chose such as ``x.html`` or ``x.svg``) is ``application/octet-stream`` and
downloads as an attachment, so no upload can become a page on the API's origin."""

DOWNLOAD_TYPE = "application/octet-stream"

HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"}


def _headers(key: str) -> tuple[str, dict[str, str]]:
    """The media type and headers a stored file is answered with."""
    name = key.rsplit("/", 1)[-1]
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    shown = SHOWN_TYPES.get(suffix)
    if shown is not None:
        return shown, dict(HEADERS)
    quoted = quote(name, safe="")
    disposition = (
        f'attachment; filename="{name}"' if quoted == name
        else f"attachment; filename*=utf-8''{quoted}"
    )
    return DOWNLOAD_TYPE, {**HEADERS, "Content-Disposition": disposition}


def _task_uid(key: str) -> str | None:
    _, _, rest = key.partition("/")
    uid, slash, _ = rest.partition("/")
    return uid if slash and uid else None


def _owed(key: str, services: Services) -> bool:
    """True when a ``done`` task lists ``key`` and its files are being written;
    pictures made on request are asked for here."""
    area = key.partition("/")[0]
    uid = _task_uid(key)
    if area not in ("results", "thumbnails") or uid is None:
        return False
    task = task_store.get_task(services.db, uid, None)
    if task is None or task.files_pending is None:
        return False
    if task.files_pending is FilesPending.ON_REQUEST:
        if key not in task.result_files:  # its thumbnails are written; only pictures wait
            return False
        if task_store.ask_for_files(services.db, task.uid):
            services.queue.enqueue(task.uid, first=True)
        return True
    return key in task.thumbnails or key in task.result_files


def _wait_for(key: str, services: Services) -> bool:
    """Wait while ``key``'s ``done`` task still owes it: True once it is in the store,
    False if it is not owed (any more); 503 after PENDING_WAIT_S."""
    if not _owed(key, services):
        return False
    deadline = time.monotonic() + PENDING_WAIT_S
    while time.monotonic() < deadline:
        time.sleep(PENDING_POLL_S)
        if not _owed(key, services):  # written (or given up on)
            return services.store.exists(key)
    raise HTTPException(
        status_code=503,
        detail="the file is still being written; try again",
        headers={"Retry-After": "1"},
    )


def _serve(area: str, path: str, services: Services, owner: Owner) -> Response:
    key = f"{area}/{path}"
    uid = _task_uid(key)
    if uid is None or task_store.get_task(services.db, uid, owner) is None:
        raise HTTPException(status_code=404, detail="File not found")
    try:
        return answer_file(key, services)
    except BadKey:
        raise HTTPException(status_code=404, detail="File not found") from None
    except (FileNotFoundError, NotADirectoryError):
        if not _wait_for(key, services):
            raise HTTPException(status_code=404, detail="File not found") from None
    try:
        return answer_file(key, services)
    except (BadKey, FileNotFoundError, NotADirectoryError):
        raise HTTPException(status_code=404, detail="File not found") from None


def answer_file(key: str, services: Services) -> Response:
    """The stored file ``key`` (FileNotFoundError when there is none)."""
    media_type, headers = _headers(key)
    local = services.store.local_path(key)
    if local is not None:
        return FileResponse(local, media_type=media_type, headers=headers)
    size = services.store.size(key)
    chunks = services.store.stream(key)
    return StreamingResponse(
        chunks, media_type=media_type, headers={**headers, "Content-Length": str(size)}
    )


def _route(area: str) -> None:
    def download(path: str, services: ServicesDep, caller: CallerDep) -> Response:
        return _serve(area, path, services, caller.owner(read=True))

    download.__name__ = f"download_{area}"
    download.__doc__ = f"Download a file listed by a task under {area}/."
    router.get(
        f"/{area}/{{path:path}}",
        summary=f"Download from {area}/",
        response_class=FileResponse,
        responses={404: {"model": Message}},
    )(download)


for _area in PUBLIC_AREAS:
    _route(_area)
