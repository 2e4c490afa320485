"""GET /api/v1/tasks and /api/v1/tasks/{uid}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import JSONResponse

from aerovision import wire
from aerovision.api.auth import CallerDep
from aerovision.api.deps import ServicesDep
from aerovision.api.schemas import Message, TaskList, TaskOut
from aerovision.store import tasks as task_store

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])

MAX_OFFSET = 1_000_000_000
"""Largest ``offset`` accepted (beyond any real table; keeps SQL integers in range)."""


@router.get("", summary="List tasks, newest first")
def list_tasks(
    services: ServicesDep,
    caller: CallerDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Tasks to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size, 1–200.")] = 50,
) -> TaskList:
    total, tasks = task_store.list_tasks(
        services.db, caller.owner(read=True), offset=offset, limit=limit
    )
    return TaskList(total=total, tasks=[TaskOut.from_task(t) for t in tasks])


@router.get(
    "/{uid}", summary="One task", response_model=TaskOut, responses={404: {"model": Message}}
)
def get_task(uid: str, services: ServicesDep, caller: CallerDep) -> Response:
    """The task, as clients poll it until ``done``: written straight from the stored
    row (the same JSON as TaskOut, without validating it again on every poll)."""
    task = task_store.get_task(services.db, uid, caller.owner(read=True))
    if task is None:
        raise HTTPException(status_code=404, detail="Task not found")
    return JSONResponse(wire.task_json(task))
