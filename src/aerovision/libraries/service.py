"""What the libraries do, for both of their APIs (the native REST API and the seed's
wire format): adding images, searching, removing — with the files, the database
rows and the index kept in step.

Adding: the file is decoded and described in the pool (:mod:`.pool`), its file and
thumbnail are written to the store, then its row is inserted (so a row always has
its files; a crash in between leaves at most an unreferenced file, never a row
without its image). Searching (:meth:`Libraries.search`) is retrieval in two
stages: candidates from the index (hash and global-descriptor neighbours), then
each candidate checked geometrically against the query in the pool.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from aerovision.config import Settings
from aerovision.engine import imageio, retrieval
from aerovision.engine.errors import InputError
from aerovision.libraries.index import Indexes, LibraryIndex
from aerovision.libraries.pool import (
    Described,
    DescribePool,
    EmbedderSpec,
    PoolDied,
    describe_file,
    describe_query_file,
    describe_query_image,
    embed_file,
    verify_all,
)
from aerovision.store import libraries as store
from aerovision.store.db import Database
from aerovision.store.files import FileStore, StoreUnavailable
from aerovision.store.scope import Owner

log = logging.getLogger(__name__)

Mode = Literal["auto", "duplicate", "object", "similar"]
MatchType = Literal["duplicate", "object", "similar"]
MODES: tuple[Mode, ...] = ("auto", "duplicate", "object", "similar")

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_BRIEF = 4096
MAX_TAGS = 16
TAG = re.compile(r"^[^,\x00-\x1f]{1,64}$")
MAX_FILES = 100
"""Images per add request."""

DUPLICATE_CANDIDATES = 16
"""Hash and descriptor neighbours checked for being the same picture."""
DUPLICATE_HASH_BITS = 24
"""Hash neighbours further than this are not duplicate candidates."""
DUPLICATE_COSINE = 0.8
"""Descriptor neighbours less alike than this are not duplicate candidates."""
OBJECT_CANDIDATES = 48
"""Images checked for being an object in the query."""

EXTENSIONS = {"png": ".png", "jpeg": ".jpg", "bmp": ".bmp", "tiff": ".tif"}

Mask = npt.NDArray[np.bool_] | None
"""Which rows of an index a search may return (None: all)."""

RANK: dict[MatchType, int] = {"duplicate": 0, "object": 1, "similar": 2}


class BadRequest(ValueError):
    """A field of a libraries request is not usable (the message names it)."""


@dataclass(frozen=True)
class Refused:
    """A file of an add request that was not added: the status and why, and for a
    duplicate the image already there."""

    status: int
    detail: str
    existing: store.Image | None = None
    code: int | None = None
    """The wire format's sub-code for an unusable image (216200 empty, 216201 decode,
    216202 size)."""


@dataclass(frozen=True)
class Hit:
    image: store.Image
    match_type: MatchType
    score: float
    located: retrieval.Located | None = None


@dataclass
class Found:
    mode: Mode
    hits: list[Hit]
    has_more: bool
    total: int
    timings: dict[str, float] = field(default_factory=dict)
    query_size: tuple[int, int] = (0, 0)
    """The query's width and height: the pixels the outlines are in."""


def contsign_json(image: store.Image) -> dict[str, int]:
    sign1, sign2 = retrieval.split_contsign(retrieval.to_unsigned(image.contsign))
    return {"sign1": sign1, "sign2": sign2}


def hit_json(hit: Hit) -> dict[str, Any]:
    """A hit as searches answer it (SPEC-libraries.md): ``inliers``, ``homography`` and
    ``polygon`` only for a verified one."""
    image, place = hit.image, hit.located
    out: dict[str, Any] = {
        "image_id": image.image_id, "score": hit.score, "match_type": hit.match_type,
        "brief": image.brief, "tags": image.tags, "contsign": contsign_json(image),
        "external_id": image.external_id, "image": image.file_key,
        "thumbnail": image.thumbnail_key, "width": image.width, "height": image.height,
    }
    if place is not None:
        out.update(inliers=place.inliers, homography=place.homography, polygon=place.polygon)
    return out


def found_json(found: Found) -> dict[str, Any]:
    return {"mode": found.mode, "has_more": found.has_more,
            "query": {"width": found.query_size[0], "height": found.query_size[1]},
            "results": [hit_json(h) for h in found.hits], "timings": found.timings}


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise BadRequest("name: 1-64 characters of A-Z, a-z, 0-9, '_', '.' and '-'")
    return name


def check_brief(brief: str | None) -> str:
    brief = brief or ""
    if len(brief) > MAX_BRIEF:
        raise BadRequest(f"brief: at most {MAX_BRIEF} characters, got {len(brief)}")
    return brief


