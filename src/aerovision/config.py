"""Service configuration: one settings class read from ``AEROVISION_*`` variables.

Build it with :func:`get_settings` (cached) or ``Settings(...)`` directly in tests;
nothing is read at import time.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


def _default_workers() -> int:
    return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    """Every tunable of the service; each field is an ``AEROVISION_<NAME>`` variable."""

    model_config = SettingsConfigDict(env_prefix="AEROVISION_", extra="ignore")

    data_dir: Path = Field(
        Path("./data"),
        description="Directory holding the embedded database and the files "
        "(uploads/, thumbnails/, results/).",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the database; default: SQLite file "
        "<data_dir>/aerovision.db (WAL mode).",
    )
    queue_url: str | None = Field(
        None,
        description="Queue backend: redis://host:port/db, or (default) the SQLite-backed "
        "queue in the SQLite database. Required when the database is PostgreSQL.",
    )
    storage_url: str | None = Field(
        None,
        description="Where files live: s3://bucket/prefix for S3-compatible storage; "
        "default: the data dir.",
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3 endpoint (e.g. http://minio:9000); default: AWS."
    )
    s3_access_key_id: str | None = Field(None, description="S3 access key id.")
    s3_secret_access_key: str | None = Field(None, description="S3 secret access key.")
    s3_region: str = Field("us-east-1", description="S3 region.")
    queue_prefix: str = Field(
        "aerovision:", description="Prefix of every Redis key the queue uses."
    )
    host: str = Field(
        "127.0.0.1",
        description="Address the HTTP API listens on; 0.0.0.0 for every interface (the "
        "default of `aerovision api`, which runs in containers).",
    )
    port: int = Field(8888, ge=1, le=65535, description="Port the HTTP API listens on.")
    workers: int = Field(
        default_factory=_default_workers,
        ge=0,
        description="Worker processes started by `serve` (default: one per CPU; 0: none).",
    )

    library_workers: int = Field(
        default_factory=lambda: min(_default_workers(), 4),
        ge=1,
        description="Processes of an API process that decode and describe library images "
        "and search queries (default: one per CPU, at most 4).",
    )

    embedder_model: Path | None = Field(
        None,
        description="An ONNX image-embedding model for semantic `similar` library searches "
        "(needs `pip install 'aerovision[embedder]'`); unset: a classical global descriptor.",
    )
    embedder_size: int = Field(
        224, ge=8, le=1024, description="The embedding model's input side, pixels."
    )
    embedder_mean: tuple[float, float, float] = Field(
        (0.485, 0.456, 0.406),
        description="Per-channel (RGB, 0-1) mean subtracted before the model, as JSON.",
    )
    embedder_std: tuple[float, float, float] = Field(
        (0.229, 0.224, 0.225), description="Per-channel (RGB) divisor after the mean, as JSON."
    )

    max_upload_mb: float = Field(
        50.0, gt=0, description="Largest accepted uploaded file, in MB (2**20 bytes); larger → 413."
    )
    max_json_kb: float = Field(
        64.0,
        gt=0,
        description="Largest JSON (or other non-multipart) request body, in KB (2**10 bytes); "
        "larger → 413 before it is read whole.",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A request's headers must arrive within this many seconds (408 and the "
        "connection closed otherwise).",
    )
    body_timeout_s: float = Field(
        20.0,
        gt=0,
        description="After this many seconds of reading a request body, it must have come at "
        "AEROVISION_BODY_MIN_RATE bytes/s on average (408 otherwise).",
    )
    body_min_rate: float = Field(
        500.0, ge=0, description="Slowest accepted average request body rate, in bytes/s."
    )
    max_image_pixels: int = Field(
        100_000_000,
        ge=1,
        description="Largest image (width × height) that is decoded; larger → task error.",
    )
    max_ply_points: int = Field(
        5_000_000,
        ge=1,
        description="Most vertices a PLY file may declare; more → 422 at submission.",
    )
    max_chain_steps: int = Field(
        10, ge=1, le=100, description="Most steps in one chain (422 above)."
    )
    task_memory_mb: int = Field(
        4096,
        ge=0,
        description="Address-space limit of the child process running one task, in MiB "
        "(RLIMIT_AS; 0 disables).",
    )
    task_timeout_s: float = Field(
        300.0, gt=0, description="Wall-clock limit of one task; the child is killed after it."
    )
    tasks_per_process: int = Field(
        100,
        ge=1,
        description="Tasks one child process runs before a fresh one is forked (1: a fresh "
        "process for every task). A child is replaced at once after a crash, a timeout, "
        "running out of memory, an internal error, or memory that stayed high.",
    )
    lease_s: float = Field(
        30.0,
        gt=0,
        description="Lease a worker holds on a task; renewed every third of it. A task whose "
        "lease expires (worker lost) is returned to the queue by the reaper.",
    )
    max_attempts: int = Field(
        3, ge=1, description="Times a task is tried before it is marked error."
    )
    reaper_interval_s: float = Field(
        2.0, gt=0, description="How often the reaper looks for expired leases and lost tasks."
    )
    shutdown_grace_s: float = Field(
        10.0,
        ge=0,
        description="On stop, how long a worker lets its running task finish before it "
        "releases the task back to the queue.",
    )
    webhook_timeout_s: float = Field(
        5.0, gt=0, description="How long a webhook receiver has to answer one delivery."
    )
    webhook_max_attempts: int = Field(
        8, ge=1, description="Attempts per webhook delivery before it is marked failed."
    )
    webhook_retry_base_s: float = Field(
        30.0,
        gt=0,
        description="First retry delay of a failed delivery; doubled on each attempt, "
        "±25 % jitter (8 attempts span about an hour).",
    )
    webhook_concurrency: int = Field(
        64, ge=1, description="Deliveries in flight at once (one slow receiver never blocks "
        "the others)."
    )
    webhook_per_receiver: int = Field(
        4,
        ge=1,
        description="Deliveries in flight at once to one webhook, so that a slow receiver "
        "never holds the slots of the others.",
    )
    webhook_allow_private: bool = Field(
        False,
        description="Let webhooks reach loopback, link-local, private and other non-public "
        "addresses (local receivers in development and tests). Cloud metadata addresses "
        "stay refused.",
    )
    opencv_threads: int = Field(
        0,
        ge=0,
        description="Threads OpenCV may use inside one task (0: the machine's cores divided "
        "by its worker processes).",
    )
    log_level: str = Field("info", description="Logging level: debug, info, warning, error.")
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as text, or one JSON object per line."
    )
    api_keys: SecretStr | None = Field(
        None,
        description="Comma-separated API keys; when set, every route but /health needs one "
        "(Authorization: Bearer <key>, X-API-Key: <key>, or ?api_key=<key>).",
    )
    auth: Literal["off", "keys", "accounts"] | None = Field(
        None,
        description="Who may call: off (anyone, one implicit account), keys (holders of "
        "AEROVISION_API_KEYS), accounts (account passwords and tokens, each account sees only "
        "its own data). Default: keys when AEROVISION_API_KEYS is set, else off.",
    )
    admin_login: str | None = Field(
        None, description="accounts mode: the first admin's login, created at start-up if "
        "missing (never overwritten).",
    )
    admin_password: SecretStr | None = Field(
        None, description="accounts mode: the first admin's password (8 characters or more).",
    )
    cors_origins: str = Field(
        "",
        description="Comma-separated origins allowed to call the API from a browser "
        "(* for any); default: same origin only.",
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.lower()
        if value not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError(f"log_level must be debug, info, warning or error, got {value!r}")
        return value

    @field_validator("database_url")
    @classmethod
    def _use_psycopg_driver(cls, value: str | None) -> str | None:
        """``postgres://`` and ``postgresql://`` mean PostgreSQL through psycopg 3."""
        if value is None:
            return None
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @model_validator(mode="after")
    def _absolute_data_dir(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if self.queue_url is None and self.database_url and not self.database_url.startswith(
            "sqlite"
        ):
            raise ValueError(
                "AEROVISION_QUEUE_URL must name a Redis server (redis://host:port/db) when "
                "the database is not SQLite"
            )
        if self.auth == "keys" and not self.api_key_list:
            raise ValueError("AEROVISION_AUTH=keys needs AEROVISION_API_KEYS")
        if (self.admin_login is None) != (self.admin_password is None):
            raise ValueError("set AEROVISION_ADMIN_LOGIN and AEROVISION_ADMIN_PASSWORD together")
        if self.admin_password is not None and len(self.admin_password.get_secret_value()) < 8:
            raise ValueError("AEROVISION_ADMIN_PASSWORD must have 8 characters or more")
        return self

    @property
    def db_url(self) -> str:
        """The effective database URL."""
        return self.database_url or f"sqlite:///{self.data_dir / 'aerovision.db'}"

    @property
    def effective_queue_url(self) -> str:
        """The effective queue URL (defaults to the database when it is SQLite)."""
        return self.queue_url or self.db_url

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MiB)

    @property
    def max_json_bytes(self) -> int:
        return int(self.max_json_kb * 1024)

    @property
    def api_key_list(self) -> list[str]:
        """The configured API keys (empty: access control is off)."""
        if self.api_keys is None:
            return []
        return [k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()]

    @property
    def auth_mode(self) -> Literal["off", "keys", "accounts"]:
        """AEROVISION_AUTH, or keys when API keys are configured, else off."""
        if self.auth is not None:
            return self.auth
        return "keys" if self.api_key_list else "off"

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
