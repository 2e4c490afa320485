"""A library's index in this process: the compact part of every image's description,
in arrays, kept in step with the database.

The database is the truth (:mod:`aerovision.store.libraries`); an index is a cache of
it. Before every search the index asks the library's ``generation`` (one indexed
read) and, when it moved, applies exactly the removals and additions after the
generation it has seen — so an add or a delete made through any API process is in
the next search of every other one. The arrays are saved to a local file
(``<data dir>/index/<library_id>.npz``, written whole to a temporary file and
renamed over the old one) so a restart does not read every row again; a file that
is missing, unreadable or ahead of the database is rebuilt from the database,
never used.

Nearest neighbours are found exactly, by brute force over the arrays: the Hamming
distance of 64-bit hashes (``np.bitwise_count``) and the dot product of unit
vectors (one matrix-vector product). docs/decisions.md ("Library index") has the
measurements against approximate indexes.
"""

from __future__ import annotations

import logging
import os
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from aerovision.engine.retrieval import VECTOR_SIZE, hamming, to_unsigned
from aerovision.store import libraries as store
from aerovision.store.db import Database

log = logging.getLogger(__name__)

SAVE_EVERY = 256
"""The index file is written again after this many changes (and at the first build)."""


@dataclass
class LibraryIndex:
    """The arrays of one library: row ``i`` is image ``ids[i]``."""

    library_id: str
    generation: int = 0
    ids: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    hashes: npt.NDArray[np.uint64] = field(default_factory=lambda: np.empty(0, np.uint64))
    vectors: npt.NDArray[np.float32] = field(
        default_factory=lambda: np.empty((0, VECTOR_SIZE), np.float32)
    )
    tags: list[str] = field(default_factory=list)
    embedder: str | None = None
    """The embedding model in use (None: none); only its embeddings count."""
    embeddings: npt.NDArray[np.float32] = field(
        default_factory=lambda: np.empty((0, 0), np.float32)
    )
    embedded: npt.NDArray[np.bool_] = field(default_factory=lambda: np.empty(0, bool))
    """Rows with an embedding by :attr:`embedder`."""
    unsaved: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        return int(self.ids.nbytes + self.hashes.nbytes + self.vectors.nbytes
                   + self.embeddings.nbytes + sum(len(t) for t in self.tags))

    @property
    def unembedded(self) -> int:
        """Rows still without an embedding by the model in use."""
        return 0 if self.embedder is None else int((~self.embedded).sum())

    def apply(self, changes: store.Changes) -> None:
        """Removals first (an image whose tags changed is removed, then added again)."""
        if changes.removed:
            gone = np.isin(self.ids, np.asarray(changes.removed, np.int64))
            keep = ~gone
            self.ids, self.hashes, self.vectors = self.ids[keep], self.hashes[keep], \
                self.vectors[keep]
            self.embeddings, self.embedded = self.embeddings[keep], self.embedded[keep]
            self.tags = [t for t, k in zip(self.tags, keep.tolist(), strict=True) if k]
        if changes.added:
            present = set(self.rows_of([e.id for e in changes.added]))
            fresh = [e for e in changes.added if e.id not in present]
            if fresh:
                self.ids = np.concatenate([self.ids, np.array([e.id for e in fresh], np.int64)])
                self.hashes = np.concatenate([
                    self.hashes, np.array([to_unsigned(e.phash) for e in fresh], np.uint64)
                ])
                self.vectors = np.concatenate([self.vectors, np.stack([
                    np.frombuffer(e.vector, "<f4").astype(np.float32) for e in fresh
                ])])
                self.tags += [e.tags_text for e in fresh]
                self._add_embeddings(fresh)
        self.unsaved += len(changes.removed) + len(changes.added)
        self.generation = changes.generation

    def _add_embeddings(self, fresh: list[store.Entry]) -> None:
        mine = [e.embedding if self.embedder is not None and e.embedder == self.embedder
                else None for e in fresh]
        size = self.embeddings.shape[1] or next(
            (len(m) // 4 for m in mine if m is not None), 0)
        rows = np.zeros((len(fresh), size), np.float32)
        flags = np.zeros(len(fresh), bool)
        for i, blob in enumerate(mine):
            if blob is not None and len(blob) == size * 4:
                rows[i] = np.frombuffer(blob, "<f4")
                flags[i] = True
        if self.embeddings.shape[1] != size:  # the first embeddings: earlier rows had none
            self.embeddings = np.zeros((len(self.ids) - len(fresh), size), np.float32)
        self.embeddings = np.concatenate([self.embeddings, rows])
        self.embedded = np.concatenate([self.embedded, flags])

    def nearest_embeddings(self, vector: npt.NDArray[np.float32], k: int,
                           allowed: npt.NDArray[np.bool_] | None = None
                           ) -> list[tuple[int, float]]:
        """The ``k`` ``(image, cosine)`` whose embeddings are most like ``vector``."""
        if not len(self) or k <= 0 or self.embeddings.shape[1] != len(vector):
            return []
        scores = self.embeddings @ vector
        usable = self.embedded if allowed is None else self.embedded & allowed
        scores = np.where(usable, scores, -2.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.ids[i]), float(scores[i])) for i in top if scores[i] > -2.0]

    def rows_of(self, numbers: list[int]) -> dict[int, int]:
        """The rows of these images (those in the index), without a pass in Python over
        every row: searches call it on their few candidates."""
        rows = np.flatnonzero(np.isin(self.ids, np.asarray(numbers, np.int64)))
        return {int(self.ids[i]): int(i) for i in rows}

    def vectors_of(self, numbers: list[int]) -> dict[int, npt.NDArray[np.float32]]:
        """The global descriptors of these images (those in the index)."""
        return {n: self.vectors[i] for n, i in self.rows_of(numbers).items()}

    def allowed(self, tag: str | None) -> npt.NDArray[np.bool_] | None:
        """Rows carrying ``tag`` (None: every row)."""
        if not tag:
            return None
        needle = f",{tag},"
        return np.fromiter((needle in t for t in self.tags), bool, len(self.tags))

    def nearest_hashes(self, value: int, k: int, max_bits: int,
                       allowed: npt.NDArray[np.bool_] | None = None) -> list[tuple[int, int]]:
        """Up to ``k`` ``(image, bits)`` within ``max_bits`` of ``value``, closest first."""
        if not len(self):
            return []
        bits = hamming(self.hashes, value).astype(np.int16)
        if allowed is not None:
            bits[~allowed] = 99
        order = np.argsort(bits, kind="stable")[:k]
        return [(int(self.ids[i]), int(bits[i])) for i in order if bits[i] <= max_bits]

    def nearest_vectors(self, vector: npt.NDArray[np.float32], k: int,
                        allowed: npt.NDArray[np.bool_] | None = None) -> list[tuple[int, float]]:
        """The ``k`` ``(image, cosine)`` most like ``vector``, best first."""
        if not len(self) or k <= 0:
            return []
        scores = self.vectors @ vector
        if allowed is not None:
            scores = np.where(allowed, scores, -2.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.ids[i]), float(scores[i])) for i in top if scores[i] > -2.0]

    # the index file

    def save(self, path: Path) -> None:
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        with temporary.open("wb") as out:
            np.savez(
                out, library_id=np.array(self.library_id), generation=np.array(self.generation),
                ids=self.ids, hashes=self.hashes, vectors=self.vectors,
                tags=np.array(self.tags, dtype=str), embedder=np.array(self.embedder or ""),
                embeddings=self.embeddings, embedded=self.embedded,
            )
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
        self.unsaved = 0

    @classmethod
    def load(cls, path: Path, library_id: str, embedder: str | None = None
             ) -> LibraryIndex | None:
        """The index saved at ``path`` (for the embedding model ``embedder``), or None
        when it is missing or unusable."""
        try:
            with np.load(path, allow_pickle=False) as data:
                index = cls(
                    library_id=str(data["library_id"]),
                    generation=int(data["generation"]),
                    ids=data["ids"].astype(np.int64),
                    hashes=data["hashes"].astype(np.uint64),
                    vectors=data["vectors"].astype(np.float32),
                    tags=[str(t) for t in data["tags"].tolist()],
                    embedder=str(data["embedder"]) or None,
                    embeddings=data["embeddings"].astype(np.float32),
                    embedded=data["embedded"].astype(bool),
                )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            log.warning("the index file of library %s is unusable (%s); rebuilding it",
                        library_id, exc)
            return None
        n = len(index.ids)
        if index.embedder != embedder:
            log.info("the index file of library %s was made for another embedding model; "
                     "rebuilding it", library_id)
            return None
        if (index.library_id != library_id or index.hashes.shape != (n,)
                or index.vectors.shape != (n, VECTOR_SIZE) or len(index.tags) != n
                or len(index.embeddings) != n or index.embedded.shape != (n,)):
            log.warning("the index file of library %s does not hold its library; rebuilding",
                        library_id)
            return None
        return index


