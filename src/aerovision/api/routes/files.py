"""GET /uploads/…, /thumbnails/…, /results/…: the files tasks list."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import FileResponse, StreamingResponse

from aerovision.api.deps import ServicesDep
from aerovision.api.schemas import Message
from aerovision.store.files import PUBLIC_AREAS, BadKey

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


def _serve(area: str, path: str, services: ServicesDep) -> Response:
    key = f"{area}/{path}"
    media_type, headers = _headers(key)
    try:
        local = services.store.local_path(key)
        if local is not None:
            return FileResponse(local, media_type=media_type, headers=headers)
        size = services.store.size(key)
        chunks = services.store.stream(key)
    except (BadKey, FileNotFoundError, NotADirectoryError):
        raise HTTPException(status_code=404, detail="File not found") from None
    return StreamingResponse(
        chunks, media_type=media_type, headers={**headers, "Content-Length": str(size)}
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
