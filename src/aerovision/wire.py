"""A task as JSON, the same for the API and the webhook body: its fields, their order,
and the timestamp format."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aerovision.store.tasks import Task

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S"
"""UTC, to the second, without an offset (SPEC's examples)."""

TASK_FIELDS = (
    "uid", "status", "tool", "params", "created_at", "updated_at", "input_files",
    "thumbnails", "result_files", "result_data", "error",
)
"""``GET /api/v1/tasks/{uid}``."""

WEBHOOK_FIELDS = (
    "uid", "status", "tool", "result_files", "result_data", "error", "params",
    "created_at", "updated_at",
)
"""A webhook's body: SPEC's five fields first, then the rest it allows."""


def timestamp(value: datetime) -> str:
    return value.strftime(TIMESTAMP_FORMAT)


def task_json(task: Task, fields: tuple[str, ...] = TASK_FIELDS) -> dict[str, Any]:
    """``task``'s ``fields`` as JSON-ready values, in that order."""
    every: dict[str, Any] = {
        "uid": task.uid,
        "status": task.status.value,
        "tool": task.tool,
        "params": task.params,
        "created_at": timestamp(task.created_at),
        "updated_at": timestamp(task.updated_at),
        "input_files": task.input_files,
        "thumbnails": task.thumbnails,
        "result_files": task.result_files,
        "result_data": task.result_data,
        "error": task.error,
    }
    return {name: every[name] for name in fields}
