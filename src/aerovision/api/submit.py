"""Turning an upload into a queued task: check, store, record, enqueue."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from fastapi import HTTPException, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, create_model

from aerovision import params as tool_params
from aerovision.api.errors import field_error
from aerovision.api.limits import too_large
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
from aerovision.store.settings import get_tool_settings
from aerovision.tools import TOOLS
from aerovision.tools.spec import ParamsError, ResolveContext, Tool, ToolParams

log = logging.getLogger(__name__)

SNIFFERS: dict[str, Callable[[bytes, Services], object]] = {
    "image": lambda data, _services: sniff_image(data),
    "cloud": lambda data, services: sniff_ply(data, max_points=services.settings.max_ply_points),
}
"""Cheap header checks by input kind (no decoding in the API process)."""

STORE_RETRY_AFTER_S = 30
"""Retry-After of the 503 answered when the file store refuses the uploads."""


@cache
def form_model(name: str) -> type[BaseModel]:
    """The multipart form of ``POST /api/v1/match/<name>``: its files, then its own
    fields (a chain's ``steps``) or its params, each optional."""
    tool = TOOLS[name]
    files: dict[str, Any] = {
        spec.name: (UploadFile if spec.required else UploadFile | None,
                    Field(description=spec.help) if spec.required
                    else Field(None, description=spec.help))
        for spec in tool.inputs
    }
    params_model: type[ToolParams] = tool.params
    base = tool.form or tool_params.partial_model(params_model)
    doc = f"{tool.summary} Parameters left out take the tool's current settings."
    return create_model(
        f"{name.capitalize()}Form",
        __base__=base,
        __doc__=doc if tool.form is None else tool.summary,
        **files,
    )


def _params_for(
    services: Services, account_id: str
) -> Callable[[Tool[Any], Mapping[str, Any]], dict[str, Any]]:
    def params_for(tool: Tool[Any], given: Mapping[str, Any]) -> dict[str, Any]:
        tool_params.check_given(tool.name, given)
        current = get_tool_settings(services.db, tool.name, account_id)
        return tool_params.merge(tool.name, current, given).model_dump()

    return params_for


def submit_tool(
    services: Services, name: str, form: BaseModel, account_id: str
) -> task_store.Task:
    """``POST /api/v1/match/<name>``: the form's files and fields → a queued task of
    ``account_id``, with that account's settings."""
    tool = TOOLS[name]
    uploads = [(n, getattr(form, n)) for n in tool.input_names if getattr(form, n) is not None]
    if tool.resolve is not None:
        context = ResolveContext(
            TOOLS, _params_for(services, account_id), services.settings.max_chain_steps
        )
        try:
            params, kinds = tool.resolve(form, context)
        except ParamsError as exc:
            raise RequestValidationError(exc.errors) from None
        return submit(services, tool=name, uploads=uploads, kinds=list(kinds),
                      effective_params=lambda: params, account_id=account_id)
    given = form.model_dump(exclude=set(tool.input_names), exclude_none=True)
    return submit(
        services,
        tool=name,
        uploads=uploads,
        kinds=list(tool.input_kinds),
        effective_params=lambda: tool_params.merge(
            name, get_tool_settings(services.db, name, account_id), given
        ).model_dump(),
        account_id=account_id,
    )


def _read_upload(field: str, upload: UploadFile, limit: int) -> bytes:
    if upload.size is not None and upload.size > limit:
        raise too_large(f"{field}: the file", upload.size, limit, "AEROVISION_MAX_UPLOAD_MB")
    upload.file.seek(0)
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise too_large(f"{field}: the file", None, limit, "AEROVISION_MAX_UPLOAD_MB")
    return data


def _check_kind(
    services: Services, field: str, filename: str | None, data: bytes, kinds: list[str]
) -> list[Any]:
    """No errors if ``data`` passes the header check of one of ``kinds``; else the 422
    error naming ``field``."""
    if not data:
        return list(field_error(field, "file is empty", filename).errors())
    messages = []
    for kind in kinds:
        try:
            SNIFFERS[kind](data, services)
            return []
        except InputError as exc:
            messages.append(str(exc))
    return list(field_error(field, " / ".join(messages), filename).errors())


def _store_upload(store: FileStore, key: str, data: bytes, *, written: list[str]) -> None:
    """Write one upload; when the store refuses, remove the ``written`` ones of this
    request and answer 503 (the service's fault: the request may be sent again)."""
    try:
        store.write(key, data)
    except StoreUnavailable as exc:
        log.error("cannot store an upload: %s (%r)", exc, exc.__cause__ or exc)
        for done in written:
            with contextlib.suppress(StoreUnavailable):
                store.delete(done)
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
    account_id: str,
) -> task_store.Task:
    """Check the uploads, store them, create the task row and enqueue its uid.

    ``effective_params`` is called after the files passed their checks and
    returns the complete parameters the task will show and run with.
    """
    limit = services.settings.max_upload_bytes
    contents: list[tuple[str, UploadFile, bytes]] = []
    errors: list[Any] = []  # every refused file is named at once, not one per attempt
    for field, upload in uploads:
        data = _read_upload(field, upload, limit)
        errors += _check_kind(services, field, upload.filename, data, kinds)
        contents.append((field, upload, data))
    if errors:
        raise RequestValidationError(errors)
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
        account_id=account_id,
    )
    try:
        services.queue.enqueue(uid)
    except Exception:  # the row is the truth: the reaper enqueues it again
        log.exception("task %s stored but not enqueued; the reaper will enqueue it", uid)
    return task
