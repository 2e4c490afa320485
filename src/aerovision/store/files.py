"""File storage for inputs, thumbnails and results, addressed by relative keys.

A key is a relative path such as ``uploads/<uid>/photo.png``; it is exactly what
tasks list in ``input_files``/``thumbnails``/``result_files`` and what
``GET /<key>`` serves.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

AREAS = ("uploads", "thumbnails", "results", "cache")
"""Top-level folders of the store; nothing else can be read or written."""

PUBLIC_AREAS = ("uploads", "thumbnails", "results")
"""The folders served over HTTP (``cache/`` holds trained models, never served)."""

CHUNK = 1024 * 1024

MAX_NAME_LENGTH = 100


class BadKey(ValueError):
    """A key that does not name a file inside the store."""


def check_key(key: str) -> list[str]:
    """Split ``key`` into safe parts or raise :class:`BadKey`.

    Refuses absolute paths, ``.``/``..`` parts, empty parts, backslashes, NUL and
    control characters, and anything outside :data:`AREAS`.
    """
    if not key or "\\" in key or any(ord(c) < 32 for c in key):
        raise BadKey(key)
    parts = key.split("/")
    if parts[0] not in AREAS or len(parts) < 2:
        raise BadKey(key)
    if any(p in ("", ".", "..") for p in parts):
        raise BadKey(key)
    return parts


class FileStore(Protocol):
    """Where task files live."""

    def write(self, key: str, data: bytes) -> None: ...

    def ensure_bucket(self) -> None:
        """Create what the store needs to exist (the S3 bucket)."""
        ...

    def read(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int:
        """Bytes in the file (raises FileNotFoundError)."""
        ...

    def stream(self, key: str) -> Iterator[bytes]:
        """The file in chunks (raises FileNotFoundError before the first one)."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A path on this machine holding the file, or None for remote stores
        (raises FileNotFoundError)."""
        ...


class LocalFileStore:
    """Files under a directory on this machine (the embedded default)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        for area in AREAS:
            (self.root / area).mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = self.root.joinpath(*check_key(key))
        if not path.resolve().is_relative_to(self.root):  # a symlink pointing outside
            raise BadKey(key)
        return path

    def write(self, key: str, data: bytes) -> None:
        """Write atomically: readers see the old file or the whole new one."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def ensure_bucket(self) -> None:
        """Nothing to create: the directories exist."""

    def exists(self, key: str) -> bool:
        try:
            return self._path(key).is_file()
        except BadKey:
            return False

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        return path

    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        return path.stat().st_size

    def stream(self, key: str) -> Iterator[bytes]:
        handle = self._path(key).open("rb")

        def chunks() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(CHUNK):
                    yield chunk

        return chunks()


class S3FileStore:
    """Files in an S3-compatible bucket under a key prefix (scale-out)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str = "us-east-1",
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}),
        )

    def _key(self, key: str) -> str:
        check_key(key)
        return self.prefix + key

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (a fresh MinIO has none)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except self.client.exceptions.ClientError as exc:
            if not self._missing(exc):
                raise
            self.client.create_bucket(Bucket=self.bucket)

    def _missing(self, exc: Exception) -> bool:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        return code in ("404", "NoSuchKey", "NotFound")

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def _body(self, key: str) -> Any:
        """The object's streaming body (raises FileNotFoundError)."""
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except self.client.exceptions.ClientError as exc:
            if self._missing(exc):
                raise FileNotFoundError(key) from None
            raise

    def read(self, key: str) -> bytes:
        data: bytes = self._body(key).read()
        return data

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except (FileNotFoundError, BadKey):
            return False
        return True

    def size(self, key: str) -> int:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.ClientError as exc:
            if self._missing(exc):
                raise FileNotFoundError(key) from None
            raise
        return int(head["ContentLength"])

    def stream(self, key: str) -> Iterator[bytes]:
        return iter(self._body(key).iter_chunks(CHUNK))

    def local_path(self, key: str) -> Path | None:
        self.size(key)  # raises FileNotFoundError when missing
        return None


def open_store(
    storage_url: str | None,
    data_dir: Path,
    *,
    endpoint_url: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    region: str = "us-east-1",
) -> FileStore:
    """The file store named by ``storage_url`` (default: the data directory)."""
    if storage_url is None or storage_url.startswith("file://"):
        root = Path(storage_url[len("file://") :]) if storage_url else data_dir
        return LocalFileStore(root)
    if storage_url.startswith("s3://"):
        bucket, _, prefix = storage_url[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError(f"storage URL needs a bucket: s3://bucket/prefix, got {storage_url!r}")
        return S3FileStore(
            bucket, prefix, endpoint_url=endpoint_url, access_key_id=access_key_id,
            secret_access_key=secret_access_key, region=region,
        )
    raise ValueError(f"unsupported storage URL {storage_url!r}: use s3://bucket/prefix")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def sanitize_filename(name: str | None, fallback: str) -> str:
    """A safe file name built from a client's one.

    Keeps ASCII letters, digits, ``.``, ``_`` and ``-`` (accents are folded,
    anything else becomes ``_``), drops any directory part and leading dots,
    and keeps the extension when shortening to :data:`MAX_NAME_LENGTH`.
    """
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    base = _UNSAFE.sub("_", base)
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem, ext = stem.strip("._ -"), ext.strip("._ -")
    if not stem:
        stem = fallback
    ext = ext[:10]
    stem = stem[: MAX_NAME_LENGTH - len(ext) - 1]
    return f"{stem}.{ext}" if ext else stem


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``stem_1.ext``, ``stem_2.ext``… if ``name`` is in ``taken``."""
    if name not in taken:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    n = 1
    while True:
        candidate = f"{stem}_{n}.{ext}" if ext else f"{stem}_{n}"
        if candidate not in taken:
            return candidate
        n += 1


JPEG_EXTENSIONS = (".jpg", ".jpeg")


def thumbnail_name(upload_name: str) -> str:
    """The thumbnail's file name for an upload: JPEG stays JPEG, everything else PNG."""
    if upload_name.lower().endswith(JPEG_EXTENSIONS + (".png",)):
        return upload_name
    stem = upload_name.rpartition(".")[0] or upload_name
    return f"{stem}.png"
