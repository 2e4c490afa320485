"""/api/v1/libraries: image libraries, their images, and search (SPEC-libraries.md);
/libraries/…: the files of their images."""

from __future__ import annotations

import asyncio
import re
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from aerovision.api.auth import CallerDep
from aerovision.api.deps import ServicesDep
from aerovision.api.errors import field_error
from aerovision.api.routes.files import answer_file
from aerovision.api.schemas import (
    AddOut,
    ContSign,
    ImageList,
    ImageOut,
    ImagePatch,
    IndexOut,
    LibraryIn,
    LibraryList,
    LibraryOut,
    LibraryPatch,
    Message,
    SearchOut,
)
from aerovision.api.services import Services
from aerovision.engine import retrieval
from aerovision.engine.errors import InputError
from aerovision.libraries import service as libs
from aerovision.libraries.pool import Described
from aerovision.store import libraries as store
from aerovision.store.files import BadKey
from aerovision.store.scope import Owner

router = APIRouter(tags=["libraries"])

PREFIX = "/api/v1/libraries"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Message}}
NOT_JSON: dict[int | str, dict[str, Any]] = {
    400: {"model": Message, "description": "The body is not JSON (or not UTF-8)."}
}
NOT_MULTIPART: dict[int | str, dict[str, Any]] = {
    400: {"model": Message, "description": "The multipart body could not be parsed."}
}
MAX_OFFSET = 1_000_000_000


def _library(services: Services, library_id: str, owner: Owner) -> store.Library:
    found = (store.get_library(services.db, library_id, owner)
             if _UUID.match(library_id) else None)
    if found is None:
        raise HTTPException(status_code=404, detail="Library not found")
    return found


def _out(library: store.Library, index: IndexOut | None = None) -> LibraryOut:
    return LibraryOut(
        library_id=library.library_id, name=library.name, description=library.description,
        image_count=library.image_count, created_at=library.created_at, index=index,
    )


def contsign_of(image: store.Image) -> ContSign:
    return ContSign(**libs.contsign_json(image))


def image_out(image: store.Image) -> ImageOut:
    return ImageOut(
        image_id=image.image_id, contsign=contsign_of(image), width=image.width,
        height=image.height, brief=image.brief, tags=image.tags, external_id=image.external_id,
        image=image.file_key, thumbnail=image.thumbnail_key, created_at=image.created_at,
    )


@router.post(PREFIX, status_code=201, summary="Create a library",
             responses={409: {"model": Message}, **NOT_JSON})
def create_library(body: LibraryIn, services: ServicesDep, caller: CallerDep) -> LibraryOut:
    """A new, empty library of the account; its name is unique in the account (409)."""
    name = body.name  # its pattern is the schema's
    try:
        return _out(store.create_library(services.db, caller.owner(read=False), name,
                                         body.description))
    except store.NameTaken:
        raise HTTPException(409, f"the account has a library named {name!r}") from None


@router.get(PREFIX, summary="List libraries")
def list_libraries(
    services: ServicesDep, caller: CallerDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Skip this many.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 100,
    name: Annotated[str | None, Query(max_length=64, description="Only the library of this "
                                      "name (0 or 1 of them).")] = None,
) -> LibraryList:
    owner = caller.owner(read=True)
    if name is not None:
        found = store.library_by_name(services.db, owner, name)
        rows = [] if found is None else [found]
        return LibraryList(total=len(rows), libraries=[_out(r) for r in rows[offset:][:limit]])
    total, page = store.list_libraries(services.db, owner, offset=offset, limit=limit)
    return LibraryList(total=total, libraries=[_out(r) for r in page])


@router.get(PREFIX + "/{library_id}", summary="A library", responses=NOT_FOUND)
def get_library(library_id: str, services: ServicesDep, caller: CallerDep) -> LibraryOut:
    """The library, with its image count and the state of this process's index."""
    library = _library(services, library_id, caller.owner(read=True))
    return _out(library, _index_state(services, library_id))


def _index_state(services: Services, library_id: str) -> IndexOut:
    index = services.libraries.indexes.get(library_id)  # brought up to date: what it holds
    if index is None:
        size = services.libraries.indexes.file_size(library_id)
        return IndexOut(state="not loaded", entries=0, size_bytes=size)
    return IndexOut(state="ready", entries=len(index), size_bytes=index.nbytes)


@router.patch(PREFIX + "/{library_id}", summary="Change a library",
              responses={**NOT_FOUND, **NOT_JSON})
def patch_library(
    library_id: str, body: LibraryPatch, services: ServicesDep, caller: CallerDep
) -> LibraryOut:
    owner = caller.owner(read=False)
    _library(services, library_id, owner)
    store.update_library(services.db, owner, library_id, body.description)
    return _out(_library(services, library_id, owner))


@router.delete(PREFIX + "/{library_id}", status_code=204, summary="Delete a library",
               responses=NOT_FOUND)
