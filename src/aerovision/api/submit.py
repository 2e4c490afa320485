"""Turning an upload into a queued task: check, store, record, enqueue."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from functools import cache
from typing import Any

from fastapi import HTTPException, UploadFile
from pydantic import BaseModel, ConfigDict, Field, create_model

from aerovision import params as tool_params
from aerovision.api.errors import field_error
from aerovision.api.limits import too_large
from aerovision.api.schemas import TaskOut
from aerovision.api.services import Services
from aerovision.engine.errors import InputError
from aerovision.engine.imageio import sniff_image
from aerovision.engine.ply import sniff_ply
from aerovision.observability import REQUEST_ID
from aerovision.store import tasks as task_store
from aerovision.store.files import (
    FileStore,
    StoreUnavailable,
    sanitize_filename,
    thumbnail_name,
    unique_name,
)

log = logging.getLogger(__name__)

SNIFFERS: dict[str, Callable[[bytes, Services], object]] = {
    "image": lambda data, _services: sniff_image(data),
    "ply": lambda data, services: sniff_ply(data, max_points=services.settings.max_ply_points),
}
"""Cheap header checks by input kind (no decoding in the API process)."""

STORE_RETRY_AFTER_S = 30
"""Retry-After of the 503 answered when the file store refuses the uploads."""


@cache
def form_model(tool: str) -> type[BaseModel]:
    """The multipart form of ``POST /api/v1/match/<tool>``: its files and optional params."""
    spec = tool_params.TOOLS[tool]
    files: dict[str, Any] = {
        name: (UploadFile, Field(description=help_text))
        for name, help_text in zip(spec.inputs, spec.input_help, strict=True)
    }
    return create_model(  # type: ignore[no-any-return]
        f"{tool.capitalize()}Form",
        __base__=tool_params.partial_model(spec.params),
        __doc__=f"{spec.summary} Parameters left out take the tool's current settings.",
        **files,
    )


class ChainForm(BaseModel):
    """Run steps in order until one finds something; at most 10 steps."""

    model_config = ConfigDict(extra="forbid")

    image: UploadFile = Field(description=tool_params.CHAIN_INPUT_HELP[0])
    template: UploadFile = Field(description=tool_params.CHAIN_INPUT_HELP[1])
    steps: str = Field(
        min_length=1,
        description='JSON array of at most 10 {"tool": "template"|"feature"|"surface", '
        '"params": {...}} objects; each step\'s params are merged over that tool\'s settings.'
    )


def _read_upload(field: str, upload: UploadFile, limit: int) -> bytes:
    if upload.size is not None and upload.size > limit:
        raise too_large(f"{field}: the file", upload.size, limit, "AEROVISION_MAX_UPLOAD_MB")
    upload.file.seek(0)
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise too_large(f"{field}: the file", None, limit, "AEROVISION_MAX_UPLOAD_MB")
    if not data:
        raise field_error(field, "file is empty", upload.filename)
    return data


def _check_kind(
    services: Services, field: str, filename: str | None, data: bytes, kinds: list[str]
) -> None:
    """Accept ``data`` if it passes the header check of one of ``kinds``."""
    messages = []
    for kind in kinds:
        try:
            SNIFFERS[kind](data, services)
            return
        except InputError as exc:
            messages.append(str(exc))
    raise field_error(field, " / ".join(messages), filename)


def _store_upload(store: FileStore, key: str, data: bytes, *, written: list[str]) -> None:
    """Write one upload; when the store refuses, remove the ``written`` ones of this
    request and answer 503 (the service's fault: the request may be sent again)."""
    try:
        store.write(key, data)
    except StoreUnavailable as exc:
        log.error("cannot store an upload: %s (%r)", exc, exc.__cause__ or exc)
        for done in written:
            try:
                store.delete(done)
            except StoreUnavailable:
                pass
        raise HTTPException(
            status_code=503,
            detail=f"{exc}; the task was not created, try again later",
            headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
        ) from None


def submit(
    services: Services,
    *,
    tool: str,
    uploads: list[tuple[str, UploadFile]],
    kinds: list[str],
    effective_params: Callable[[], dict[str, Any]],
) -> TaskOut:
    """Check the uploads, store them, create the task row and enqueue its uid.

    ``effective_params`` is called after the files passed their checks and
    returns the complete parameters the task will show and run with.
    """
    limit = services.settings.max_upload_bytes
    contents: list[tuple[str, UploadFile, bytes]] = []
    for field, upload in uploads:
        data = _read_upload(field, upload, limit)
        _check_kind(services, field, upload.filename, data, kinds)
        contents.append((field, upload, data))
    params = effective_params()

    uid = str(uuid.uuid4())
    taken: set[str] = set()
    input_files: list[str] = []
    thumbnails: list[str] = []
    for field, upload, data in contents:
        name = unique_name(sanitize_filename(upload.filename, fallback=field), taken)
        taken.add(name)
        key = f"uploads/{uid}/{name}"
        _store_upload(services.store, key, data, written=input_files)
        input_files.append(key)
        thumbnails.append(f"thumbnails/{uid}/{thumbnail_name(name)}")
    task = task_store.create_task(
        services.db,
        uid=uid,
        tool=tool,
        params=params,
        input_files=input_files,
        thumbnails=thumbnails,
        request_id=REQUEST_ID.get(),
    )
    try:
        services.queue.enqueue(uid)
    except Exception:  # the row is the truth: the reaper enqueues it again
        log.exception("task %s stored but not enqueued; the reaper will enqueue it", uid)
    return TaskOut.from_task(task)
