"""GET /uploads/…, /thumbnails/…, /results/…: the files tasks list."""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, HTTPException
from fastapi import Response
from fastapi.responses import FileResponse, StreamingResponse

from aerovision.api.deps import ServicesDep
from aerovision.api.schemas import Message
from aerovision.store.files import PUBLIC_AREAS, BadKey

router = APIRouter(tags=["files"])

CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".ply": "application/octet-stream",
    ".json": "application/json",
}


def _content_type(key: str) -> str:
    suffix = "." + key.rsplit(".", 1)[-1].lower() if "." in key else ""
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(key)[0] or "application/octet-stream"


HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"}


def _serve(area: str, path: str, services: ServicesDep) -> Response:
    key = f"{area}/{path}"
    try:
        local = services.store.local_path(key)
        if local is not None:
            return FileResponse(local, media_type=_content_type(key), headers=HEADERS)
        size = services.store.size(key)
        chunks = services.store.stream(key)
    except (BadKey, FileNotFoundError, NotADirectoryError):
        raise HTTPException(status_code=404, detail="File not found") from None
    return StreamingResponse(
        chunks, media_type=_content_type(key), headers={**HEADERS, "Content-Length": str(size)}
    )


def _route(area: str) -> None:
    def download(path: str, services: ServicesDep) -> Response:
        return _serve(area, path, services)

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
