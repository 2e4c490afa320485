"""Processes that decode and describe images for the libraries, off the API process.

Adding an image and searching with one are answered in the request (SPEC-libraries.md),
but decoding and SIFT are CPU work on untrusted files: they run in a small pool of
resident processes (spawned, so no lock of the API's threads is inherited), each
with the decode limit and a memory cap, so a hostile file costs its own request
and never the API. A process that dies is replaced and the request that killed it
gets a clear error.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from aerovision.engine import imageio, retrieval
from aerovision.engine.errors import InputError

log = logging.getLogger(__name__)

T = TypeVar("T")

THUMBNAIL_LONG_SIDE = 256


class PoolDied(Exception):
    """The describing process died on this request (out of memory, a crash)."""


@dataclass(frozen=True)
class EmbedderSpec:
    """The configured embedding model, as the describing processes load it."""

    path: str
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    name: str


_EMBEDDERS: dict[EmbedderSpec, Any] = {}


def _embed(spec: EmbedderSpec | None, description: retrieval.Description,
           image: Any) -> retrieval.Description:
    """``description`` with the image's embedding, when a model is configured."""
    if spec is None:
        return description
    from pathlib import Path

    from aerovision.engine.embedder import Embedder

    embedder = _EMBEDDERS.get(spec)
    if embedder is None:
        embedder = Embedder(Path(spec.path), spec.size, spec.mean, spec.std, spec.name)
        _EMBEDDERS[spec] = embedder
    return replace(description, embedding=embedder.embed(image))


@dataclass(frozen=True)
class Described:
    """A decoded image's description, and its JPEG thumbnail."""

    description: retrieval.Description
    thumbnail: bytes


def _init(max_pixels: int, memory_bytes: int | None) -> None:
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(max_pixels)
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def _decode(data: bytes, max_pixels: int) -> Any:
    image = imageio.decode_image(data, max_pixels=max_pixels,
                                 limit_name="AEROVISION_MAX_IMAGE_PIXELS")
    if image.ndim == 3 and image.shape[2] == 4:
        image = imageio.flatten_alpha(image)
    return image


def describe_file(data: bytes, max_pixels: int, embedder: EmbedderSpec | None = None) -> Described:
    """Decode and describe a library image (runs in the pool)."""
    image = _decode(data, max_pixels)
    thumb = imageio.encode_jpeg(imageio.make_thumbnail(image, THUMBNAIL_LONG_SIDE), 85)
    return Described(_embed(embedder, retrieval.describe(image), image), thumb)


def embed_file(data: bytes, max_pixels: int, embedder: EmbedderSpec) -> Any:
    """The embedding of a stored library image (runs in the pool)."""
    image = _decode(data, max_pixels)
    return _embed(embedder, retrieval.describe_query(image, with_features=False), image).embedding


def describe_query_file(
    data: bytes, max_pixels: int, with_features: bool, embedder: EmbedderSpec | None = None
) -> retrieval.Description:
    """Decode and describe a search query (runs in the pool)."""
    return describe_query_image(_decode(data, max_pixels), with_features, embedder)


def describe_query_image(
    image: Any, with_features: bool, embedder: EmbedderSpec | None = None
) -> retrieval.Description:
    """Describe a decoded search query (a task's input, decoded already)."""
    if image.ndim == 3 and image.shape[2] == 4:
        image = imageio.flatten_alpha(image)
    return _embed(embedder, retrieval.describe_query(image, with_features=with_features), image)


def verify_all(
    query: retrieval.Features, candidates: Sequence[tuple[int, bytes]]
) -> list[tuple[int, retrieval.Located | None, int]]:
    """Check each ``(image, stored keypoints)`` against the query (runs in the pool):
    ``(image, where it is or None, its keypoints)``."""
    verifier = retrieval.Verifier(query)
    out = []
    for number, blob in candidates:
        reference = retrieval.Features.from_bytes(blob)
        out.append((number, verifier.locate(reference), len(reference)))
    return out


class DescribePool:
    """A lazily started pool of ``workers`` processes."""

    def __init__(self, workers: int, memory_mb: float | None, *, inline: bool = False) -> None:
        self.inline = inline
        self.workers = max(1, workers)
        self.memory = int(memory_mb * 1024 * 1024) if memory_mb else None
        self._pool: ProcessPoolExecutor | None = None
        self._max_pixels = 0
        self._lock = threading.Lock()

    def _executor(self, max_pixels: int) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None or self._max_pixels != max_pixels:
                if self._pool is not None:
                    self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init, initargs=(max_pixels, self.memory),
                )
                self._max_pixels = max_pixels
            return self._pool

    def _broken(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def call(self, max_pixels: int, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` in a pool process, waiting for it (from a thread of the
        caller's); :class:`PoolDied` if the process died, InputError as raised there.
        With ``inline`` (a worker's task process, isolated already) it runs here."""
        if self.inline:
            return func(*args)
        pool = self._executor(max_pixels)
        try:
            return pool.submit(func, *args).result()
        except BrokenProcessPool:
            self._broken(pool)
            raise PoolDied("the process describing the image died (out of memory?)") from None
        except MemoryError:
            raise InputError("the image needs more memory than a describing process has") \
                from None

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
