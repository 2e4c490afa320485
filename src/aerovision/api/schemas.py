"""Response and request bodies of the HTTP API (one model per direction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from aerovision.store.tasks import Task

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S"


class TaskOut(BaseModel):
    """A task: what ran, on what, and what came out."""

    uid: str = Field(description="Task id (UUID4).")
    status: Literal["queued", "processing", "done", "error"] = Field(
        description="queued → processing → done | error."
    )
    tool: str = Field(description="template, feature, surface or chain.")
    params: dict[str, Any] = Field(
        description="Effective parameters: the request's values over the tool's settings."
    )
    created_at: datetime = Field(description="When the task was submitted (UTC).")
    updated_at: datetime = Field(description="Last status change (UTC).")
    input_files: list[str] = Field(description="Uploaded inputs, downloadable at GET /<path>.")
    thumbnails: list[str] = Field(
        description="Input thumbnails (long side 256 px), downloadable at GET /<path> once "
        "the task has started."
    )
    result_files: list[str] = Field(description="Result pictures, downloadable at GET /<path>.")
    result_data: dict[str, Any] = Field(description="The tool's JSON result; {} until done.")
    error: str | None = Field(description="What went wrong, when status is error.")

    @field_serializer("created_at", "updated_at")
    def _timestamp(self, value: datetime) -> str:
        return value.strftime(TIMESTAMP_FORMAT)

    @classmethod
    def from_task(cls, task: Task) -> TaskOut:
        return cls(
            uid=task.uid,
            status=task.status.value,
            tool=task.tool,
            params=task.params,
            created_at=task.created_at,
            updated_at=task.updated_at,
            input_files=task.input_files,
            thumbnails=task.thumbnails,
            result_files=task.result_files,
            result_data=task.result_data,
            error=task.error,
        )


class TaskList(BaseModel):
    total: int = Field(description="How many tasks exist in all.")
    tasks: list[TaskOut] = Field(description="This page, newest first.")


class ToolSettingsOut(BaseModel):
    tool: str = Field(description="template, feature or surface.")
    params: dict[str, Any] = Field(description="Current defaults of the tool's parameters.")


class Message(BaseModel):
    detail: str = Field(description="What went wrong.")


class HealthOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "degraded"] = Field(description="ok, or degraded (HTTP 503).")
    database: str = Field(description="ok, or the error reaching the database.")
    queue: str = Field(description="ok, or the error reaching the queue.")
    queue_depth: int | None = Field(description="Tasks waiting for a worker.")
    workers: int = Field(description="Workers that reported in during the last 30 s.")
    tasks: dict[str, int] = Field(description="Task counts by status.")


class VersionOut(BaseModel):
    name: str = Field(description="Always aerovision.")
    version: str = Field(description="Version of the service.")
    api_version: str = Field(description="Version of the HTTP API (path prefix).")
    opencv: str = Field(description="Version of OpenCV the workers use.")
    python: str = Field(description="Python version of this process.")