def parse_tags(text: str | Sequence[str] | None) -> list[str]:
    """Comma-separated (or a list), stripped, without repeats; at most 16."""
    if text is None:
        return []
    parts = text.split(",") if isinstance(text, str) else list(text)
    tags = list(dict.fromkeys(t.strip() for t in parts if t.strip()))
    if len(tags) > MAX_TAGS:
        raise BadRequest(f"tags: at most {MAX_TAGS}, got {len(tags)}")
    for tag in tags:
        if not TAG.match(tag):
            raise BadRequest(f"tags: {tag[:70]!r} is not a tag (1-64 characters, no commas)")
    return tags


def unusable(exc: Exception, data: bytes) -> Refused:
    message = str(exc)
    if not data:
        return Refused(422, "the file is empty", code=216200)
    if "over the limit" in message:
        return Refused(413, message, code=216202)
    return Refused(422, message, code=216201)


def embedder_spec(settings: Settings) -> EmbedderSpec | None:
    """The configured embedding model (EmbedderUnavailable when it cannot be used)."""
    if settings.embedder_model is None:
        return None
    from aerovision.engine.embedder import Embedder

    model = Embedder(settings.embedder_model, settings.embedder_size, settings.embedder_mean,
                     settings.embedder_std)  # loaded once here: a bad model fails at start
    return EmbedderSpec(str(settings.embedder_model), settings.embedder_size,
                        settings.embedder_mean, settings.embedder_std, model.name)


