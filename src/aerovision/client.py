"""Python client of the AeroVision HTTP API: submit, wait, download.

:class:`Client` (blocking) and :class:`AsyncClient` (asyncio) have the same
methods and share one implementation of request building and response parsing
(the ``_build_*`` and ``_parse_*`` functions below); only the I/O differs. This
module imports httpx and the standard library, nothing else from AeroVision, so
it can be copied into a project on its own.

Example::

    from aerovision.client import Client

    with Client("http://localhost:8888") as av:
        task = av.wait(av.match_template("screenshot.png", "icon.png", threshold=0.9))
        for m in task.result_data["matches"]:
            print(m["x"], m["y"], m["score"])
        av.download(task, "out/")       # out/matches.png, out/heatmap.png
        info = av.wait(av.match("inspect", image="photo.jpg", bins=16))

On a server in ``accounts`` mode (``AEROVISION_AUTH=accounts``), sign in with a
token (``Client(url, token=...)``, or ``AEROVISION_TOKEN`` in the environment) or
with an account's login and password; the account may make tokens of some of
its permissions::

    with Client(url, login="alice@example.com", password="...") as av:
        made = av.create_token(["tasks:view", "tasks:creation"], description="line 3")
        print(made.secret)                # shown this once: keep it
    with Client(url, token=made.secret) as av:
        print(av.account().login)         # alice@example.com

Every tool the server runs is submitted with ``match(tool, **inputs_and_params)``;
the client learns each tool's inputs from the server (``GET /api/v1/tools``, asked
once per client, :meth:`Client.tools`), so a tool added to the server needs no
new client. ``match_template``, ``match_feature``, ``match_surface`` and
``match_chain`` are shortcuts for the tools every server has.

Image libraries hold reference images and say which of them a new picture shows, and
why (``duplicate``, ``object`` with where it is, or ``similar``)::

    with Client(url) as av:
        parts = av.create_library("parts", "line 3 catalogue")
        added = av.add_images(parts.library_id, ["bolt.png", "nut.jpg"], brief="M8", tags="steel")
        found = av.search(parts.library_id, "frame.jpg", mode="object")
        for hit in found.results:
            print(hit.match_type, hit.score, hit.brief, hit.polygon)

Exceptions (every one is an :class:`AeroVisionError`)::

    AeroVisionError
    ├── TransportError      no answer: connection refused, DNS, network timeout
    ├── APIError            the server answered 4xx/5xx; .status_code, .message, .errors
    │   ├── Unauthorized        401: no, wrong, revoked or expired credentials
    │   ├── PermissionDenied    403: the token lacks the permission (named in .message)
    │   ├── NotFound            404: unknown task, webhook, file, library, image or route
    │   ├── Conflict            409: e.g. a login or library name taken, accounts not enabled
    │   ├── PayloadTooLarge     413: an upload is over the server's limit
    │   ├── InvalidRequest      422: bad parameters or files; .errors = the server's details
    │   └── ServerError         5xx: a bug or outage on the server side
    ├── UnknownTool         match(): the server runs no tool of that name (also a ValueError)
    ├── TaskFailed          wait(): the task ended with status "error"; .task
    └── WaitTimeout         wait(): the task did not end in time; .task (also a TimeoutError)

:func:`ply_normals` adds normals to a PLY file on this machine (surface matching
needs them); it is the one helper that needs the whole ``aerovision`` package
(numpy, scipy), not just httpx.

Files given to ``match`` and ``match_*`` may be a path (``str`` or ``os.PathLike``), bytes, a
binary file object, or a ``(filename, bytes_or_file)`` pair; they are read into
memory before sending (the server refuses files over its upload limit, 50 MB
by default, anyway). Reading a path that does not exist raises ``OSError``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import mimetypes
import os
import tempfile
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any, Generic, Literal, Self, TypeAlias, TypeVar, cast
from urllib.parse import quote

import httpx

__all__ = [
    "DEFAULT_URL",
    "LIBRARY_PAGE",
    "TOKEN_ENV",
    "APIError",
    "Account",
    "AccountPage",
    "AccountType",
    "AddRefused",
    "AddResult",
    "AeroVisionClient",
    "AeroVisionError",
    "AsyncClient",
    "BatchResult",
    "Client",
    "Conflict",
    "ContSign",
    "Dedup",
    "Delivery",
    "FileInput",
    "Hit",
    "ImagePage",
    "InvalidRequest",
    "Library",
    "LibraryImage",
    "LibraryIndex",
    "LibraryPage",
    "MatchType",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "Permissions",
    "SearchMode",
    "SearchResult",
    "ServerError",
    "Task",
    "TaskFailed",
    "TaskPage",
    "TaskStatus",
    "Token",
    "Tool",
    "ToolInfo",
    "ToolInput",
    "ToolSettings",
    "TransportError",
    "Unauthorized",
    "UnknownTool",
    "WaitTimeout",
    "Webhook",
    "describe_error",
    "permissions_json",
    "ply_normals",
]

DEFAULT_URL = "http://localhost:8888"
"""Where the server listens when nothing else is said (``aerovision serve``'s default)."""

TOKEN_ENV = "AEROVISION_TOKEN"
"""The environment variable a client takes its token from when given no credentials."""

DEFAULT_TIMEOUT_S = 30.0
"""Timeout of one HTTP request (connect, read, write), in seconds."""

DEFAULT_WAIT_S = 600.0
"""How long :meth:`Client.wait` waits for a task to end, in seconds."""

POLL_FIRST_S = 0.1
"""First delay between two polls of a task; each next one is 1.5 times longer ..."""

POLL_MAX_S = 2.0
"""... up to this many seconds."""

POLL_TRANSPORT_RETRIES = 3
"""Consecutive failed polls (no answer) tolerated while waiting before giving up."""

Tool: TypeAlias = str
"""A tool's name, e.g. ``"template"``: :meth:`Client.tools` lists those the server runs."""
TaskStatus = Literal["queued", "processing", "done", "error"]
FINISHED: frozenset[str] = frozenset({"done", "error"})

AccountType = Literal["user", "advanced_user", "admin"]
"""``user`` sees its own data; ``advanced_user`` may also read every account's (with a
token of ``visibility_area="all"``); ``admin`` also manages accounts."""

Permissions: TypeAlias = Mapping[str, Iterable[str]] | Iterable[str]
"""A token's permissions: ``{"tasks": ["view", "creation"]}``, or the same as
``resource:action`` strings, ``["tasks:view", "tasks:creation"]`` (``"tasks:view,creation"``
also works). Resources and actions: tasks (view, creation, deletion), settings (view,
modification), webhooks (view, creation, deletion), libraries and recipes (view, creation,
modification, deletion), analyze (creation), events (view, deletion), tokens (view,
creation, modification, deletion)."""

FileInput: TypeAlias = (
    str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]
    | tuple[str, bytes | IO[bytes]]
)
"""A file to upload: a path, its bytes, a binary file object, or ``(filename, data)``
(a list of them for an input that takes many)."""

T = TypeVar("T")


# ---------------------------------------------------------------- exceptions


class AeroVisionError(Exception):
    """Base of every error this module raises (see the tree in the module docstring)."""


class TransportError(AeroVisionError):
    """The server could not be reached or did not answer in time."""