def delete_library(library_id: str, services: ServicesDep, caller: CallerDep) -> Response:
    """The library, its images, their files and its index."""
    owner = caller.owner(read=False)
    _library(services, library_id, owner)
    if not services.libraries.remove_library(owner, library_id):
        raise HTTPException(status_code=404, detail="Library not found")
    return Response(status_code=204)


@router.post(PREFIX + "/{library_id}/images", status_code=201, summary="Add images",
             responses={**NOT_FOUND, **NOT_MULTIPART, 413: {"model": Message}})
async def add_images(
    library_id: str,
    services: ServicesDep,
    caller: CallerDep,
    image: Annotated[list[UploadFile], File(description="Up to 100 images (PNG, JPEG, BMP, "
                                                        "TIFF); repeat the field.")],
    brief: Annotated[str | None, Form(description="At most 4096 characters; returned "
                                                  "verbatim by searches.")] = None,
    tags: Annotated[str | None, Form(description="Comma-separated, at most 16.")] = None,
    external_id: Annotated[str | None, Form(max_length=255, description="Your id for the "
                                            "image, unique in the library (one file only).")]
    = None,
    dedup: Annotated[store.Dedup, Form(description="exact (default): refuse an image whose "
                                       "content signature is there; near: also refuse a "
                                       "duplicate hit; off.")] = "exact",
) -> AddOut:
    """Add images; each file's entry says what became of it, and one bad file never
    loses the others (201 even when every file was refused)."""
    owner = caller.owner(read=False)
    await run_in_threadpool(_library, services, library_id, owner)
    if len(image) > libs.MAX_FILES:
        raise field_error("image", f"at most {libs.MAX_FILES} files per request, "
                                   f"got {len(image)}")
    if external_id is not None and len(image) > 1:
        raise field_error("external_id", "external_id names one image: send one file with it")
    try:
        checked_brief = libs.check_brief(brief)
        checked_tags = libs.parse_tags(tags)
    except libs.BadRequest as exc:
        raise field_error(str(exc).split(":")[0], str(exc).split(": ", 1)[1]) from None
    limit = services.settings.max_upload_bytes
    room = asyncio.Semaphore(services.libraries.pool.workers)
    too_large = libs.Refused(413, f"the file is over the limit of {limit / 2**20:g} MB "
                                  "(AEROVISION_MAX_UPLOAD_MB)")

    async def describe(upload: UploadFile) -> tuple[bytes, Described | libs.Refused]:
        data = await upload.read(limit + 1)
        if len(data) > limit:
            return b"", too_large
        async with room:  # as many at once as there are describing processes
            return data, await run_in_threadpool(services.libraries.describe, data)

    # described side by side, added in the request's order
    described = await asyncio.gather(*(describe(upload) for upload in image))
    outcomes = [
        await run_in_threadpool(partial(
            services.libraries.add_described, owner, library_id, data, one,
            brief=checked_brief, tags=checked_tags, external_id=external_id, dedup=dedup,
        ))
        for data, one in described
    ]
    entries: list[dict[str, Any]] = []
    for upload, outcome in zip(image, outcomes, strict=True):
        if outcome is None:
            raise HTTPException(status_code=404, detail="Library not found")
        if isinstance(outcome, store.Image):
            entries.append(image_out(outcome).model_dump(mode="json"))
            continue
        error: dict[str, Any] = {"status": outcome.status, "detail": outcome.detail,
                                 "filename": upload.filename}
        if outcome.existing is not None:
            error["image"] = image_out(outcome.existing).model_dump(mode="json")
        entries.append({"error": error})
    return AddOut(images=entries)


@router.get(PREFIX + "/{library_id}/images", summary="List images", responses=NOT_FOUND)
def list_images(
    library_id: str, services: ServicesDep, caller: CallerDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Skip this many.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 100,
    tag: Annotated[str | None, Query(max_length=64, description="Only images with this "
                                     "tag.")] = None,
) -> ImageList:
    owner = caller.owner(read=True)
    _library(services, library_id, owner)
    total, rows = store.list_images(services.db, owner, library_id, offset=offset, limit=limit,
                                    tag=tag)
    return ImageList(total=total, images=[image_out(r) for r in rows])


def _image(services: Services, owner: Owner, library_id: str, image_id: str) -> store.Image:
    _library(services, library_id, owner)
    found = store.get_image(services.db, owner, library_id, image_id) \
        if _UUID.match(image_id) else None
    if found is None:
        raise HTTPException(status_code=404, detail="Image not found")
    return found


@router.get(PREFIX + "/{library_id}/images/{image_id}", summary="An image", responses=NOT_FOUND)
def get_image(library_id: str, image_id: str, services: ServicesDep,
              caller: CallerDep) -> ImageOut:
    return image_out(_image(services, caller.owner(read=True), library_id, image_id))


@router.patch(PREFIX + "/{library_id}/images/{image_id}", summary="Change an image's brief "
              "or tags", responses={**NOT_FOUND, **NOT_JSON})