class Libraries:
    """The libraries of one API (or worker) process."""

    def __init__(
        self, db: Database, files: FileStore, *, index_folder: Path | None, workers: int,
        max_pixels: int, memory_mb: float | None, inline: bool = False,
        embedder: EmbedderSpec | None = None,
    ) -> None:
        """``inline``: decode and describe in this process (a worker's task process,
        isolated already) instead of a pool of its own. Its methods block: the API calls
        them from threads."""
        self.db = db
        self.files = files
        self.embedder = embedder
        self.indexes = Indexes(db, index_folder, None if embedder is None else embedder.name)
        self.pool = DescribePool(workers, memory_mb, inline=inline)
        self.max_pixels = max_pixels
        self._backfilling: set[str] = set()
        self._backfill_lock = threading.Lock()

    def close(self) -> None:
        self.indexes.flush()
        self.pool.close()

    # adding

    def describe(self, data: bytes) -> Described | Refused:
        if not data:
            return Refused(422, "the file is empty", code=216200)
        try:
            imageio.sniff_image(data)
            return self.pool.call(self.max_pixels, describe_file, data, self.max_pixels,
                                  self.embedder)
        except InputError as exc:
            return unusable(exc, data)
        except PoolDied as exc:
            return Refused(422, str(exc), code=216201)

    def add(
        self, owner: Owner, library_id: str, data: bytes, *, brief: str, tags: list[str],
        external_id: str | None, dedup: store.Dedup,
    ) -> store.Image | Refused | None:
        """Add one image; None when the library is gone."""
        return self.add_described(
            owner, library_id, data, self.describe(data), brief=brief, tags=tags,
            external_id=external_id, dedup=dedup,
        )

    def add_described(
        self, owner: Owner, library_id: str, data: bytes, described: Described | Refused, *,
        brief: str, tags: list[str], external_id: str | None, dedup: store.Dedup,
    ) -> store.Image | Refused | None:
        """Add an image described already (:meth:`describe`); None when the library is
        gone."""
        if isinstance(described, Refused):
            return described
        d = described.description
        signed = retrieval.to_signed(d.contsign)
        if dedup == "near":
            index = self.indexes.get(library_id)
            if index is None:
                return None
            twin = self._same_picture(index, d)
            if twin is not None:
                return Refused(409, "duplicated add", twin)
        info = imageio.sniff_image(data)
        new = store.NewImage(
            contsign=signed, phash=retrieval.to_signed(d.phash),
            vector=d.vector.astype("<f4").tobytes(), features=d.features.to_bytes(),
            width=d.width, height=d.height, brief=brief, tags=tags, external_id=external_id,
            file_key="", thumbnail_key="",
            embedding=None if d.embedding is None else d.embedding.astype("<f4").tobytes(),
            embedder=None if d.embedding is None or self.embedder is None else self.embedder.name,
        )
        keys = (
            f"libraries/{library_id}/images/{new.image_id}{EXTENSIONS[info.format]}",
            f"libraries/{library_id}/thumbnails/{new.image_id}.jpg",
        )
        new = store.NewImage(**{**new.__dict__, "file_key": keys[0], "thumbnail_key": keys[1]})
        self._write(keys, (data, described.thumbnail))
        try:
            added = store.add_image(self.db, owner, library_id, new, refuse_same_sign=dedup != "off"
            )
        except store.ExternalIdTaken:
            self._remove_files(keys)
            return Refused(409, f"external_id {external_id!r} is taken in this library")
        if added is None or isinstance(added, tuple):
            self._remove_files(keys)
            return None if added is None else Refused(409, "duplicated add", added[1])
        return added

    def _write(self, keys: Sequence[str], blobs: Sequence[bytes]) -> None:
        written: list[str] = []
        try:
            for key, blob in zip(keys, blobs, strict=True):
                self.files.write(key, blob)
                written.append(key)
        except StoreUnavailable:
            self._remove_files(written)
            raise

    def _remove_files(self, keys: Sequence[str]) -> None:
        for key in keys:
            with contextlib.suppress(StoreUnavailable, FileNotFoundError, OSError):
                self.files.delete(key)

    def _same_picture(
        self, index: LibraryIndex, query: retrieval.Description
    ) -> store.Image | None:
        hits = self._duplicates(index, query, None)  # a library image: keypoints described
        return hits[0].image if hits else None

    # removing

    def remove_images(
        self, owner: Owner, library_id: str, *, image_id: str | None = None,
        contsign: int | None = None,
    ) -> list[store.Image]:
        gone = store.delete_images(self.db, owner, library_id, image_id=image_id,
                                   contsign=contsign)
        self._remove_files([k for image in gone for k in (image.file_key, image.thumbnail_key)])
        return gone

    def remove_library(self, owner: Owner, library_id: str) -> bool:
        keys = store.delete_library(self.db, owner, library_id)
        if keys is None:
            return False
        self.indexes.forget(library_id)
        self._remove_files(keys)
        return True

    # searching

    def search(
        self, library_id: str, data: bytes | npt.NDArray[np.uint8], *, mode: Mode = "auto",
        limit: int = 10, offset: int = 0, min_score: float = 0.0, tag: str | None = None,
    ) -> Found | Refused | None:
        """Search a library (its owner checked by the caller) with an image file or a
        decoded image (a task's input); None when the library is gone."""
        started = time.perf_counter()
        # a duplicate search looks for keypoints only when hashes are not sure enough
        with_features = mode in ("auto", "object")
        query = self.describe_query(data, mode, with_features)
        if isinstance(query, Refused):
            return query
        described = time.perf_counter()
        index = self.indexes.get(library_id)
        if index is None:
            return None
        allowed = index.allowed(tag)
        timings = {"describe_ms": round((described - started) * 1000, 2)}
        hits: dict[int, Hit] = {}
        if mode in ("auto", "duplicate"):
            found = self._duplicates(index, query, allowed, timings,
                                     keypoints_sought=with_features)
            if mode == "duplicate" and not found and len(index):
                again = self.describe_query(data, mode, True)
                if isinstance(again, Refused):
                    return again
                query = again
                timings["describe_ms"] += round((time.perf_counter() - described) * 1000, 2)
                found = self._duplicates(index, query, allowed, timings)
            for hit in found:
                hits.setdefault(hit.image.id, hit)
        if mode in ("auto", "object"):
            for hit in self._objects(index, query, allowed, set(hits), timings):
                if mode == "object":  # asked for objects: a whole-picture match is one too
                    hit = Hit(hit.image, "object", hit.score, hit.located)
                hits.setdefault(hit.image.id, hit)
        ranked = sorted(
            (h for h in hits.values() if h.score >= min_score),
            key=lambda h: (RANK[h.match_type] if mode == "auto" else 0, -h.score, h.image.id),
        )
        similar_total = 0
        if mode in ("auto", "similar"):
            wanted = offset + limit + 1 - len(ranked)
            semantic = self.embedder is not None and query.embedding is not None
            if semantic and index.unembedded:
                timings["unembedded"] = index.unembedded
                self._backfill(index.library_id)
            if wanted > 0:
                near = (
                    index.nearest_embeddings(query.embedding, wanted + len(hits), allowed)
                    if semantic and query.embedding is not None
                    else index.nearest_vectors(query.vector, wanted + len(hits), allowed)
                )
                fresh = [(n, max(0.0, s)) for n, s in near
                         if n not in hits and max(0.0, s) >= min_score]
                rows = store.images_by_ids(self.db, [n for n, _ in fresh])
                ranked += [Hit(rows[n], "similar", round(s, 4)) for n, s in fresh if n in rows]
            similar_total = (int(index.embedded.sum()) if semantic else len(index)) - len(hits)
        page = ranked[offset:offset + limit]
        total = len(ranked) if mode not in ("auto", "similar") else max(len(ranked), similar_total)
        timings["total_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return Found(mode, page, has_more=len(ranked) > offset + limit, total=total,
                     timings=timings, query_size=(query.width, query.height))

    def describe_query(
        self, data: bytes | npt.NDArray[np.uint8], mode: Mode, with_features: bool
    ) -> retrieval.Description | Refused:
        """A query image (a file, or decoded already) described in the pool: with its
        keypoints if asked, with its embedding in the modes that rank by it; Refused
        when it is not a usable image."""
        try:
            if isinstance(data, np.ndarray):
                return self.pool.call(self.max_pixels, describe_query_image, data,
                                      with_features, self._embedder_for(mode))
            if not data:
                return Refused(422, "the file is empty", code=216200)
            imageio.sniff_image(data)
            return self.pool.call(self.max_pixels, describe_query_file, data,
                                  self.max_pixels, with_features, self._embedder_for(mode))
        except InputError as exc:
            return unusable(exc, data if isinstance(data, bytes) else b"?")
        except PoolDied as exc:
            return Refused(422, str(exc), code=216201)

    def _embedder_for(self, mode: Mode) -> EmbedderSpec | None:
        return self.embedder if mode in ("auto", "similar") else None

    def _backfill(self, library_id: str) -> None:
        """Embed, in the background, the images added before the model was set (their
        ``similar`` hits come once they are embedded; searches say how many are left)."""
        spec = self.embedder
        with self._backfill_lock:
            if spec is None or library_id in self._backfilling or self.pool.inline:
                return
            self._backfilling.add(library_id)

        def run() -> None:
            try:
                while rows := store.unembedded(self.db, library_id, spec.name, 32):
                    for image in rows:
                        try:
                            data = self.files.read(image.file_key)
                            vector = self.pool.call(self.max_pixels, embed_file, data,
                                                    self.max_pixels, spec)
                        except (InputError, PoolDied, FileNotFoundError, StoreUnavailable) \
                                as exc:
                            log.warning("library %s: image %s could not be embedded: %s",
                                        library_id, image.image_id, exc)
                            return
                        store.set_embedding(self.db, library_id, image.id,
                                            vector.astype("<f4").tobytes(), spec.name)
                log.info("library %s: every image is embedded by %s", library_id, spec.name)
            finally:
                with self._backfill_lock:
                    self._backfilling.discard(library_id)

        threading.Thread(target=run, name=f"embed-{library_id}", daemon=True).start()

    def _duplicates(
        self, index: LibraryIndex, query: retrieval.Description, mask: Mask,
        timings: dict[str, float] | None = None, *, keypoints_sought: bool = True,
    ) -> list[Hit]:
        """The library's copies of the query's picture, best first (without
        ``keypoints_sought``, only those the hashes are sure of)."""
        exact = store.images_with_contsign(self.db, index.library_id,
            retrieval.to_signed(query.contsign),
        )
        placed = index.rows_of([image.id for image in exact])
        hits = [Hit(image, "duplicate", 1.0) for image in exact if image.id in placed
                and (mask is None or bool(mask[placed[image.id]]))]
        seen = {h.image.id for h in hits}
        by_hash = dict(index.nearest_hashes(query.phash, DUPLICATE_CANDIDATES,
                                            DUPLICATE_HASH_BITS, mask))
        by_vector = {n: c for n, c in index.nearest_vectors(
            query.vector, DUPLICATE_CANDIDATES, mask
        ) if c >= DUPLICATE_COSINE}
        candidates = [n for n in dict.fromkeys([*by_hash, *by_vector]) if n not in seen]
        vectors = index.vectors_of(candidates)
        layout = {n: retrieval.layout_cosine(query.vector, v) for n, v in vectors.items()}
        sure = {n for n in candidates if n in by_hash
                and by_hash[n] <= retrieval.SURE_DUPLICATE_BITS
                and layout.get(n, 0.0) >= retrieval.SURE_DUPLICATE_LAYOUT}
        checked = self._verify(query, [n for n in candidates if n not in sure], timings)
        rows = store.images_by_ids(self.db, candidates)
        few = retrieval.MIN_INLIERS * 2  # fewer keypoints than this: no geometric check
        for number in candidates:
            if number not in rows:
                continue
            place, keypoints = checked.get(number, (None, 0))
            if place is not None and place.match_type == "duplicate":
                hits.append(Hit(rows[number], "duplicate", round(0.5 + 0.5 * place.overlap, 4),
                                place))
            elif number in sure:
                hits.append(Hit(rows[number], "duplicate", round(1 - by_hash[number] / 64, 4)))
            elif place is None and number in by_hash:
                bits, cosine = by_hash[number], by_vector.get(number, 0.0)
                uncheckable = len(query.features) < few or (number in checked and keypoints < few)
                alike = (cosine >= retrieval.HASH_DUPLICATE_COSINE
                         or layout.get(number, 0.0) >= retrieval.HASH_DUPLICATE_LAYOUT)
                if (keypoints_sought and uncheckable and bits <= retrieval.HASH_DUPLICATE_BITS
                        and alike):
                    hits.append(Hit(rows[number], "duplicate", round(1 - bits / 64, 4)))
        return sorted(hits, key=lambda h: (-h.score, h.image.id))

    def _objects(
        self, index: LibraryIndex, query: retrieval.Description, mask: Mask,
        skip: set[int], timings: dict[str, float],
    ) -> list[Hit]:
        if len(index) <= OBJECT_CANDIDATES:
            pool = [int(n) for n, ok in zip(
                index.ids.tolist(), (mask.tolist() if mask is not None else [True] * len(index)),
                strict=True) if ok]
        else:
            pool = [n for n, _ in index.nearest_vectors(
                query.vector, OBJECT_CANDIDATES, mask)]
        candidates = [n for n in pool if n not in skip]
        located = self._verify(query, candidates, timings)
        rows = store.images_by_ids(self.db, list(located))
        hits = []
        for number, (place, _) in located.items():
            if place is not None and number in rows:
                kind: MatchType = "duplicate" if place.match_type == "duplicate" else "object"
                hits.append(Hit(rows[number], kind, place.score, place))
        return hits

    def _verify(
        self, query: retrieval.Description, candidates: Sequence[int],
        timings: dict[str, float] | None,
    ) -> dict[int, tuple[retrieval.Located | None, int]]:
        """Each candidate checked against the query: where it is (or None) and how many
        keypoints it has; nothing when the query has too few keypoints to check."""
        if not candidates or len(query.features) < retrieval.MIN_INLIERS:
            return {}
        started = time.perf_counter()
        blobs = store.features_by_ids(self.db, candidates)
        pairs = [(n, blobs[n]) for n in candidates if n in blobs]
        try:
            found = self.pool.call(self.max_pixels, verify_all, query.features, pairs)
        except PoolDied:
            log.warning("a verifying process died; %d candidates unchecked", len(pairs))
            return {}
        if timings is not None:
            timings["verify_ms"] = round(
                timings.get("verify_ms", 0.0) + (time.perf_counter() - started) * 1000, 2
            )
            timings["candidates"] = timings.get("candidates", 0) + len(pairs)
        return {number: (place, keypoints) for number, place, keypoints in found}


