"""Response and request bodies of the HTTP API (one model per direction)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from aerovision import wire
from aerovision.store.models import AccountType, TaskStatus
from aerovision.store.tasks import Task


class TaskOut(BaseModel):
    """A task: what ran, on what, and what came out."""

    uid: str = Field(description="Task id (UUID4).")
    status: TaskStatus = Field(
        description="queued → processing → done | error."
    )
    tool: str = Field(description="The tool that ran (GET /api/v1/tools lists them).")
    params: dict[str, Any] = Field(
        description="Effective parameters: the request's values over the tool's settings."
    )
    created_at: datetime = Field(description="When the task was submitted (UTC).")
    updated_at: datetime = Field(description="Last status change (UTC).")
    input_files: list[str] = Field(description="Uploaded inputs, downloadable at GET /<path>.")
    thumbnails: list[str] = Field(
        description="Input thumbnails (long side 256 px), downloadable at GET /<path> once "
        "the task is done."
    )
    result_files: list[str] = Field(
        description="Result pictures, downloadable at GET /<path> once the task is done "
        "(the first download of one may wait while it is drawn)."
    )
    result_data: dict[str, Any] = Field(description="The tool's JSON result; {} until done.")
    error: str | None = Field(description="What went wrong, when status is error.")

    @field_serializer("created_at", "updated_at")
    def _timestamp(self, value: datetime) -> str:
        return wire.timestamp(value)

    @classmethod
    def from_task(cls, task: Task) -> TaskOut:
        return cls.model_validate(wire.task_json(task))


class TaskList(BaseModel):
    total: int = Field(description="How many tasks exist in all.")
    tasks: list[TaskOut] = Field(description="This page, newest first.")


class ToolSettingsOut(BaseModel):
    tool: str = Field(description="A tool with settings (GET /api/v1/tools lists them).")
    params: dict[str, Any] = Field(description="Current defaults of the tool's parameters.")


class Message(BaseModel):
    detail: str = Field(description="What went wrong.")


class HealthOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "degraded"] = Field(description="ok, or degraded (HTTP 503).")
    auth: Literal["off", "keys", "accounts"] = Field(
        "off", description="Who may call (AEROVISION_AUTH): off, keys or accounts."
    )
    database: str = Field(
        description="ok, or what failed in short, e.g. 'error: database unreachable "
        "(OperationalError)' (no hosts or paths: the server log has the details)."
    )
    queue: str = Field(
        description="ok, or what failed in short, e.g. 'error: queue unreachable "
        "(ConnectionError)'."
    )
    files: str = Field(
        "ok",
        description="ok, or why the file store cannot write (a small file is written and "
        "deleted, at most every few seconds).",
    )
    queue_depth: int | None = Field(description="Tasks waiting for a worker.")
    workers: int = Field(description="Workers that reported in during the last 30 s.")
    tasks: dict[str, int] = Field(description="Task counts by status.")


class VersionOut(BaseModel):
    name: str = Field(description="Always aerovision.")
    version: str = Field(description="Version of the service.")
    api_version: str = Field(description="Version of the HTTP API (path prefix).")
    opencv: str = Field(description="Version of OpenCV the workers use.")
    python: str = Field(description="Python version of this process.")


class WebhookIn(BaseModel):
    """A receiver to notify when a task ends."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=2048,
        # documented only: the validator below gives the precise reason for a refusal
        json_schema_extra={"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"},
        description="http:// or https:// URL that receives a POST per task. It must reach a "
        "public address: loopback, link-local, private and metadata addresses are refused "
        "(unless the server sets AEROVISION_WEBHOOK_ALLOW_PRIVATE=1). No control characters "
        "or whitespace. User info (https://user:password@host/…) is sent as HTTP Basic "
        "authentication and shown masked.",
    )
    secret: str | None = Field(
        None,
        max_length=1024,
        description="If set, each POST carries X-Webhook-Signature: sha256=<hex HMAC-SHA256 "
        "of the body with this secret>. Never shown again. No control characters.",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        from aerovision.netpolicy import validate_url

        return validate_url(value)

    @field_validator("secret")
    @classmethod
    def _printable_secret(cls, value: str | None) -> str | None:
        import unicodedata

        if value is None:
            return None
        for position, char in enumerate(value):
            if unicodedata.category(char) in ("Cc", "Cs"):
                raise ValueError(
                    f"secret must not contain control characters: U+{ord(char):04X} at "
                    f"position {position}"
                )
        return value


class WebhookOut(BaseModel):
    id: str = Field(description="Webhook id (wh_…).")
    url: str = Field(
        description="Where task notifications are posted; a password in it is shown as ***."
    )
    created_at: datetime = Field(description="When it was registered (UTC).")

    @field_serializer("created_at")
    def _timestamp(self, value: datetime) -> str:
        return wire.timestamp(value)


class DeliveryOut(BaseModel):
    id: str = Field(description="Delivery id (dl_…), sent as X-Webhook-Delivery; a retry "
                    "or duplicate carries the same id.")
    task_uid: str = Field(description="The task whose end is notified.")
    event: str = Field(description="task.done or task.error.")
    status: Literal["pending", "delivered", "failed"] = Field(
        description="pending (will be tried again), delivered (2xx) or failed (gave up)."
    )
    attempts: int = Field(description="Attempts made so far.")
    response_code: int | None = Field(description="HTTP status of the last answer, if any.")
    error: str | None = Field(description="Why the last attempt failed, if it did.")
    next_attempt_at: datetime | None = Field(
        description="When a pending delivery is tried next (UTC)."
    )
    created_at: datetime = Field(description="When the task ended (UTC).")
    delivered_at: datetime | None = Field(description="When a 2xx answer came (UTC).")

    @field_serializer("created_at", "next_attempt_at", "delivered_at")
    def _timestamp(self, value: datetime | None) -> str | None:
        return wire.timestamp(value) if value is not None else None


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    login: str = Field(min_length=1, max_length=255, description="Unique, e.g. an e-mail.")
    password: str = Field(
        min_length=8, max_length=1024, description="8 characters or more (stored as argon2id)."
    )
    account_type: AccountType = Field(
        AccountType.USER, description="user, advanced_user or admin (as in LUNA)."
    )
    description: str = Field("", max_length=1000, description="Free text.")


class AccountPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(
        None, min_length=8, max_length=1024, description="A new password (8 characters or more)."
    )
    description: str | None = Field(None, max_length=1000, description="A new description.")


class AccountOut(BaseModel):
    account_id: str = Field(description="Account id (UUID; `default` is all zeros).")
    login: str = Field(description="The login.")
    account_type: AccountType = Field(description="user, advanced_user or admin.")
    description: str = Field(description="Free text.")
    created_at: datetime = Field(description="When the account was created (UTC).")

    @field_serializer("created_at")
    def _timestamp(self, value: datetime) -> str:
        return wire.timestamp(value)


class MyAccountOut(AccountOut):
    via: Literal["off", "key", "password", "token"] = Field(
        description="How the request was authenticated: off (no credentials needed), key "
        "(a static key), password (Basic) or token."
    )
    permissions: dict[str, list[str]] = Field(
        description="Every permission these credentials hold, by resource."
    )
    visibility_area: Literal["account", "all"] = Field(
        description="all: these credentials may read every account's data."
    )


class AccountList(BaseModel):
    total: int = Field(description="Accounts in all.")
    accounts: list[AccountOut] = Field(description="This page, oldest first.")


_PERMISSIONS_HELP = (
    'Resources and their actions, e.g. {"tasks": ["view", "creation"], "analyze": '
    '["creation"]} (README, "Permissions").'
)


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field("", max_length=1000, description="What the token is for.")
    expiration_time: datetime | None = Field(
        None, description="UTC (an offset is converted); null: never expires."
    )
    permissions: dict[str, list[str]] = Field(description=_PERMISSIONS_HELP)
    visibility_area: Literal["account", "all"] = Field(
        "account",
        description="all: may read every account's data (advanced_user and admin only).",
    )


class TokenPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(None, max_length=1000, description="A new description.")
    expiration_time: datetime | None = Field(
        None, description="A new expiry (UTC); null: never expires."
    )
    permissions: dict[str, list[str]] | None = Field(None, description=_PERMISSIONS_HELP)


class TokenOut(BaseModel):
    token_id: str = Field(description="Token id (UUID), for GET/PATCH/DELETE.")
    description: str = Field(description="What the token is for.")
    permissions: dict[str, list[str]] = Field(description=_PERMISSIONS_HELP)
    expiration_time: datetime | None = Field(description="Expiry (UTC), or null.")
    visibility_area: str = Field(description="account, or all.")
    created_at: datetime = Field(description="When the token was created (UTC).")

    @field_serializer("created_at", "expiration_time")
    def _timestamp(self, value: datetime | None) -> str | None:
        return wire.timestamp(value) if value is not None else None


class NewTokenOut(TokenOut):
    token: str = Field(description="The secret: shown this once, never again.")


class LibraryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                      description="1-64 characters of A-Z, a-z, 0-9, '_', '.' and '-'; "
                      "unique in the account.")
    description: str = Field("", max_length=4096, description="Free text.")


class LibraryPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(max_length=4096, description="A new description.")


class IndexOut(BaseModel):
    """This API process's index of the library (loaded when the library is shown)."""

    state: Literal["ready", "not loaded"] = Field(
        description="ready: this API process holds the index in memory."
    )
    entries: int = Field(description="Images in this process's index.")
    size_bytes: int = Field(description="Bytes of the index (its arrays, or its file).")


class LibraryOut(BaseModel):
    library_id: str = Field(description="Library id (UUID).")
    name: str = Field(description="The library's name.")
    description: str = Field(description="Free text.")
    image_count: int = Field(description="Images in the library.")
    created_at: datetime = Field(description="When the library was created (UTC).")
    index: IndexOut | None = Field(
        None, description="Its index (GET /api/v1/libraries/{library_id} only)."
    )

    @field_serializer("created_at")
    def _timestamp(self, value: datetime) -> str:
        return wire.timestamp(value)


class LibraryList(BaseModel):
    total: int = Field(description="Libraries in all.")
    libraries: list[LibraryOut] = Field(description="This page, oldest first.")


class ContSign(BaseModel):
    sign1: int = Field(description="High 32 bits of the 64-bit content signature.")
    sign2: int = Field(description="Low 32 bits.")


class ImageOut(BaseModel):
    image_id: str = Field(description="Image id (UUID).")
    contsign: ContSign = Field(description="Content signature of the decoded pixels.")
    width: int = Field(description="Pixels.")
    height: int = Field(description="Pixels.")
    brief: str = Field(description="As given; searches return it verbatim.")
    tags: list[str] = Field(description="Its tags (searches and lists filter by one).")
    external_id: str | None = Field(description="The caller's own id, unique in the library.")
    image: str = Field(description="The image file, downloadable at GET /<path>.")
    thumbnail: str = Field(description="Its JPEG thumbnail (long side 256), at GET /<path>.")
    created_at: datetime = Field(description="When it was added (UTC).")

    @field_serializer("created_at")
    def _timestamp(self, value: datetime) -> str:
        return wire.timestamp(value)