def patch_image(library_id: str, image_id: str, body: ImagePatch, services: ServicesDep,
                caller: CallerDep) -> ImageOut:
    owner = caller.owner(read=False)
    _image(services, owner, library_id, image_id)
    try:
        brief = None if body.brief is None else libs.check_brief(body.brief)
        tags = None if body.tags is None else libs.parse_tags(body.tags)
    except libs.BadRequest as exc:
        raise field_error(str(exc).split(":")[0], str(exc).split(": ", 1)[1]) from None
    changed = store.update_image(services.db, owner, library_id, image_id, brief=brief,
                                 tags=tags)
    if not changed:
        raise HTTPException(status_code=404, detail="Image not found")
    return image_out(changed[0])


@router.delete(PREFIX + "/{library_id}/images/{image_id}", status_code=204,
               summary="Remove an image", responses=NOT_FOUND)
def delete_image(library_id: str, image_id: str, services: ServicesDep,
                 caller: CallerDep) -> Response:
    owner = caller.owner(read=False)
    _image(services, owner, library_id, image_id)
    if not services.libraries.remove_images(owner, library_id, image_id=image_id):
        raise HTTPException(status_code=404, detail="Image not found")
    return Response(status_code=204)


def parse_contsign(text: str) -> int | None:
    """The signature ``<sign1>,<sign2>`` names (None: out of range, so no image has it)."""
    sign1, sign2 = (int(part) for part in text.split(","))
    try:
        return retrieval.to_signed(retrieval.join_contsign(sign1, sign2))
    except InputError:
        return None


@router.delete(PREFIX + "/{library_id}/images", status_code=204,
               summary="Remove images by content signature", responses=NOT_FOUND)
def delete_by_contsign(
    library_id: str, services: ServicesDep, caller: CallerDep,
    contsign: Annotated[str, Query(pattern=r"^[0-9]{1,10},[0-9]{1,10}$",
                                   description="<sign1>,<sign2>: the two unsigned 32-bit "
                                   "halves of the signature.")],
) -> Response:
    """Every image of the library with this content signature; 404 when there is none."""
    owner = caller.owner(read=False)
    _library(services, library_id, owner)
    sign = parse_contsign(contsign)
    if sign is None or not services.libraries.remove_images(owner, library_id, contsign=sign):
        raise HTTPException(status_code=404, detail="No image has this content signature")
    return Response(status_code=204)


@router.post(PREFIX + "/{library_id}/search", summary="Search a library",
             responses={**NOT_FOUND, **NOT_MULTIPART, 413: {"model": Message}},
             response_model=SearchOut)
async def search(
    library_id: str,
    services: ServicesDep,
    caller: CallerDep,
    image: Annotated[UploadFile, File(description="The query image.")],
    mode: Annotated[libs.Mode, Form(description="auto (duplicates, then verified objects, "
                                    "then similar), duplicate, object or similar.")] = "auto",
    limit: Annotated[int, Form(ge=1, le=100, description="Hits per page, 1-100.")] = 10,
    offset: Annotated[int, Form(ge=0, le=10_000, description="Hits to skip.")] = 0,
    min_score: Annotated[float, Form(ge=0, le=1, description="Only hits scoring at least "
                                     "this, 0-1.")] = 0.0,
    tag: Annotated[str | None, Form(max_length=64, description="Only images with this "
                                    "tag.")] = None,
) -> Response:
    owner = caller.owner(read=True)
    library = await run_in_threadpool(_library, services, library_id, owner)
    limit_bytes = services.settings.max_upload_bytes
    data = await image.read(limit_bytes + 1)
    if len(data) > limit_bytes:
        raise HTTPException(413, f"image: the file is over the limit of "
                                 f"{limit_bytes / 2**20:g} MB (AEROVISION_MAX_UPLOAD_MB)")
    found = await run_in_threadpool(partial(
        services.libraries.search, library.library_id, data, mode=mode, limit=limit,
        offset=offset, min_score=min_score, tag=tag or None,
    ))
    if found is None:
        raise HTTPException(status_code=404, detail="Library not found")
    if isinstance(found, libs.Refused):
        if found.status == 413:
            raise HTTPException(413, f"image: {found.detail}")
        raise field_error("image", found.detail, image.filename)
    # the geometry of a hit only when it was checked (the model documents it optional)
    return JSONResponse(libs.found_json(found))


@router.get("/libraries/{path:path}", summary="Download a library image or thumbnail",
            responses=NOT_FOUND)
def download(path: str, services: ServicesDep, caller: CallerDep) -> Response:
    """``libraries/<library_id>/images/…`` and ``…/thumbnails/…``, as images list them."""
    library_id = path.split("/", 1)[0]
    if not _UUID.match(library_id) or store.get_library(
        services.db, library_id, caller.owner(read=True)
    ) is None:
        raise HTTPException(status_code=404, detail="File not found")
    try:
        return answer_file(f"libraries/{path}", services)
    except (BadKey, FileNotFoundError, NotADirectoryError):
        raise HTTPException(status_code=404, detail="File not found") from None
