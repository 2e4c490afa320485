"""Database tables. The same models run on SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class TaskStatus(str, Enum):
    """A task's life: queued → processing → done | error."""

    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    ERROR = "error"

    @property
    def terminal(self) -> bool:
        return self in (TaskStatus.DONE, TaskStatus.ERROR)


def utcnow() -> datetime:
    """Naive UTC now: the database stores UTC without an offset."""
    return datetime.now(UTC).replace(tzinfo=None)


class FilesPending(str, Enum):
    """Why a ``done`` task's listed files may not be in the store yet (``None``: all are)."""

    WRITING = "writing"  # a worker is writing them, or they were asked for
    ON_REQUEST = "on_request"  # its pictures are made when first downloaded


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[str]: JSON}


DEFAULT_ACCOUNT_ID = "00000000-0000-0000-0000-000000000000"
"""The ``default`` account: everything made in ``off`` and ``keys`` mode, and every row
that existed before accounts."""


class Owned:
    """A row that belongs to one account (see :mod:`aerovision.store.scope`)."""

    account_id: Mapped[str] = mapped_column(
        String(36), index=True, default=DEFAULT_ACCOUNT_ID, server_default=DEFAULT_ACCOUNT_ID
    )


class AccountType(str, Enum):
    """As in LUNA: ``user`` sees its own data, ``advanced_user`` may read every
    account's with a token of ``visibility_area: all``, ``admin`` manages accounts."""

    USER = "user"
    ADVANCED_USER = "advanced_user"
    ADMIN = "admin"


class AccountRow(Base):
    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    login: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    """argon2id; None: the account cannot sign in with a password (``default`` at first)."""
    account_type: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)


class TokenRow(Base):
    __tablename__ = "tokens"

    token_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(36), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    permissions: Mapped[dict[str, Any]]
    expiration_time: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    visibility_area: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class TaskRow(Owned, Base):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    tool: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    input_files: Mapped[list[str]]
    thumbnails: Mapped[list[str]]
    result_files: Mapped[list[str]]
    result_data: Mapped[dict[str, Any]]
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    files_pending: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """Files a ``done`` task lists that are not written yet: ``writing`` (being
    written, or asked for) or ``on_request`` (pictures made when first downloaded)."""
    files_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Runs that were to write its files after its verdict (bounded like ``attempts``)."""


class SettingsRow(Base):
    """Stored settings of one tool for one account; the ``default`` account's are the
    deployment's defaults, under every other account's own."""

    __tablename__ = "tool_settings"

    account_id: Mapped[str] = mapped_column(
        String(36), primary_key=True, default=DEFAULT_ACCOUNT_ID
    )
    tool: Mapped[str] = mapped_column(String(32), primary_key=True)
    params: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class WorkerRow(Base):
    """A worker's heartbeat: what /health counts as alive."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    last_seen: Mapped[datetime] = mapped_column(DateTime, index=True)
    task_uid: Mapped[str | None] = mapped_column(String(36), nullable=True)


class QueueItem(Base):
    """The database-backed queue (embedded default); see jobs/queue.py."""

    __tablename__ = "queue_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    available_at: Mapped[float] = mapped_column(Float, index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)


class WebhookRow(Owned, Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class DeliveryStatus(str, Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class DeliveryRow(Base):
    """The outbox: one row per (finished task, webhook), written with the task's end."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(40), index=True)
    task_uid: Mapped[str] = mapped_column(String(36))
    event: Mapped[str] = mapped_column(String(32))
    event_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)


class LibraryRow(Owned, Base):
    """An image library (SPEC-libraries.md). ``generation`` counts its changes: every
    add and removal takes the next one, under the row's lock, so a process that has
    seen generation *g* catches up with exactly the rows of generations after *g*."""

    __tablename__ = "libraries"

    library_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (UniqueConstraint("account_id", "name", name="uq_libraries_account_name"),)


class LibraryImageRow(Owned, Base):
    """One image of a library, with everything its index entries are rebuilt from."""

    __tablename__ = "library_images"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    """The image's number in the library's indexes."""
    image_id: Mapped[str] = mapped_column(String(36), unique=True)
    library_id: Mapped[str] = mapped_column(String(36))
    generation: Mapped[int] = mapped_column(BigInteger)
    """The library's generation that added it."""
    contsign: Mapped[int] = mapped_column(BigInteger)
    """The 64-bit content signature, as a signed 64-bit integer (same bits)."""
    phash: Mapped[int] = mapped_column(BigInteger)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    """The global descriptor, little-endian float32."""
    features: Mapped[bytes] = mapped_column(LargeBinary)
    """Its keypoints (:meth:`aerovision.engine.retrieval.Features.to_bytes`)."""
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """Its semantic embedding (little-endian float32), when a model was configured..."""
    embedder: Mapped[str | None] = mapped_column(String(32), nullable=True)
    """...and which model made it (:func:`aerovision.engine.embedder.fingerprint`)."""
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    brief: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]]
    tags_text: Mapped[str] = mapped_column(Text, default=",")
    """The tags as ``,a,b,`` (tags hold no commas): ``LIKE '%,a,%'`` finds tag ``a``
    the same way on every database."""
    external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    file_key: Mapped[str] = mapped_column(Text)
    thumbnail_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (
        Index("ix_library_images_library_generation", "library_id", "generation"),
        Index("ix_library_images_library_contsign", "library_id", "contsign"),
        UniqueConstraint("library_id", "external_id", name="uq_library_images_external_id"),
    )


class LibraryRemovalRow(Owned, Base):
    """An image removed from a library: which index entry goes, at which generation."""

    __tablename__ = "library_removals"

    library_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    image: Mapped[int] = mapped_column(BigInteger)
    """:attr:`LibraryImageRow.id` of the removed image."""
