"""File storage for inputs, thumbnails and results, addressed by relative keys.

A key is a relative path such as ``uploads/<uid>/photo.png``; it is exactly what
tasks list in ``input_files``/``thumbnails``/``result_files`` and what
``GET /<key>`` serves.

A store that cannot do its job (a read-only or full disk, a directory it may not
write, an S3 bucket that refuses or does not answer) raises
:class:`StoreUnavailable`, whose message names the cause and never a path on the
server: that is the service's fault, not the request's (the API answers 503, a
worker retries the task). A file that is not there is ``FileNotFoundError`` naming
the key only.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import tempfile
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

AREAS = ("uploads", "thumbnails", "results", "cache", "libraries")
"""Top-level folders of the store; nothing else can be read or written."""

PUBLIC_AREAS = ("uploads", "thumbnails", "results")
"""The folders of tasks' files served over HTTP (``cache/`` holds trained models, never
served; ``libraries/`` has a route of its own, which checks the library's owner)."""

CHUNK = 1024 * 1024

MAX_NAME_LENGTH = 100


log = logging.getLogger(__name__)


class BadKey(ValueError):
    """A key that does not name a file inside the store."""


class StoreUnavailable(Exception):
    """The store refused or failed an operation: the service's fault, not the caller's.

    ``str()`` is safe to show anyone: it names the operation and a short cause
    (``read-only file system``, ``no space left on device``, ``S3 AccessDenied``,
    ``S3 unreachable``), never a path, host or credential. The original error is
    the ``__cause__`` (for the server log).
    """

    def __init__(self, operation: str, reason: str) -> None:
        self.operation = operation  # "write", "read" or "delete"
        self.reason = reason
        what = {"write": "refused a write", "read": "could not read a file"}.get(
            operation, f"could not {operation} a file"
        )
        super().__init__(f"the file store {what} ({reason})")


def _os_reason(exc: OSError) -> str:
    """``read-only file system``, ``no space left on device``…: the errno's words."""
    if exc.errno is not None:
        return os.strerror(exc.errno).lower()
    return type(exc).__name__


def missing(key: str) -> FileNotFoundError:
    """The store's "no such file", naming the key only (never a server path)."""
    return FileNotFoundError(errno.ENOENT, "no such file in the file store", key)


HEALTH_PREFIX = ".health-"
"""Name prefix of the small files :meth:`FileStore.check_writable` writes and deletes."""


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

    def delete(self, key: str) -> None:
        """Remove the file if it is there."""
        ...

    def check_writable(self) -> None:
        """Write and delete a small file where the store keeps files (a health probe);
        raises :class:`StoreUnavailable` if it cannot."""
        ...

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
            try:
                (self.root / area).mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # the service starts; /health and the 503s say why
                log.error("the file store cannot create its %s folder in %s: %s", area,
                          self.root, exc)

    def _path(self, key: str) -> Path:
        path = self.root.joinpath(*check_key(key))
        if not path.resolve().is_relative_to(self.root):  # a symlink pointing outside
            raise BadKey(key)
        return path

    def write(self, key: str, data: bytes) -> None:
        """Write atomically: readers see the old file or the whole new one."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        except OSError as exc:
            raise StoreUnavailable("write", _os_reason(exc)) from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise StoreUnavailable("write", _os_reason(exc)) from exc
            raise

    def read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise missing(key) from None
        except OSError as exc:
            raise StoreUnavailable("read", _os_reason(exc)) from exc

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except (NotADirectoryError, IsADirectoryError):
            pass
        except OSError as exc:
            raise StoreUnavailable("delete", _os_reason(exc)) from exc

    def check_writable(self) -> None:
        """One small file written and deleted in each area (each may be its own mount)."""
        for area in AREAS:
            try:
                fd, tmp = tempfile.mkstemp(dir=self.root / area, prefix=HEALTH_PREFIX)
                try:
                    os.write(fd, b"ok")
                finally:
                    os.close(fd)
                    os.unlink(tmp)
            except OSError as exc:
                raise StoreUnavailable("write", _os_reason(exc)) from exc

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
        connection = {
            "endpoint_url": endpoint_url,
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "region_name": region,
        }
        self.client = boto3.client(
            "s3", **connection, config=Config(retries={"max_attempts": 5, "mode": "standard"})
        )
        # the health probe asks once and gives up fast: /health must answer in time
        self._probe_client = boto3.client(
            "s3", **connection,
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=2),
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

    @staticmethod
    def _code(exc: Exception) -> str:
        """The S3 error code of a ClientError ('' for others, e.g. a dropped connection)."""
        response = getattr(exc, "response", None)
        error = response.get("Error") if isinstance(response, dict) else None
        return str(error.get("Code") or "") if isinstance(error, dict) else ""

    def _missing(self, exc: Exception) -> bool:
        return self._code(exc) in ("404", "NoSuchKey", "NotFound")

    @staticmethod
    def _reason(exc: Exception) -> str:
        """``S3 AccessDenied``, ``S3 NoSuchBucket``, ``S3 unreachable (…)``: no endpoint."""
        code = S3FileStore._code(exc)
        if code:
            return f"S3 {code[:40]}"
        return f"S3 unreachable ({type(exc).__name__})"

    def write(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        name = self._key(key)
        try:
            self.client.put_object(Bucket=self.bucket, Key=name, Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable("write", self._reason(exc)) from exc

    def _body(self, key: str) -> Any:
        """The object's streaming body (raises FileNotFoundError)."""
        from botocore.exceptions import BotoCoreError, ClientError

        name = self._key(key)
        try:
            return self.client.get_object(Bucket=self.bucket, Key=name)["Body"]
        except ClientError as exc:
            if self._missing(exc):
                raise missing(key) from None
            raise StoreUnavailable("read", self._reason(exc)) from exc
        except BotoCoreError as exc:
            raise StoreUnavailable("read", self._reason(exc)) from exc

    def read(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError

        body = self._body(key)
        try:
            data: bytes = body.read()
        except BotoCoreError as exc:  # the connection dropped mid-body
            raise StoreUnavailable("read", self._reason(exc)) from exc
        return data

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        name = self._key(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=name)
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable("delete", self._reason(exc)) from exc

    def check_writable(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        name = f"{self.prefix}cache/{HEALTH_PREFIX}{uuid.uuid4().hex}"
        try:
            self._probe_client.put_object(Bucket=self.bucket, Key=name, Body=b"ok")
            self._probe_client.delete_object(Bucket=self.bucket, Key=name)
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable("write", self._reason(exc)) from exc

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except (FileNotFoundError, BadKey):
            return False
        return True

    def size(self, key: str) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        name = self._key(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if self._missing(exc):
                raise missing(key) from None
            raise StoreUnavailable("read", self._reason(exc)) from exc
        except BotoCoreError as exc:
            raise StoreUnavailable("read", self._reason(exc)) from exc
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
    if upload_name.lower().endswith((*JPEG_EXTENSIONS, ".png")):
        return upload_name
    stem = upload_name.rpartition(".")[0] or upload_name
    return f"{stem}.png"