class APIError(AeroVisionError):
    """The server answered with an error status.

    ``message`` is the server's ``detail`` text (for a 422, the details joined);
    ``errors`` holds a 422's details as sent (``type``, ``loc``, ``msg``,
    ``input``), otherwise ``[]``.
    """

    def __init__(
        self, status_code: int, message: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.errors: list[dict[str, Any]] = errors or []


class Unauthorized(APIError):
    """401: credentials missing, wrong, revoked or expired (the message says which)."""


class PermissionDenied(APIError):
    """403: valid credentials that may not do this, e.g. ``token lacks permission
    tasks:creation``, or an account that is not an admin managing accounts."""


class NotFound(APIError):
    """404: unknown task, webhook, file, library, image or route (e.g. a tool the server
    lacks)."""


class Conflict(APIError):
    """409: the request clashes with the server's state: a login or library name already
    taken, the account deleting itself, accounts or tokens asked of a server not in accounts
    mode."""


class PayloadTooLarge(APIError):
    """413: an uploaded file is over the server's size limit."""


class InvalidRequest(APIError):
    """422: a parameter is out of range or unknown, or a file is not usable."""


class ServerError(APIError):
    """5xx: the server failed (always a server-side bug or outage)."""


class UnknownTool(AeroVisionError, ValueError):
    """:meth:`Client.match` was asked for a tool the server does not run."""

    def __init__(self, tool: str, known: Sequence[str]) -> None:
        super().__init__(
            f"unknown tool {tool!r}: this server runs {', '.join(known) or 'no tools'}"
        )
        self.tool = tool
        self.known = list(known)


class TaskFailed(AeroVisionError):
    """The task ended with status ``error``; the message is the task's ``error`` text."""

    def __init__(self, task: Task) -> None:
        super().__init__(task.error or "the task ended in error")
        self.task = task


class WaitTimeout(AeroVisionError, TimeoutError):
    """The task did not end within the time given; ``task`` is how it was last seen."""

    def __init__(self, task: Task, timeout: float) -> None:
        super().__init__(f"task {task.uid} still {task.status} after {timeout:g} s")
        self.task = task
        self.timeout = timeout


_STATUS_ERRORS: dict[int, type[APIError]] = {
    401: Unauthorized, 403: PermissionDenied, 404: NotFound, 409: Conflict,
    413: PayloadTooLarge, 422: InvalidRequest,
}


# ------------------------------------------------------------------- objects


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class Task:
    """A task as the server reported it. ``raw`` is the JSON object as received."""

    uid: str
    status: TaskStatus
    tool: str
    params: dict[str, Any]
    created_at: datetime | None
    updated_at: datetime | None
    input_files: list[str]
    thumbnails: list[str]
    result_files: list[str]
    result_data: dict[str, Any]
    error: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def finished(self) -> bool:
        """True once the status is ``done`` or ``error``."""
        return self.status in FINISHED

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Task:
        return cls(
            uid=data["uid"],
            status=data["status"],
            tool=data.get("tool", ""),
            params=dict(data.get("params") or {}),
            created_at=_time(data.get("created_at")),
            updated_at=_time(data.get("updated_at")),
            input_files=list(data.get("input_files") or []),
            thumbnails=list(data.get("thumbnails") or []),
            result_files=list(data.get("result_files") or []),
            result_data=dict(data.get("result_data") or {}),
            error=data.get("error"),
            raw=dict(data),
        )


@dataclass(frozen=True)
class TaskPage:
    """One page of ``GET /api/v1/tasks``: ``total`` tasks exist, ``tasks`` newest first."""

    total: int
    tasks: list[Task]


@dataclass(frozen=True)
class ToolSettings:
    """The current defaults of one tool."""

    tool: str
    params: dict[str, Any]


@dataclass(frozen=True)
class ToolInput:
    """One input file of a tool, as the server declares it."""

    name: str
    """The form field (and :meth:`Client.match`'s keyword) of this input."""
    kind: str
    """``image``, ``cloud`` (PLY with normals) or ``any`` (a chain's inputs)."""
    help: str
    required: bool
    many: bool
    """The field may be repeated: give a list of files."""
    accept: list[str]
    """The file name endings it takes (``.png``, ``.ply``, …)."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToolInput:
        return cls(
            name=data["name"], kind=data.get("kind", "any"), help=data.get("help", ""),
            required=bool(data.get("required", True)), many=bool(data.get("many", False)),
            accept=list(data.get("accept") or []),
        )


@dataclass(frozen=True)
class ToolInfo:
    """One tool the server runs (an item of ``GET /api/v1/tools``). ``raw`` is its JSON."""

    name: str
    title: str
    summary: str
    docs: str
    submit: str
    """The route that submits a task: ``/api/v1/match/<name>``."""
    settings: str | None
    """Its settings route, if it has settings."""
    inputs: list[ToolInput]
    """Its input files, in order."""
    params_schema: dict[str, Any]
    defaults: dict[str, Any]
    presets: list[dict[str, Any]]
    found: dict[str, Any]
    result_line: str
    """The one-line summary of a result: ``result_data`` fields in braces."""
    chainable: bool
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.inputs)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToolInfo:
        return cls(
            name=data["name"], title=data.get("title", ""), summary=data.get("summary", ""),
            docs=data.get("docs", ""), submit=data["submit"], settings=data.get("settings"),
            inputs=[ToolInput.from_json(i) for i in data["inputs"]],
            params_schema=dict(data.get("params_schema") or {}),
            defaults=dict(data.get("defaults") or {}),
            presets=[dict(p) for p in data.get("presets") or []],
            found=dict(data.get("found") or {}), result_line=data.get("result_line", ""),
            chainable=bool(data.get("chainable", False)), raw=dict(data),
        )


@dataclass(frozen=True)
class Webhook:
    """A registered receiver (its secret is never shown)."""

    id: str
    url: str
    created_at: datetime | None


@dataclass(frozen=True)
class Delivery:
    """One notification to a webhook: ``pending``, ``delivered`` or ``failed``."""

    id: str
    task_uid: str
    event: str
    status: str
    attempts: int
    response_code: int | None
    error: str | None
    next_attempt_at: datetime | None
    created_at: datetime | None
    delivered_at: datetime | None


@dataclass(frozen=True)
class Account:
    """An account (``GET /api/v1/account``, ``/api/v1/accounts``). ``raw``: its JSON."""

    account_id: str
    login: str
    account_type: AccountType
    description: str
    created_at: datetime | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Account:
        return cls(
            account_id=data["account_id"], login=data["login"],
            account_type=data["account_type"], description=data.get("description") or "",
            created_at=_time(data.get("created_at")), raw=dict(data),
        )


@dataclass(frozen=True)
class AccountPage:
    """One page of ``GET /api/v1/accounts``: ``total`` accounts exist, oldest first."""

    total: int
    accounts: list[Account]


@dataclass(frozen=True)
class Token:
    """A token of the caller's account. Times are UTC; ``expiration_time`` None: never.

    ``secret`` is what to send (``Client(url, token=secret)``): only the token
    :meth:`Client.create_token` returns has it; the server never shows it again.
    """

    token_id: str
    description: str
    permissions: dict[str, list[str]]
    expiration_time: datetime | None
    visibility_area: Literal["account", "all"]
    created_at: datetime | None
    secret: str | None = field(default=None, repr=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def permission_names(self) -> list[str]:
        """The permissions as ``resource:action`` strings, e.g. ``["tasks:view"]``."""
        return [f"{r}:{a}" for r, actions in self.permissions.items() for a in actions]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Token:
        return cls(
            token_id=data["token_id"], description=data.get("description") or "",
            permissions={r: list(a) for r, a in (data.get("permissions") or {}).items()},
            expiration_time=_time(data.get("expiration_time")),
            visibility_area=data.get("visibility_area", "account"),
            created_at=_time(data.get("created_at")), secret=data.get("token"), raw=dict(data),
        )


Dedup = Literal["exact", "near", "off"]
"""What an add refuses: ``exact``, an image whose content signature is in the library;
``near``, also one a search finds as a ``duplicate``; ``off``, nothing."""

SearchMode = Literal["auto", "duplicate", "object", "similar"]
"""What a library search looks for: ``auto`` (duplicates, then verified objects, then
similar images, each hit labelled), or one of them."""

MatchType = Literal["duplicate", "object", "similar"]
"""Why a hit matched: the same picture; its content, geometrically verified, in the
query; or it looks alike."""


@dataclass(frozen=True)
class ContSign:
    """A 64-bit content signature of an image's decoded pixels, as two unsigned 32-bit
    halves (``sign1`` high, ``sign2`` low). ``str()`` is ``"<sign1>,<sign2>"``, the form
    :meth:`Client.delete_images` and the command line take."""

    sign1: int
    sign2: int

    def __str__(self) -> str:
        return f"{self.sign1},{self.sign2}"

    @property
    def value(self) -> int:
        """The signature as one unsigned 64-bit integer."""
        return (self.sign1 << 32) | self.sign2

    @classmethod
    def of(cls, value: ContSign | tuple[int, int] | str | int) -> ContSign:
        """A signature from a ContSign, ``(sign1, sign2)``, ``"sign1,sign2"`` or one
        unsigned 64-bit integer; ValueError for anything else or out of range."""
        if isinstance(value, ContSign):
            return value
        if isinstance(value, bool):
            raise ValueError(f"not a content signature: {value!r}")
        if isinstance(value, int):
            if not 0 <= value < 1 << 64:
                raise ValueError(f"a content signature is an unsigned 64-bit integer: {value}")
            return cls(value >> 32, value & 0xFFFFFFFF)
        if isinstance(value, str):
            parts = value.split(",")
            if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
                raise ValueError(f"{value!r} is not a content signature SIGN1,SIGN2")
            value = (int(parts[0]), int(parts[1]))
        sign1, sign2 = value
        if not all(isinstance(s, int) and 0 <= s <= 0xFFFFFFFF for s in (sign1, sign2)):
            raise ValueError(f"sign1 and sign2 are unsigned 32-bit integers, got {value!r}")
        return cls(sign1, sign2)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ContSign:
        return cls(int(data["sign1"]), int(data["sign2"]))


@dataclass(frozen=True)
class LibraryIndex:
    """The state of a library's index in the API process that answered."""

    state: Literal["ready", "not loaded"]
    """``ready``: that process holds it in memory; ``not loaded``: not yet (the next
    search loads or rebuilds it)."""
    entries: int
    size_bytes: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LibraryIndex:
        return cls(data["state"], int(data["entries"]), int(data["size_bytes"]))


@dataclass(frozen=True)
class Library:
    """An image library. ``index`` is given only by :meth:`Client.get_library`.
    ``raw`` is its JSON."""

    library_id: str
    name: str
    description: str
    image_count: int
    created_at: datetime | None
    index: LibraryIndex | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Library:
        index = data.get("index")
        return cls(
            library_id=data["library_id"], name=data["name"],
            description=data.get("description") or "", image_count=int(data["image_count"]),
            created_at=_time(data.get("created_at")),
            index=None if index is None else LibraryIndex.from_json(index), raw=dict(data),
        )


@dataclass(frozen=True)
class LibraryPage:
    """One page of ``GET /api/v1/libraries``: ``total`` libraries exist, oldest first."""

    total: int
    libraries: list[Library]


@dataclass(frozen=True)
class LibraryImage:
    """An image of a library. ``image`` and ``thumbnail`` are the paths its file and its
    JPEG thumbnail download from (``GET /<path>``). ``raw`` is its JSON."""

    image_id: str
    contsign: ContSign
    width: int
    height: int
    brief: str
    tags: list[str]
    external_id: str | None
    image: str
    thumbnail: str
    created_at: datetime | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LibraryImage:
        return cls(
            image_id=data["image_id"], contsign=ContSign.from_json(data["contsign"]),
            width=int(data["width"]), height=int(data["height"]), brief=data.get("brief") or "",
            tags=list(data.get("tags") or []), external_id=data.get("external_id"),
            image=data.get("image") or "", thumbnail=data.get("thumbnail") or "",
            created_at=_time(data.get("created_at")), raw=dict(data),
        )


@dataclass(frozen=True)
class ImagePage:
    """One page of a library's images: ``total`` of them (with the tag asked for), oldest
    first."""

    total: int
    images: list[LibraryImage]


@dataclass(frozen=True)
class AddRefused:
    """Why the server did not add one file: ``status`` 409 (a duplicate: ``existing`` is
    the image already there; or an ``external_id`` taken), 413 (too large) or 422 (not a
    usable image), and the server's ``detail``."""

    status: int
    detail: str
    filename: str | None
    existing: LibraryImage | None = None

    @property
    def duplicate(self) -> bool:
        """The file's content is already in the library (``existing`` says as which)."""
        return self.status == 409 and self.existing is not None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AddRefused:
        existing = data.get("image")
        return cls(
            status=int(data["status"]), detail=str(data.get("detail") or ""),
            filename=data.get("filename"),
            existing=None if existing is None else LibraryImage.from_json(existing),
        )


@dataclass(frozen=True)
class AddResult:
    """What became of one file of :meth:`Client.add_images`: ``image`` when it was added,
    else ``error``. ``filename`` is the name it was sent under."""

    filename: str
    image: LibraryImage | None = None
    error: AddRefused | None = None

    @property
    def ok(self) -> bool:
        return self.image is not None


@dataclass(frozen=True)
class Hit:
    """One image a library search found, and why (``match_type``). ``score`` is 0–1,
    higher is better. For an ``object`` hit, ``inliers`` are the keypoint matches behind
    it, ``homography`` (3×3) maps library-image pixels to query pixels and ``polygon`` is
    the library image's outline in the query (4 points); None otherwise."""

    image_id: str
    score: float
    match_type: MatchType
    brief: str
    tags: list[str]
    contsign: ContSign
    external_id: str | None
    thumbnail: str
    inliers: int | None
    homography: list[list[float]] | None
    polygon: list[list[float]] | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Hit:
        return cls(
            image_id=data["image_id"], score=float(data["score"]),
            match_type=data["match_type"], brief=data.get("brief") or "",
            tags=list(data.get("tags") or []), contsign=ContSign.from_json(data["contsign"]),
            external_id=data.get("external_id"), thumbnail=data.get("thumbnail") or "",
            inliers=data.get("inliers"), homography=data.get("homography"),
            polygon=data.get("polygon"), raw=dict(data),
        )


@dataclass(frozen=True)
class SearchResult:
    """The answer to :meth:`Client.search`: ``results`` best first (in ``auto`` mode:
    duplicates, then objects, then similar images), ``has_more`` when hits lie beyond this
    page, ``timings`` in milliseconds per stage. ``raw`` is the JSON as received."""

    mode: SearchMode
    has_more: bool
    results: list[Hit]
    timings: dict[str, float]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SearchResult:
        return cls(
            mode=data["mode"], has_more=bool(data["has_more"]),
            results=[Hit.from_json(h) for h in data["results"]],
            timings={k: float(v) for k, v in (data.get("timings") or {}).items()},
            raw=dict(data),
        )


@dataclass(frozen=True)
class BatchResult:
    """What became of one input of :meth:`AsyncClient.match_many`.

    ``task`` is the task as last seen (None if submission failed); ``error`` says
    what went wrong (the task's error, or why it could not be submitted, waited
    on or downloaded), None when all went well.
    """

    input: str
    task: Task | None
    error: str | None = None
    exception: Exception | None = field(default=None, repr=False, compare=False)
    downloaded: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.task is not None and self.task.status == "done"

    def to_json(self) -> dict[str, Any]:
        """One JSON-lines record: input, uid, status, error, result and files."""
        task = self.task
        return {
            "input": self.input,
            "uid": task.uid if task else None,
            "status": "done" if self.ok else "error",
            "error": self.error,
            "status_code": getattr(self.exception, "status_code", None),
            "result_data": task.result_data if task else {},
            "result_files": task.result_files if task else [],
            "downloaded": [str(p) for p in self.downloaded],
        }


# --------------------------------------------- request building and parsing


@dataclass(frozen=True)
class _Call(Generic[T]):
    """One HTTP request, and how to turn its (successful) JSON answer into a result."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] | None = None
    json: Any = None
    data: dict[str, str] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    """Multipart files as ``(field, (filename, content, content type))``, in order (a
    field that takes many files repeats)."""


@dataclass(frozen=True)
class _File:
    name: str
    content: bytes
    content_type: str


_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", ".png"), (b"\xff\xd8", ".jpg"), (b"BM", ".bmp"),
    (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"), (b"ply", ".ply"),
)


def _guess_suffix(data: bytes) -> str:
    return next((suffix for magic, suffix in _MAGIC if data.startswith(magic)), "")


def _read_input(value: FileInput | _File, field_name: str) -> _File:
    """The upload for ``field_name``: its file name and bytes."""
    if isinstance(value, _File):
        return value
    name: str | None = None
    if isinstance(value, tuple):
        name, value = value
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        content, name = path.read_bytes(), name or path.name
    elif isinstance(value, (bytes, bytearray, memoryview)):
        content = bytes(value)
    elif hasattr(value, "read"):
        content = b"" if isinstance(value, io.TextIOBase) else value.read()
        if isinstance(value, io.TextIOBase) or not isinstance(content, bytes):
            raise TypeError(f"{field_name}: open the file in binary mode ('rb')")
        file_name = getattr(value, "name", None)
        if name is None and isinstance(file_name, str):
            name = os.path.basename(file_name)
    else:
        raise TypeError(f"{field_name}: expected a path, bytes or a binary file, got {value!r}")
    name = name or field_name + _guess_suffix(content)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return _File(name, content, content_type)


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


Catalog: TypeAlias = dict[str, ToolInfo]
"""The server's tools by name, as ``GET /api/v1/tools`` lists them."""


def _build_tools() -> _Call[Catalog]:
    def parse(data: Any) -> Catalog:
        return {info.name: info for info in map(ToolInfo.from_json, data["tools"])}

    return _Call("GET", "/api/v1/tools", parse)


def _tool_info(catalog: Catalog, tool: str) -> ToolInfo:
    info = catalog.get(tool)
    if info is None:
        raise UnknownTool(tool, list(catalog))
    return info


def _named_inputs(
    info: ToolInfo, files: Sequence[Any], values: Mapping[str, Any]
) -> dict[str, Any]:
    """``values`` with ``files`` (given by position) under the tool's input names."""
    if len(files) > len(info.inputs):
        raise ValueError(
            f"the {info.name} tool takes {len(info.inputs)} input(s) "
            f"({', '.join(info.input_names)}), got {len(files)} by position"
        )
    named = dict(zip(info.input_names, files, strict=False))
    twice = sorted(set(named) & set(values))
    if twice:
        raise ValueError(f"{twice[0]} given both by position and by name")
    return {**named, **values}


def _items(spec: ToolInput, given: Any) -> list[Any]:
    """The files given for an input: none, one, or a list of them if it takes many."""
    if given is None:
        return []
    return list(given) if spec.many and isinstance(given, list) else [given]


def _check_inputs(info: ToolInfo, values: Mapping[str, Any], later: str | None = None) -> None:
    """Raise ValueError if a required input of the tool is missing (``later``: one that
    comes afterwards)."""
    for spec in info.inputs:
        if spec.required and spec.name != later and not _items(spec, values.get(spec.name)):
            raise ValueError(
                f"the {info.name} tool needs its {spec.name} input "
                f"(its inputs: {', '.join(info.input_names)})"
            )


def _build_match(
    catalog: Catalog, tool: str, files: Sequence[Any], values: Mapping[str, Any]
) -> _Call[Task]:
    """``POST`` of a task of ``tool``: values named like its inputs are files (a list for
    an input that takes many), the others form fields (None ones left out)."""
    info = _tool_info(catalog, tool)
    values = _named_inputs(info, files, values)
    _check_inputs(info, values)
    uploads: list[tuple[str, tuple[str, bytes, str]]] = []
    for spec in info.inputs:
        for item in _items(spec, values.get(spec.name)):
            upload = _read_input(item, spec.name)
            uploads.append((spec.name, (upload.name, upload.content, upload.content_type)))
    data = {
        k: _form_value(v) for k, v in values.items()
        if k not in info.input_names and v is not None
    }
    return _Call("POST", info.submit, Task.from_json, data=data, files=uploads)


def _read_once(info: ToolInfo, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with each input file read into ``(filename, bytes)``, to send many times."""
    once = dict(values)
    for spec in info.inputs:
        given = once.get(spec.name)
        uploads = [_read_input(item, spec.name) for item in _items(spec, given)]
        read = [(upload.name, upload.content) for upload in uploads]
        if read:
            once[spec.name] = read if spec.many and isinstance(given, list) else read[0]
    return once


def _build_get_task(uid: str) -> _Call[Task]:
    return _Call("GET", f"/api/v1/tasks/{uid}", Task.from_json)


def _parse_page(data: Any) -> TaskPage:
    return TaskPage(data["total"], [Task.from_json(t) for t in data["tasks"]])


def _build_list_tasks(offset: int, limit: int) -> _Call[TaskPage]:
    return _Call("GET", "/api/v1/tasks", _parse_page, params={"offset": offset, "limit": limit})


def _parse_settings(data: Any) -> ToolSettings:
    return ToolSettings(data["tool"], dict(data["params"]))


def _build_get_settings(tool: str) -> _Call[ToolSettings]:
    return _Call("GET", f"/api/v1/settings/{tool}", _parse_settings)


def _build_update_settings(tool: str, params: Mapping[str, Any]) -> _Call[ToolSettings]:
    return _Call("PUT", f"/api/v1/settings/{tool}", _parse_settings, json=dict(params))


def _parse_webhook(data: Any) -> Webhook:
    return Webhook(data["id"], data["url"], _time(data.get("created_at")))


def _build_add_webhook(url: str, secret: str | None) -> _Call[Webhook]:
    body = {"url": url} if secret is None else {"url": url, "secret": secret}
    return _Call("POST", "/api/v1/webhooks", _parse_webhook, json=body)


def _build_list_webhooks() -> _Call[list[Webhook]]:
    return _Call("GET", "/api/v1/webhooks", lambda data: [_parse_webhook(h) for h in data])


def _build_delete_webhook(webhook_id: str) -> _Call[None]:
    return _Call("DELETE", f"/api/v1/webhooks/{webhook_id}", lambda _data: None)


def _parse_delivery(d: Any) -> Delivery:
    return Delivery(
        d["id"], d["task_uid"], d["event"], d["status"], d["attempts"], d.get("response_code"),
        d.get("error"), _time(d.get("next_attempt_at")), _time(d.get("created_at")),
        _time(d.get("delivered_at")),
    )


def _build_deliveries(webhook_id: str) -> _Call[list[Delivery]]:
    path = f"/api/v1/webhooks/{webhook_id}/deliveries"
    return _Call("GET", path, lambda data: [_parse_delivery(d) for d in data])


def _build_version() -> _Call[dict[str, Any]]:
    return _Call("GET", "/api/v1/version", dict)


def _segment(value: str) -> str:
    """``value`` as one segment of a URL path (an id with a ``/`` stays one)."""
    return quote(value, safe="")


def _build_account() -> _Call[Account]:
    return _Call("GET", "/api/v1/account", Account.from_json)


def _build_create_account(
    login: str, password: str, account_type: str, description: str
) -> _Call[Account]:
    body = {"login": login, "password": password, "account_type": account_type,
            "description": description}
    return _Call("POST", "/api/v1/accounts", Account.from_json, json=body)


def _build_accounts(offset: int, limit: int) -> _Call[AccountPage]:
    def parse(data: Any) -> AccountPage:
        return AccountPage(data["total"], [Account.from_json(a) for a in data["accounts"]])

    return _Call("GET", "/api/v1/accounts", parse, params={"offset": offset, "limit": limit})


def _build_get_account(account_id: str) -> _Call[Account]:
    return _Call("GET", f"/api/v1/accounts/{_segment(account_id)}", Account.from_json)


def _build_delete_account(account_id: str) -> _Call[None]:
    return _Call("DELETE", f"/api/v1/accounts/{_segment(account_id)}", lambda _data: None)


def permissions_json(permissions: Permissions) -> dict[str, list[str]]:
    """``permissions`` (see :data:`Permissions`) as the server takes them:
    ``["tasks:view", "tasks:creation"]`` → ``{"tasks": ["view", "creation"]}``.
    Raises ValueError for a string that is not ``resource:action``."""
    pairs: list[tuple[str, str]] = []
    if isinstance(permissions, Mapping):
        for resource, actions in permissions.items():
            if isinstance(actions, str):
                actions = [actions]
            pairs += [(str(resource), str(action)) for action in actions]
    else:
        for text in [permissions] if isinstance(permissions, str) else permissions:
            resource, sep, actions_text = str(text).partition(":")
            actions = [a.strip() for a in actions_text.split(",") if a.strip()]
            if not sep or not resource.strip() or not actions:
                raise ValueError(
                    f"{text!r} is not RESOURCE:ACTION (e.g. tasks:view or tasks:view,creation)"
                )
            pairs += [(resource.strip(), action) for action in actions]
    out: dict[str, list[str]] = {}
    for resource, action in pairs:
        actions_of = out.setdefault(resource, [])
        if action not in actions_of:
            actions_of.append(action)
    return out


def _expiration_json(value: datetime | str | None) -> str | None:
    """An expiry as the server takes it: ISO 8601 in UTC (a naive datetime is UTC)."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds")


def _build_create_token(
    permissions: Permissions, description: str, expiration_time: datetime | str | None,
    visibility_area: str,
) -> _Call[Token]:
    body = {
        "description": description, "expiration_time": _expiration_json(expiration_time),
        "permissions": permissions_json(permissions), "visibility_area": visibility_area,
    }
    return _Call("POST", "/api/v1/tokens", Token.from_json, json=body)


def _build_tokens() -> _Call[list[Token]]:
    return _Call("GET", "/api/v1/tokens", lambda data: [Token.from_json(t) for t in data])


def _build_revoke_token(token_id: str) -> _Call[None]:
    return _Call("DELETE", f"/api/v1/tokens/{_segment(token_id)}", lambda _data: None)


# -- libraries

LIBRARY_PAGE = 1000
"""Libraries or images asked for per page when the client pages through them all (the
server's largest page)."""


def _library_path(library_id: str, *rest: str) -> str:
    return "/".join(["/api/v1/libraries", _segment(library_id), *rest])


def _build_create_library(name: str, description: str) -> _Call[Library]:
    body = {"name": name, "description": description}
    return _Call("POST", "/api/v1/libraries", Library.from_json, json=body)


def _build_list_libraries(offset: int, limit: int) -> _Call[LibraryPage]:
    def parse(data: Any) -> LibraryPage:
        return LibraryPage(data["total"], [Library.from_json(x) for x in data["libraries"]])

    return _Call("GET", "/api/v1/libraries", parse, params={"offset": offset, "limit": limit})


def _build_get_library(library_id: str) -> _Call[Library]:
    return _Call("GET", _library_path(library_id), Library.from_json)


def _build_update_library(library_id: str, description: str) -> _Call[Library]:
    return _Call("PATCH", _library_path(library_id), Library.from_json,
                 json={"description": description})


def _build_delete_library(library_id: str) -> _Call[None]:
    return _Call("DELETE", _library_path(library_id), lambda _data: None)


def _named_library(page: LibraryPage, name: str, offset: int) -> Library | int:
    """The library of the page named ``name``, else the offset of the next page (-1: none)."""
    for library in page.libraries:
        if library.name == name:
            return library
    offset += len(page.libraries)
    return offset if page.libraries and offset < page.total else -1


def _no_library(name: str) -> NotFound:
    return NotFound(404, f"Library not found: there is no library named {name!r}")


def _tag_list(tags: str | Iterable[str]) -> list[str]:
    """Tags given as ``"a, b"`` or ``["a", "b"]``; ValueError for a listed tag with a comma
    (the server would take it for two)."""
    if isinstance(tags, str):
        return [t.strip() for t in tags.split(",") if t.strip()]
    listed = [str(t) for t in tags]
    with_comma = [t for t in listed if "," in t]
    if with_comma:
        raise ValueError(f"a tag cannot contain a comma: {with_comma[0]!r}")
    return listed


def _file_list(files: FileInput | Sequence[FileInput]) -> list[FileInput]:
    """One file, or a sequence of them, as a list (a ``(filename, data)`` pair is one)."""
    pair = (
        isinstance(files, tuple) and len(files) == 2 and isinstance(files[0], str)
        and (isinstance(files[1], (bytes, bytearray, memoryview)) or hasattr(files[1], "read"))
    )
    if pair or hasattr(files, "read") or isinstance(
        files, (str, os.PathLike, bytes, bytearray, memoryview)
    ):
        return [cast(FileInput, files)]
    return list(cast(Sequence[FileInput], files))


def _build_add_images(
    library_id: str, files: FileInput | Sequence[FileInput], brief: str | None,
    tags: str | Iterable[str] | None, external_id: str | None, dedup: str,
) -> _Call[list[AddResult]]:
    uploads = [_read_input(item, "image") for item in _file_list(files)]
    if not uploads:
        raise ValueError("add_images needs at least one file")
    data = {"dedup": dedup}
    if brief is not None:
        data["brief"] = brief
    if tags is not None:
        data["tags"] = ",".join(_tag_list(tags))
    if external_id is not None:
        data["external_id"] = external_id

    def parse(answer: Any) -> list[AddResult]:
        entries = answer["images"]
        if len(entries) != len(uploads):
            raise ValueError(f"{len(entries)} entries for {len(uploads)} files")
        return [
            AddResult(upload.name, error=AddRefused.from_json(entry["error"])) if "error" in entry
            else AddResult(upload.name, image=LibraryImage.from_json(entry))
            for upload, entry in zip(uploads, entries, strict=True)
        ]

    return _Call(
        "POST", _library_path(library_id, "images"), parse, data=data,
        files=[("image", (u.name, u.content, u.content_type)) for u in uploads],
    )


def _parse_images(data: Any) -> ImagePage:
    return ImagePage(data["total"], [LibraryImage.from_json(x) for x in data["images"]])


def _build_list_images(
    library_id: str, offset: int, limit: int, tag: str | None
) -> _Call[ImagePage]:
    params: dict[str, Any] = {"offset": offset, "limit": limit}
    if tag is not None:
        params["tag"] = tag
    return _Call("GET", _library_path(library_id, "images"), _parse_images, params=params)


def _build_get_image(library_id: str, image_id: str) -> _Call[LibraryImage]:
    return _Call("GET", _library_path(library_id, "images", _segment(image_id)),
                 LibraryImage.from_json)


def _build_update_image(
    library_id: str, image_id: str, brief: str | None, tags: str | Iterable[str] | None
) -> _Call[LibraryImage]:
    body: dict[str, Any] = {}
    if brief is not None:
        body["brief"] = brief
    if tags is not None:
        body["tags"] = _tag_list(tags)
    return _Call("PATCH", _library_path(library_id, "images", _segment(image_id)),
                 LibraryImage.from_json, json=body)


def _build_delete_image(library_id: str, image_id: str) -> _Call[None]:
    return _Call("DELETE", _library_path(library_id, "images", _segment(image_id)),
                 lambda _data: None)


def _build_delete_images(
    library_id: str, contsign: ContSign | tuple[int, int] | str | int
) -> _Call[None]:
    return _Call("DELETE", _library_path(library_id, "images"), lambda _data: None,
                 params={"contsign": str(ContSign.of(contsign))})


def _build_search(
    library_id: str, image: FileInput, mode: str, limit: int, offset: int, min_score: float,
    tag: str | None,
) -> _Call[SearchResult]:
    upload = _read_input(image, "image")
    data = {"mode": mode, "limit": str(limit), "offset": str(offset),
            "min_score": repr(float(min_score))}
    if tag is not None:
        data["tag"] = tag
    return _Call(
        "POST", _library_path(library_id, "search"), SearchResult.from_json, data=data,
        files=[("image", (upload.name, upload.content, upload.content_type))],
    )


def _error_for(response: httpx.Response) -> APIError:
    """The exception for an error answer, with the server's message and 422 details."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    errors: list[dict[str, Any]] = []
    if isinstance(detail, list):
        errors = [e for e in detail if isinstance(e, dict)]
        message = "; ".join(describe_error(e) for e in errors) or "invalid request"
    elif isinstance(detail, str):
        message = detail
    else:
        message = response.text.strip()[:500] or response.reason_phrase
    if response.status_code >= 500:
        return ServerError(response.status_code, message, errors)
    exc_type = _STATUS_ERRORS.get(response.status_code, APIError)
    return exc_type(response.status_code, message, errors)


def describe_error(error: Mapping[str, Any]) -> str:
    """``threshold: Input should be less than or equal to 1`` from one 422 detail."""
    loc = [str(part) for part in error.get("loc", []) if part != "body"]
    msg = str(error.get("msg", ""))
    return f"{'.'.join(loc)}: {msg}" if loc else msg


def ply_normals(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    k: int = 20,
    viewpoint: Sequence[float] | None = None,
    max_points: int | None = None,
) -> int:
    """Estimate and orient normals for the PLY file ``source``; write them to ``target``.

    Runs on this machine, no server: what ``aerovision ply normals`` does (see
    :mod:`aerovision.engine.normals`). ``k`` neighbours per point fit its plane
    (3–200); ``viewpoint`` ``(x, y, z)`` is where a scan's sensor was (normals
    face it); without it normals are oriented consistently, outward for a closed
    object. ``target`` (x y z nx ny nz, binary) is written through a temporary
    file and may be ``source``. Files of more than ``max_points`` vertices (10
    million by default) are refused. Returns the number of points written.

    Raises ``ValueError`` (the engine's ``InputError``) for a file that is not a
    usable PLY, ``OSError`` for files that cannot be read or written, and
    ``ImportError`` where this module was copied without the ``aerovision`` package.
    """
    from aerovision.engine.normals import MAX_POINTS, ply_with_normals

    cloud, data = ply_with_normals(
        Path(source).read_bytes(), k=k, viewpoint=viewpoint, max_points=max_points or MAX_POINTS
    )
    _write_atomically(Path(target), data)
    return cloud.num_points


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it: never half a file."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:  # name the file asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _result(call: _Call[T], response: httpx.Response) -> T:
    if response.is_error:
        raise _error_for(response)
    if response.status_code == 204 or not response.content:
        return call.parse(None)
    try:
        return call.parse(response.json())
    except (ValueError, KeyError, TypeError) as exc:
        raise AeroVisionError(
            f"unexpected answer to {call.method} {call.path}: {response.text[:200]!r}"
        ) from exc


def _transport_error(exc: httpx.TransportError, base_url: str) -> TransportError:
    return TransportError(f"could not talk to {base_url}: {type(exc).__name__}: {exc}")


def _download_plan(task: Task, dest_dir: str | os.PathLike[str], inputs: bool) -> list[
    tuple[str, Path]
]:
    """(URL path, local path) of each file of ``task`` to fetch into ``dest_dir``.

    ``results/<uid>/step1/matches.png`` lands at ``<dest_dir>/step1/matches.png``;
    inputs, if asked for, at ``<dest_dir>/inputs/<name>``.
    """
    dest = Path(dest_dir)
    lists = [("results", task.result_files)] + ([("uploads", task.input_files)] if inputs else [])
    plan = []
    for area, keys in lists:
        for key in keys:
            parts = PurePosixPath(key).parts
            if (
                len(parts) < 3 or parts[0] != area or parts[1] != task.uid
                or any(p in ("", ".", "..") for p in parts)
            ):
                raise AeroVisionError(f"refusing to download an unexpected path {key!r}")
            local = Path(*parts[2:]) if area == "results" else Path("inputs", *parts[2:])
            plan.append(("/" + key, dest / local))
    return plan


class _Backoff:
    """Delays between polls: POLL_FIRST_S, ×1.5 each time, capped; None past the deadline."""

    def __init__(self, timeout: float | None, first: float, cap: float) -> None:
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.delay = first
        self.cap = cap

    def next_delay(self) -> float | None:
        delay, self.delay = self.delay, min(self.delay * 1.5, self.cap)
        if self.deadline is None:
            return delay
        left = self.deadline - time.monotonic()
        return None if left <= 0 else min(delay, left)


class _Poll:
    """What :meth:`Client.wait` has seen so far (shared by both clients)."""

    def __init__(self) -> None:
        self.last: Task | None = None
        self.failures = 0

    def failed(self, exc: TransportError) -> None:
        """A poll got no answer: tolerated up to POLL_TRANSPORT_RETRIES times in a row."""
        self.failures += 1
        if self.failures >= POLL_TRANSPORT_RETRIES or self.last is None:
            raise exc

    def seen(self, task: Task, on_update: Callable[[Task], None] | None) -> bool:
        """Record a poll's answer; True once the task has ended."""
        self.last, self.failures = task, 0
        if on_update is not None:
            on_update(task)
        return task.finished

    def timed_out(self, timeout: float | None) -> WaitTimeout:
        assert self.last is not None  # failed() raises until a first answer came
        return WaitTimeout(self.last, timeout or 0.0)


def _finish(task: Task, raise_on_error: bool) -> Task:
    if task.status == "error" and raise_on_error:
        raise TaskFailed(task)
    return task


def _uid(task: Task | str) -> str:
    return task.uid if isinstance(task, Task) else task


def _authorization(
    api_key: str | None, token: str | None, login: str | None, password: str | None
) -> str | None:
    """The ``Authorization`` header for the credentials given (see :class:`Client`);
    ValueError for a mix that says two things."""
    if login or password is not None:
        if not login or password is None:
            raise ValueError("login and password go together: give both")
        if ":" in login:
            raise ValueError("a login cannot contain ':' (HTTP Basic separates it so)")
        if token or api_key:
            raise ValueError("give a token or a login and password, not both")
        pair = base64.b64encode(f"{login}:{password}".encode()).decode("ascii")
        return f"Basic {pair}"
    if token and api_key and token != api_key:
        raise ValueError("token and api_key are both sent as Bearer: give one")
    secret = token or api_key or os.environ.get(TOKEN_ENV, "").strip()
    return f"Bearer {secret}" if secret else None


def _headers(
    api_key: str | None, token: str | None = None, login: str | None = None,
    password: str | None = None,
) -> dict[str, str]:
    headers = {"User-Agent": "aerovision-client", "Accept": "application/json"}
    authorization = _authorization(api_key, token, login, password)
    if authorization:
        headers["Authorization"] = authorization
    return headers


def _unique_names(inputs: Sequence[FileInput]) -> list[str]:
    """A distinct folder name per input (its file stem, numbered when stems repeat)."""
    names: list[str] = []
    seen: set[str] = set()
    for i, value in enumerate(inputs):
        source = value[0] if isinstance(value, tuple) else value
        if isinstance(source, (str, os.PathLike)):
            base = Path(source).stem or f"input{i + 1}"
        else:
            base = f"input{i + 1}"
        name, n = base, 1
        while name in seen:
            n += 1
            name = f"{base}-{n}"
        seen.add(name)
        names.append(name)
    return names


def _label(value: FileInput, index: int) -> str:
    source = value[0] if isinstance(value, tuple) else value
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"input[{index}]"


# ------------------------------------------------------------------- clients


R = TypeVar("R")


class _Shortcuts(Generic[R]):
    """The named shortcuts of both clients, over their :meth:`Client.match` (``R``: a
    :class:`Task`; for :class:`AsyncClient`, an awaitable of one)."""

    def match(self, tool: Tool, /, *files: FileInput, **values: Any) -> R:
        raise NotImplementedError

    def match_template(self, image: FileInput, template: FileInput, **params: Any) -> R:
        """Find every occurrence of ``template`` in ``image``.

        ``params``: ``method`` (TM_CCOEFF_NORMED, TM_CCORR_NORMED,
        TM_SQDIFF_NORMED, TM_CCOEFF, TM_CCORR, TM_SQDIFF), ``threshold``
        (0.1–1.0), ``max_results`` (1–1000), ``use_grayscale`` (bool).
        When done, ``result_data`` has ``matches`` (``x, y, w, h, score``, best
        first), ``filtered_matches`` and ``best_score``; ``result_files`` are
        ``matches.png`` and ``heatmap.png``.
        """
        return self.match("template", image=image, template=template, **params)

    def match_feature(self, query_image: FileInput, train_image: FileInput, **params: Any) -> R:
        """Match keypoints of ``query_image`` against ``train_image``.

        ``params``: ``detector`` (SIFT, ORB, AKAZE, BRISK), ``matcher`` (FLANN,
        BFMatcher), ``ratio_threshold`` (0.1–1.0), ``max_matches`` (1–5000).
        When done, ``result_data`` has ``good_matches``, ``query_keypoints`` and
        ``train_keypoints``; ``result_files`` is ``matches.png``.
        """
        return self.match("feature", query_image=query_image, train_image=train_image, **params)

    def match_surface(self, model_file: FileInput, scene_file: FileInput, **params: Any) -> R:
        """Find the 3D model in the 3D scene (PLY files with normals ``nx ny nz``).

        ``params``: ``relative_sampling_step``, ``relative_distance_step``
        (0.01–0.5), ``num_angles`` (1–360), ``use_icp`` (bool),
        ``icp_tolerance``, ``icp_iterations`` (1–1000). When done,
        ``result_data`` has ``pose`` (4×4, model to scene) and ``poses_found``.
        """
        return self.match("surface", model_file=model_file, scene_file=scene_file, **params)

    def match_chain(
        self, image: FileInput, template: FileInput, steps: Sequence[Mapping[str, Any]] | str
    ) -> R:
        """Run ``steps`` (``[{"tool": ..., "params": {...}}, ...]``, at most 10) in order
        until one finds something. ``steps`` may also be the JSON text itself.
        When done, ``result_data`` has ``chain_result``, ``completed_step`` and
        ``steps``; each step's files are under ``results/<uid>/step<N>/``.
        """
        steps_field = steps if isinstance(steps, str) else [dict(step) for step in steps]
        return self.match("chain", image=image, template=template, steps=steps_field)


class Client(_Shortcuts[Task]):
    """Blocking client of an AeroVision server.

    Parameters
    ----------
    base_url : str
        The server, e.g. ``http://localhost:8888``.
    api_key : str, optional
        A static key (``AEROVISION_API_KEYS``) or a token: sent as
        ``Authorization: Bearer <api_key>``.
    timeout : float
        Timeout of each HTTP request in seconds (waiting for a task is
        :meth:`wait`'s own ``timeout``).
    token : str, optional
        A token's secret (:meth:`create_token`), sent as ``Authorization: Bearer``:
        the token's permissions only.
    login, password : str, optional
        An account's login and password, sent as HTTP Basic: all of the account's
        permissions (needed to make tokens or, for an admin, accounts without one).

    One kind of credentials is sent, chosen in this order: ``login`` and
    ``password`` (both, and then no token or key); else ``token`` or ``api_key``
    (the same thing under two names; giving two different ones is an error); else
    the environment's ``AEROVISION_TOKEN`` (:data:`TOKEN_ENV`), read when the
    client is made; else none (a server in ``off`` mode needs none). Mixing a
    login with a token raises ValueError. Missing or bad credentials are the
    server's :class:`Unauthorized` (401); a token lacking a route's permission
    gets :class:`PermissionDenied` (403).

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self, base_url: str = DEFAULT_URL, api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S, *, token: str | None = None,
        login: str | None = None, password: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers=_headers(api_key, token, login, password),
            timeout=timeout,
        )
        self._tools: Catalog | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: _Call[T]) -> T:
        try:
            response = self._http.request(
                call.method, call.path, params=call.params, json=call.json, data=call.data,
                files=call.files,
            )
        except httpx.TransportError as exc:
            raise _transport_error(exc, self.base_url) from exc
        return _result(call, response)

    # -- matching

    def tools(self) -> list[ToolInfo]:
        """Every tool the server runs, in the order to show them: its inputs, parameters'
        JSON schema, defaults, presets (``GET /api/v1/tools``, asked once per client)."""
        return list(self._catalog().values())

    def _catalog(self) -> Catalog:
        if self._tools is None:
            self._tools = self._send(_build_tools())
        return self._tools

    def match(self, tool: Tool, /, *files: FileInput, **values: Any) -> Task:
        """Submit a task of ``tool`` (a name :meth:`tools` lists); returns the queued task.

        Keywords named like the tool's inputs are its files (see :data:`FileInput`;
        a list for an input that takes many); inputs may also be given by position,
        in the tool's order. Every other keyword is a form field: a parameter (None
        values are left out, so the tool's settings apply; booleans go as
        ``true``/``false``, lists and dicts as JSON) or a field of the tool's own
        form (the chain's ``steps``). The tools' inputs come from the server, asked
        on first use. Raises :class:`UnknownTool` (a ValueError) for a tool the
        server does not run, ValueError when a required input is missing,
        :class:`InvalidRequest` (422) or :class:`PayloadTooLarge` (413).
        """
        return self._send(_build_match(self._catalog(), tool, files, values))

    # -- tasks

    def get_task(self, uid: str) -> Task:
        """The task now. Raises :class:`NotFound` ("Task not found") for an unknown uid."""
        return self._send(_build_get_task(uid))

    def list_tasks(self, offset: int = 0, limit: int = 50) -> TaskPage:
        """A page of tasks, newest first (``limit`` 1–200)."""
        return self._send(_build_list_tasks(offset, limit))

    def wait(
        self, task: Task | str, timeout: float | None = DEFAULT_WAIT_S, *,
        raise_on_error: bool = True, on_update: Callable[[Task], None] | None = None,
        poll_first: float = POLL_FIRST_S, poll_max: float = POLL_MAX_S,
    ) -> Task:
        """Poll until the task is ``done`` or ``error`` and return it.

        Polls after ``poll_first`` seconds, then 1.5 times longer each time up
        to ``poll_max`` (the server offers no long-polling). ``timeout`` is in
        seconds (None: no limit); ``on_update`` is called with the task after
        every poll. Raises :class:`TaskFailed` (message: the task's ``error``)
        if the task ends in ``error`` and ``raise_on_error`` is true,
        :class:`WaitTimeout` past ``timeout``, :class:`TransportError` after
        POLL_TRANSPORT_RETRIES polls in a row without an answer.
        """
        uid, backoff = _uid(task), _Backoff(timeout, poll_first, poll_max)
        poll = _Poll()
        while True:
            try:
                seen = self.get_task(uid)
            except TransportError as exc:
                poll.failed(exc)
            else:
                if poll.seen(seen, on_update):
                    return _finish(seen, raise_on_error)
            delay = backoff.next_delay()
            if delay is None:
                raise poll.timed_out(timeout)
            time.sleep(delay)

    def download(
        self, task: Task | str, dest_dir: str | os.PathLike[str], *, inputs: bool = False
    ) -> list[Path]:
        """Save the task's result files under ``dest_dir`` and return their paths.

        ``results/<uid>/heatmap.png`` is saved as ``<dest_dir>/heatmap.png``
        (chain steps: ``<dest_dir>/step1/...``); with ``inputs=True`` the
        uploaded inputs too, under ``<dest_dir>/inputs/``. A uid is fetched
        first. Folders are created as needed; existing files are replaced.
        """
        task = task if isinstance(task, Task) else self.get_task(task)
        saved = []
        for url_path, local in _download_plan(task, dest_dir, inputs):
            local.parent.mkdir(parents=True, exist_ok=True)
            partial = local.with_name(local.name + ".part")
            try:
                with self._http.stream("GET", url_path) as response:
                    if response.is_error:
                        response.read()
                        raise _error_for(response)
                    with partial.open("wb") as out:
                        for chunk in response.iter_bytes():
                            out.write(chunk)
            except httpx.TransportError as exc:
                raise _transport_error(exc, self.base_url) from exc
            partial.replace(local)
            saved.append(local)
        return saved

    # -- settings

    def get_settings(self, tool: str) -> ToolSettings:
        """The current defaults of ``tool`` (template, feature or surface)."""
        return self._send(_build_get_settings(tool))

    def update_settings(self, tool: str, **params: Any) -> ToolSettings:
        """Change some defaults of ``tool``; returns all of them. 422 on a bad value."""
        return self._send(_build_update_settings(tool, params))

    # -- webhooks

    def add_webhook(self, url: str, secret: str | None = None) -> Webhook:
        """Register ``url`` to receive a signed POST whenever a task ends."""
        return self._send(_build_add_webhook(url, secret))

    def list_webhooks(self) -> list[Webhook]:
        """Every registered webhook."""
        return self._send(_build_list_webhooks())

    def delete_webhook(self, webhook_id: str) -> None:
        """Remove a webhook. Raises :class:`NotFound` ("Webhook not found")."""
        self._send(_build_delete_webhook(webhook_id))

    def webhook_deliveries(self, webhook_id: str) -> list[Delivery]:
        """The 50 most recent deliveries to a webhook, newest first."""
        return self._send(_build_deliveries(webhook_id))

    # -- accounts and tokens (a server in ``accounts`` mode)

    def account(self) -> Account:
        """The account the credentials act for (``default`` on a server without accounts)."""
        return self._send(_build_account())

    def create_token(
        self, permissions: Permissions, description: str = "",
        expiration_time: datetime | str | None = None,
        visibility_area: Literal["account", "all"] = "account",
    ) -> Token:
        """A new token of the caller's account holding ``permissions`` (see
        :data:`Permissions`; never more than the caller holds), returned with its
        ``secret``, which the server never shows again.

        ``expiration_time``: a datetime (naive ones are UTC) or ISO 8601 text; None:
        it never expires. ``visibility_area="all"``: it may read every account's data
        (advanced_user and admin accounts only). Needs the account's password or a
        token holding ``tokens:creation``; :class:`PermissionDenied` (403) when asking
        for more than the caller holds, :class:`InvalidRequest` (422) for an unknown
        resource or action, or an expiry in the past.
        """
        return self._send(
            _build_create_token(permissions, description, expiration_time, visibility_area)
        )

    def tokens(self) -> list[Token]:
        """The account's tokens, oldest first (without their secrets)."""
        return self._send(_build_tokens())

    def revoke_token(self, token_id: str) -> None:
        """Delete a token: it stops working at once. :class:`NotFound` for an unknown id."""
        self._send(_build_revoke_token(token_id))

    def create_account(
        self, login: str, password: str, account_type: AccountType = "user",
        description: str = "",
    ) -> Account:
        """A new account (admins only): ``password`` of 8 characters or more.
        :class:`Conflict` (409) if the login is taken, :class:`PermissionDenied` (403)
        for a caller that is not an admin."""
        return self._send(_build_create_account(login, password, account_type, description))

    def accounts(self, offset: int = 0, limit: int = 50) -> AccountPage:
        """A page of the server's accounts, oldest first (admins only; ``limit`` 1–200)."""
        return self._send(_build_accounts(offset, limit))

    def get_account(self, account_id: str) -> Account:
        """One account (admins only). :class:`NotFound` ("Account not found")."""
        return self._send(_build_get_account(account_id))

    def delete_account(self, account_id: str) -> None:
        """Delete an account **and everything it owns** (admins only): its tasks and their
        files, webhooks, settings and tokens. :class:`NotFound` for an unknown id,
        :class:`Conflict` for the ``default`` account or the caller's own."""
        self._send(_build_delete_account(account_id))

    # -- image libraries

    def create_library(self, name: str, description: str = "") -> Library:
        """A new, empty library. ``name``: 1–64 characters of ``A-Z a-z 0-9 _ . -``,
        unique in the account (:class:`Conflict`, 409, when taken; :class:`InvalidRequest`,
        422, when malformed)."""
        return self._send(_build_create_library(name, description))

    def list_libraries(self, offset: int = 0, limit: int = 100) -> LibraryPage:
        """A page of the account's libraries, oldest first (``limit`` 1–1000)."""
        return self._send(_build_list_libraries(offset, limit))

    def library_by_name(self, name: str) -> Library:
        """The account's library named ``name``, found by paging through
        :meth:`list_libraries`; :class:`NotFound` if there is none (raised by the client,
        as a 404 would be)."""
        offset = 0
        while True:
            found = _named_library(self.list_libraries(offset, LIBRARY_PAGE), name, offset)
            if isinstance(found, Library):
                return found
            if found < 0:
                raise _no_library(name)
            offset = found

    def get_library(self, library_id: str) -> Library:
        """A library with its image count and ``index`` state. :class:`NotFound`
        ("Library not found") for an unknown id."""
        return self._send(_build_get_library(library_id))

    def update_library(self, library_id: str, description: str) -> Library:
        """Change a library's description; returns the library."""
        return self._send(_build_update_library(library_id, description))

    def delete_library(self, library_id: str) -> None:
        """Delete a library **with all its images**, their files and its index."""
        self._send(_build_delete_library(library_id))

    def add_images(
        self, library_id: str, files: FileInput | Sequence[FileInput], *,
        brief: str | None = None, tags: str | Iterable[str] | None = None,
        external_id: str | None = None, dedup: Dedup = "exact",
    ) -> list[AddResult]:
        """Add up to 100 files (see :data:`FileInput`) in one request; one
        :class:`AddResult` per file, in order: its image, or why it was refused
        (:class:`AddRefused`: a duplicate, with the image already there; too large; not
        an image). One bad file never loses the others.

        ``brief`` (≤ 4096 characters) and ``tags`` (a list, or comma-separated text; ≤ 16)
        are given to every file; ``external_id`` (your id, unique in the library) needs a
        single file. ``dedup``: see :data:`Dedup`. :class:`InvalidRequest` (422) for more
        than 100 files or a bad brief or tag, :class:`NotFound` for an unknown library.
        """
        return self._send(_build_add_images(library_id, files, brief, tags, external_id, dedup))

    def list_images(
        self, library_id: str, offset: int = 0, limit: int = 100, tag: str | None = None
    ) -> ImagePage:
        """A page of a library's images, oldest first (``limit`` 1–1000); ``tag``: only
        the images with it."""
        return self._send(_build_list_images(library_id, offset, limit, tag))

    def iter_images(self, library_id: str, tag: str | None = None) -> Iterator[LibraryImage]:
        """Every image of a library (with ``tag``), oldest first, a page at a time."""
        offset = 0
        while True:
            page = self.list_images(library_id, offset, LIBRARY_PAGE, tag)
            yield from page.images
            offset += len(page.images)
            if not page.images or offset >= page.total:
                return

    def get_image(self, library_id: str, image_id: str) -> LibraryImage:
        """One image of a library. :class:`NotFound` ("Image not found")."""
        return self._send(_build_get_image(library_id, image_id))

    def update_image(
        self, library_id: str, image_id: str, *, brief: str | None = None,
        tags: str | Iterable[str] | None = None,
    ) -> LibraryImage:
        """Change an image's brief and/or tags (``tags`` replace the old ones; ``[]``
        removes them); None leaves a field as it is."""
        return self._send(_build_update_image(library_id, image_id, brief, tags))

    def delete_image(self, library_id: str, image_id: str) -> None:
        """Remove one image. :class:`NotFound` ("Image not found")."""
        self._send(_build_delete_image(library_id, image_id))

    def delete_images(
        self, library_id: str, contsign: ContSign | tuple[int, int] | str | int
    ) -> None:
        """Remove every image of the library with this content signature (a
        :class:`ContSign`, ``(sign1, sign2)`` or ``"sign1,sign2"``). :class:`NotFound`
        when none has it."""
        self._send(_build_delete_images(library_id, contsign))

    def search(
        self, library_id: str, image: FileInput, *, mode: SearchMode = "auto",
        limit: int = 10, offset: int = 0, min_score: float = 0.0, tag: str | None = None,
    ) -> SearchResult:
        """Search a library with ``image``: its hits, best first, each saying why it
        matched (see :class:`Hit`). ``limit`` 1–100, ``offset`` ≤ 10000, ``min_score``
        0–1, ``tag``: only images with it. An empty library answers no hits;
        :class:`InvalidRequest` (422) for a file that is not an image."""
        return self._send(
            _build_search(library_id, image, mode, limit, offset, min_score, tag)
        )

    # -- service

    def version(self) -> dict[str, Any]:
        """The server's name, version, API version and OpenCV version."""
        return self._send(_build_version())


AeroVisionClient = Client


class AsyncClient(_Shortcuts[Awaitable[Task]]):
    """The asyncio twin of :class:`Client`: the same methods, to be awaited.

    Also offers :meth:`match_many`, which runs many inputs with bounded
    concurrency. Use it as ``async with AsyncClient(url) as av:`` or call
    :meth:`aclose`.
    """

    def __init__(
        self, base_url: str = DEFAULT_URL, api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S, *, token: str | None = None,
        login: str | None = None, password: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=_headers(api_key, token, login, password),
            timeout=timeout,
        )
        self._tools: Catalog | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: _Call[T]) -> T:
        try:
            response = await self._http.request(
                call.method, call.path, params=call.params, json=call.json, data=call.data,
                files=call.files,
            )
        except httpx.TransportError as exc:
            raise _transport_error(exc, self.base_url) from exc
        return _result(call, response)

    async def tools(self) -> list[ToolInfo]:
        """See :meth:`Client.tools`."""
        return list((await self._catalog()).values())

    async def _catalog(self) -> Catalog:
        if self._tools is None:
            self._tools = await self._send(_build_tools())
        return self._tools

    async def match(self, tool: Tool, /, *files: FileInput, **values: Any) -> Task:
        """See :meth:`Client.match`."""
        return await self._send(_build_match(await self._catalog(), tool, files, values))

    async def get_task(self, uid: str) -> Task:
        """See :meth:`Client.get_task`."""
        return await self._send(_build_get_task(uid))

    async def list_tasks(self, offset: int = 0, limit: int = 50) -> TaskPage:
        """See :meth:`Client.list_tasks`."""
        return await self._send(_build_list_tasks(offset, limit))

    async def wait(
        self, task: Task | str, timeout: float | None = DEFAULT_WAIT_S, *,
        raise_on_error: bool = True, on_update: Callable[[Task], None] | None = None,
        poll_first: float = POLL_FIRST_S, poll_max: float = POLL_MAX_S,
    ) -> Task:
        """See :meth:`Client.wait`."""
        uid, backoff = _uid(task), _Backoff(timeout, poll_first, poll_max)
        poll = _Poll()
        while True:
            try:
                seen = await self.get_task(uid)
            except TransportError as exc:
                poll.failed(exc)
            else:
                if poll.seen(seen, on_update):
                    return _finish(seen, raise_on_error)
            delay = backoff.next_delay()
            if delay is None:
                raise poll.timed_out(timeout)
            await asyncio.sleep(delay)

    async def download(
        self, task: Task | str, dest_dir: str | os.PathLike[str], *, inputs: bool = False
    ) -> list[Path]:
        """See :meth:`Client.download`."""
        task = task if isinstance(task, Task) else await self.get_task(task)
        saved = []
        for url_path, local in _download_plan(task, dest_dir, inputs):
            local.parent.mkdir(parents=True, exist_ok=True)
            partial = local.with_name(local.name + ".part")
            try:
                async with self._http.stream("GET", url_path) as response:
                    if response.is_error:
                        await response.aread()
                        raise _error_for(response)
                    with partial.open("wb") as out:
                        async for chunk in response.aiter_bytes():
                            out.write(chunk)
            except httpx.TransportError as exc:
                raise _transport_error(exc, self.base_url) from exc
            partial.replace(local)
            saved.append(local)
        return saved

    async def get_settings(self, tool: str) -> ToolSettings:
        """See :meth:`Client.get_settings`."""
        return await self._send(_build_get_settings(tool))

    async def update_settings(self, tool: str, **params: Any) -> ToolSettings:
        """See :meth:`Client.update_settings`."""
        return await self._send(_build_update_settings(tool, params))

    async def add_webhook(self, url: str, secret: str | None = None) -> Webhook:
        """See :meth:`Client.add_webhook`."""
        return await self._send(_build_add_webhook(url, secret))

    async def list_webhooks(self) -> list[Webhook]:
        """See :meth:`Client.list_webhooks`."""
        return await self._send(_build_list_webhooks())

    async def delete_webhook(self, webhook_id: str) -> None:
        """See :meth:`Client.delete_webhook`."""
        await self._send(_build_delete_webhook(webhook_id))

    async def webhook_deliveries(self, webhook_id: str) -> list[Delivery]:
        """See :meth:`Client.webhook_deliveries`."""
        return await self._send(_build_deliveries(webhook_id))

    async def account(self) -> Account:
        """See :meth:`Client.account`."""
        return await self._send(_build_account())

    async def create_token(
        self, permissions: Permissions, description: str = "",
        expiration_time: datetime | str | None = None,
        visibility_area: Literal["account", "all"] = "account",
    ) -> Token:
        """See :meth:`Client.create_token`."""
        return await self._send(
            _build_create_token(permissions, description, expiration_time, visibility_area)
        )

    async def tokens(self) -> list[Token]:
        """See :meth:`Client.tokens`."""
        return await self._send(_build_tokens())

    async def revoke_token(self, token_id: str) -> None:
        """See :meth:`Client.revoke_token`."""
        await self._send(_build_revoke_token(token_id))

    async def create_account(
        self, login: str, password: str, account_type: AccountType = "user",
        description: str = "",
    ) -> Account:
        """See :meth:`Client.create_account`."""
        return await self._send(
            _build_create_account(login, password, account_type, description)
        )

    async def accounts(self, offset: int = 0, limit: int = 50) -> AccountPage:
        """See :meth:`Client.accounts`."""
        return await self._send(_build_accounts(offset, limit))

    async def get_account(self, account_id: str) -> Account:
        """See :meth:`Client.get_account`."""
        return await self._send(_build_get_account(account_id))

    async def delete_account(self, account_id: str) -> None:
        """See :meth:`Client.delete_account`."""
        await self._send(_build_delete_account(account_id))

    async def create_library(self, name: str, description: str = "") -> Library:
        """See :meth:`Client.create_library`."""
        return await self._send(_build_create_library(name, description))

    async def list_libraries(self, offset: int = 0, limit: int = 100) -> LibraryPage:
        """See :meth:`Client.list_libraries`."""
        return await self._send(_build_list_libraries(offset, limit))

    async def library_by_name(self, name: str) -> Library:
        """See :meth:`Client.library_by_name`."""
        offset = 0
        while True:
            page = await self.list_libraries(offset, LIBRARY_PAGE)
            found = _named_library(page, name, offset)
            if isinstance(found, Library):
                return found
            if found < 0:
                raise _no_library(name)
            offset = found

    async def get_library(self, library_id: str) -> Library:
        """See :meth:`Client.get_library`."""
        return await self._send(_build_get_library(library_id))

    async def update_library(self, library_id: str, description: str) -> Library:
        """See :meth:`Client.update_library`."""
        return await self._send(_build_update_library(library_id, description))

    async def delete_library(self, library_id: str) -> None:
        """See :meth:`Client.delete_library`."""
        await self._send(_build_delete_library(library_id))

    async def add_images(
        self, library_id: str, files: FileInput | Sequence[FileInput], *,
        brief: str | None = None, tags: str | Iterable[str] | None = None,
        external_id: str | None = None, dedup: Dedup = "exact",
    ) -> list[AddResult]:
        """See :meth:`Client.add_images`."""
        return await self._send(
            _build_add_images(library_id, files, brief, tags, external_id, dedup)
        )

    async def list_images(
        self, library_id: str, offset: int = 0, limit: int = 100, tag: str | None = None
    ) -> ImagePage:
        """See :meth:`Client.list_images`."""
        return await self._send(_build_list_images(library_id, offset, limit, tag))

    async def iter_images(
        self, library_id: str, tag: str | None = None
    ) -> AsyncIterator[LibraryImage]:
        """See :meth:`Client.iter_images`."""
        offset = 0
        while True:
            page = await self.list_images(library_id, offset, LIBRARY_PAGE, tag)
            for image in page.images:
                yield image
            offset += len(page.images)
            if not page.images or offset >= page.total:
                return

    async def get_image(self, library_id: str, image_id: str) -> LibraryImage:
        """See :meth:`Client.get_image`."""
        return await self._send(_build_get_image(library_id, image_id))

    async def update_image(
        self, library_id: str, image_id: str, *, brief: str | None = None,
        tags: str | Iterable[str] | None = None,
    ) -> LibraryImage:
        """See :meth:`Client.update_image`."""
        return await self._send(_build_update_image(library_id, image_id, brief, tags))

    async def delete_image(self, library_id: str, image_id: str) -> None:
        """See :meth:`Client.delete_image`."""
        await self._send(_build_delete_image(library_id, image_id))

    async def delete_images(
        self, library_id: str, contsign: ContSign | tuple[int, int] | str | int
    ) -> None:
        """See :meth:`Client.delete_images`."""
        await self._send(_build_delete_images(library_id, contsign))

    async def search(
        self, library_id: str, image: FileInput, *, mode: SearchMode = "auto",
        limit: int = 10, offset: int = 0, min_score: float = 0.0, tag: str | None = None,
    ) -> SearchResult:
        """See :meth:`Client.search`."""
        return await self._send(
            _build_search(library_id, image, mode, limit, offset, min_score, tag)
        )

    async def version(self) -> dict[str, Any]:
        """See :meth:`Client.version`."""
        return await self._send(_build_version())

    async def match_many(
        self, tool: Tool, inputs: Sequence[FileInput], other: FileInput | None = None, /, *,
        concurrency: int = 4, timeout: float | None = DEFAULT_WAIT_S,
        download_dir: str | os.PathLike[str] | None = None, **values: Any,
    ) -> AsyncIterator[BatchResult]:
        """Run ``tool`` once for each of ``inputs`` (its first input), the rest the same.

        ``other`` is the tool's second input, if it has one; it and any later
        input may also be given by name, and every other keyword is a
        parameter, as for :meth:`Client.match`. Those files are read once. At
        most ``concurrency`` tasks are submitted or waited on at once. Yields
        one :class:`BatchResult` per input as each ends, in the order they end;
        a failure of one input (refused, ended in error, timed out, unreadable)
        is reported in its result and never stops the others. With
        ``download_dir``, each done task's files go to
        ``<download_dir>/<input stem>/``.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        info = _tool_info(await self._catalog(), tool)
        if not info.inputs:
            raise ValueError(f"the {tool} tool has no input to run over")
        first, *rest = info.input_names
        if first in values:
            raise ValueError(f"{first} is each of inputs: it cannot also be given by name")
        if other is not None:
            if not rest:
                raise ValueError(f"the {tool} tool has one input: there is no other")
            values = _named_inputs(info, (None, other), values)
            del values[first]
        _check_inputs(info, values, later=first)
        fixed = _read_once(info, values)
        names = _unique_names(inputs)
        pending = iter(range(len(inputs)))
        results: asyncio.Queue[BatchResult | None] = asyncio.Queue()

        async def run_one(i: int) -> BatchResult:
            label, task = _label(inputs[i], i), None
            try:
                task = await self.match(tool, **{first: inputs[i]}, **fixed)
                task = await self.wait(task, timeout, raise_on_error=False)
                if task.status == "error":
                    return BatchResult(label, task, task.error or "the task ended in error")
                dest = None if download_dir is None else Path(download_dir, names[i])
                files = [] if dest is None else await self.download(task, dest)
                return BatchResult(label, task, downloaded=files)
            except WaitTimeout as exc:
                return BatchResult(label, exc.task, str(exc), exc)
            except (AeroVisionError, OSError) as exc:
                return BatchResult(label, task, str(exc), exc)

        async def worker() -> None:
            try:
                for i in pending:
                    await results.put(await run_one(i))
            finally:
                results.put_nowait(None)

        workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(inputs)))]
        try:
            running = len(workers)
            while running:
                item = await results.get()
                if item is None:
                    running -= 1
                else:
                    yield item
            await asyncio.gather(*workers)  # re-raises a worker's unexpected exception
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