class Indexes:
    """Every library's index in this process, each brought up to date when used."""

    def __init__(self, db: Database, folder: Path | None, embedder: str | None = None) -> None:
        self.db = db
        self.folder = folder
        self.embedder = embedder
        self._indexes: dict[str, LibraryIndex] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def _path(self, library_id: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{library_id}.npz"

    def get(self, library_id: str) -> LibraryIndex | None:
        """The library's index, up to date with the database (None: no such library)."""
        with self._guard:
            lock = self._locks.setdefault(library_id, threading.Lock())
        with lock:
            current = store.generation_of(self.db, library_id)
            if current is None:
                self.forget(library_id)
                return None
            index = self._indexes.get(library_id)
            path = self._path(library_id)
            if index is None and path is not None:
                index = LibraryIndex.load(path, library_id, self.embedder)
                if index is not None and index.generation > current:
                    log.warning("the index file of library %s is ahead of the database; "
                                "rebuilding it", library_id)
                    index = None
            if index is None:
                index = LibraryIndex(library_id, embedder=self.embedder)
                index.unsaved = SAVE_EVERY  # a first build is saved at once
            if index.generation != current:
                changes = store.changes_since(self.db, library_id, index.generation)
                if changes is None:
                    self.forget(library_id)
                    return None
                index.apply(changes)
            self._indexes[library_id] = index
            if path is not None and index.unsaved >= SAVE_EVERY:
                try:
                    index.save(path)
                except OSError as exc:
                    log.warning("could not save the index of library %s: %s", library_id, exc)
            return index

    def loaded(self, library_id: str) -> LibraryIndex | None:
        """The library's index if this process holds it (as last brought up to date)."""
        return self._indexes.get(library_id)

    def file_size(self, library_id: str) -> int:
        path = self._path(library_id)
        try:
            return 0 if path is None else path.stat().st_size
        except OSError:
            return 0

    def forget(self, library_id: str) -> None:
        """Drop a deleted library's index and its file."""
        self._indexes.pop(library_id, None)
        path = self._path(library_id)
        if path is not None:
            path.unlink(missing_ok=True)

    def flush(self) -> None:
        """Save every index with changes not yet in its file (at shutdown)."""
        for library_id, index in list(self._indexes.items()):
            path = self._path(library_id)
            if path is not None and index.unsaved:
                try:
                    index.save(path)
                except OSError as exc:
                    log.warning("could not save the index of library %s: %s", library_id, exc)