class ImageList(BaseModel):
    total: int = Field(description="Images in all (with the tag, if one is given).")
    images: list[ImageOut] = Field(description="This page, oldest first.")


class ImagePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    brief: str | None = Field(None, max_length=4096, description="A new brief.")
    tags: list[Annotated[str, Field(pattern=r"^[^,\x00-\x1f]{1,64}$")]] | None = Field(
        None, max_length=16,
        description="New tags (at most 16, each 1-64 characters without commas), replacing "
        "the old.",
    )


class AddError(BaseModel):
    status: int = Field(description="409 duplicate or taken external_id, 413 too large, "
                        "422 not an image.")
    detail: str
    filename: str | None = Field(None, description="The file's name as uploaded.")
    image: ImageOut | None = Field(None, description="For a duplicate: the image already there.")


class AddOut(BaseModel):
    images: list[dict[str, Any]] = Field(
        description="One entry per file, in order: an image object, or "
        '{"error": {"status", "detail", "filename", "image"?}}.'
    )


class HitOut(BaseModel):
    image_id: str = Field(description="The library image found.")
    score: float = Field(description="0-1, higher is better.")
    match_type: Literal["duplicate", "object", "similar"] = Field(
        description="duplicate: the same picture; object: its content, geometrically "
        "verified, in the query; similar: looks alike."
    )
    brief: str = Field(description="The image's brief, verbatim.")
    tags: list[str] = Field(description="The image's tags.")
    contsign: ContSign = Field(description="The image's content signature.")
    external_id: str | None = Field(description="The caller's own id of the image.")
    image: str = Field(description="The library image's file, at GET /<path>.")
    thumbnail: str = Field(description="The library image's thumbnail, at GET /<path>.")
    width: int = Field(description="The library image's width, pixels.")
    height: int = Field(description="The library image's height, pixels.")
    inliers: int | None = Field(None, description="Keypoint matches of the verified geometry "
                                "(duplicate and object hits checked geometrically; absent "
                                "otherwise, as homography and polygon).")
    homography: list[list[float]] | None = Field(
        None, description="3×3, library-image pixels → query pixels."
    )
    polygon: list[list[float]] | None = Field(
        None, description="The library image's outline in the query (4 points)."
    )


class QuerySize(BaseModel):
    width: int = Field(description="Pixels.")
    height: int = Field(description="Pixels.")


class SearchOut(BaseModel):
    mode: Literal["auto", "duplicate", "object", "similar"] = Field(description="As asked.")
    has_more: bool = Field(description="More hits beyond this page.")
    query: QuerySize = Field(description="The query's size: the pixels of every polygon.")
    results: list[HitOut] = Field(description="Best first (in auto mode: duplicates, then "
                                  "objects, then similar, each best first).")
    timings: dict[str, float] = Field(description="Milliseconds per stage, and candidates "
                                      "checked.")