_TASK_LIBRARIES: dict[str, Libraries] = {}
"""A task process's libraries, by database URL (made after the fork, kept for its next
tasks: their indexes stay loaded)."""


@dataclass(frozen=True)
class TaskLibrary:
    """One library as a task of its account sees it (:class:`aerovision.tools.spec.Library`)."""

    libraries: Libraries
    library_id: str

    def search(
        self, image: npt.NDArray[np.uint8], *, mode: str, limit: int, offset: int,
        min_score: float, tag: str | None,
    ) -> dict[str, Any]:
        found = self.libraries.search(
            self.library_id, image, mode=cast(Mode, mode), limit=limit, offset=offset,
            min_score=min_score, tag=tag,
        )
        if found is None:
            raise InputError(f"library {self.library_id} was deleted")
        if isinstance(found, Refused):
            raise InputError(f"image: {found.detail}")
        return found_json(found)


def task_library(
    database_url: str, files: FileStore, index_folder: str | None, account_id: str,
    library_id: str, max_pixels: int, embedder: EmbedderSpec | None = None,
) -> TaskLibrary:
    """``account_id``'s library for a task (InputError when the account has no such
    library); decoding and describing run in the task's own process."""
    libraries = _TASK_LIBRARIES.get(database_url)
    if libraries is None:
        libraries = Libraries(
            Database(database_url), files, index_folder=Path(index_folder) if index_folder
            else None, workers=1, max_pixels=max_pixels, memory_mb=None, inline=True,
            embedder=embedder,
        )
        _TASK_LIBRARIES[database_url] = libraries
    if store.get_library(libraries.db, library_id, Owner(account_id)) is None:
        raise InputError(f"library_id: the account has no library {library_id}")
    return TaskLibrary(libraries, library_id)
