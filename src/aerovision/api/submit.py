"""Turning an upload into a queued task: check, store, record, enqueue."""

from __future__ import annotations

import logging
import uuid
from functools import cache
from typing import Any

from fastapi import UploadFile
from pydantic import BaseModel, Field, create_model

from aerovision import params as tool_params
from aerovision.api.errors import field_error
from aerovision.api.limits import too_large
from aerovision.api.schemas import TaskOut
from aerovision.api.services import Services
from aerovision.engine.errors import InputError
from aerovision.engine.imageio import sniff_image
from aerovision.store import tasks as task_store
from aerovision.store.files import sanitize_filename, thumbnail_name, unique_name
from aerovision.store.settings import get_tool_settings

log = logging.getLogger(__name__)


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


def _read_upload(field: str, upload: UploadFile, limit: int) -> bytes:
    if upload.size is not None and upload.size > limit:
        raise too_large(f"{field}: the file", upload.size, limit, "AEROVISION_MAX_UPLOAD_MB")
    upload.file.seek(0)
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise too_large(f"{field}: the file", None, limit, "AEROVISION_MAX_UPLOAD_MB")
    return data


def _check_input(field: str, filename: str | None, data: bytes, kind: str) -> None:
    """Cheap header checks only: the worker does the decoding."""
    if kind == "image":
        try:
            sniff_image(data)
        except InputError as exc:
            raise field_error(field, str(exc), filename) from exc


def submit(services: Services, tool: str, form: BaseModel) -> TaskOut:
    """Validate the files of ``form``, store them, create the task and enqueue it."""
    spec = tool_params.TOOLS[tool]
    limit = services.settings.max_upload_bytes
    given = form.model_dump(exclude=set(spec.inputs), exclude_none=True)
    uploads: list[tuple[str, UploadFile, bytes]] = []
    for field in spec.inputs:
        upload: UploadFile = getattr(form, field)
        data = _read_upload(field, upload, limit)
        if not data:
            raise field_error(field, "file is empty", upload.filename)
        _check_input(field, upload.filename, data, spec.input_kind)
        uploads.append((field, upload, data))

    effective = tool_params.merge(tool, get_tool_settings(services.db, tool), given)
    uid = str(uuid.uuid4())
    taken: set[str] = set()
    input_files: list[str] = []
    thumbnails: list[str] = []
    for field, upload, data in uploads:
        name = unique_name(sanitize_filename(upload.filename, fallback=field), taken)
        taken.add(name)
        key = f"uploads/{uid}/{name}"
        services.store.write(key, data)
        input_files.append(key)
        if spec.input_kind == "image":
            thumbnails.append(f"thumbnails/{uid}/{thumbnail_name(name)}")
    task = task_store.create_task(
        services.db,
        uid=uid,
        tool=tool,
        params=effective.model_dump(),
        input_files=input_files,
        thumbnails=thumbnails,
    )
    try:
        services.queue.enqueue(uid)
    except Exception:  # the row is the truth: the reaper enqueues it again
        log.exception("task %s stored but not enqueued; the reaper will enqueue it", uid)
    return TaskOut.from_task(task)
