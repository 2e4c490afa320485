"""Running a task's tool: the store-backed inputs and outputs its runner is given.

Runs inside the task's child process (see executor.py). The runner comes from
the tool registry; this module gives it its inputs by name and a place for its
result files. Inputs are read from the file store once and decoded at most once
per kind (a chain's steps share them), and JSON-ready result data is returned.

Pictures come after the verdict (:func:`run_staged`): a runner names its result
pictures and how to draw them, and the input thumbnails are noted as inputs are
decoded; the verdict (result data and the keys of every file) is answered first,
and the drawing, encoding and writing happen after it in the same process. The
task is ``done`` as soon as its verdict is recorded; a download of a picture not
yet written waits for it (docs/decisions.md, "Pictures after the verdict").

``result_data.timings`` says where the verdict's time went: ``read_ms`` (input
files from the store), ``decode_ms``, ``match_ms`` (the tool's own work) and
``store_ms`` (files a tool saved during its run). Result data does not change
once the task is ``done`` (a webhook's body is the task), so the drawing
(``render_ms``) and writing (``store_ms``) of files after the verdict are in the
worker's log line for them, and in :func:`run_job`'s result. An input the store
no longer has is the task's error (InputError, naming the key); a store that
fails (StoreUnavailable) is not, and is left to the worker, which retries the task.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from pydantic import ValidationError

from aerovision.engine import imageio, ply, render, render3d
from aerovision.engine.errors import InputError
from aerovision.engine.template import match_template
from aerovision.jobs.executor import Staged
from aerovision.store.files import JPEG_EXTENSIONS, FileStore
from aerovision.store.models import DEFAULT_ACCOUNT_ID
from aerovision.tools import TOOLS
from aerovision.tools.spec import Inputs, Library, Outputs, RunResult

log = logging.getLogger(__name__)

THUMBNAIL_LONG_SIDE = 256


@dataclass
class Stages:
    """Milliseconds spent per stage of one task, and the files to write after its verdict."""

    ms: dict[str, float] = field(default_factory=dict)
    later: list[tuple[str, Callable[[], bytes], bool]] = field(default_factory=list)
    """``(key, make, is_thumbnail)``: a file to make and write after the verdict."""

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            self.ms[stage] = self.ms.get(stage, 0.0) + elapsed

    def write_later(self, store: FileStore, *, thumbnails_only: bool = False) -> dict[str, float]:
        """Make and write the files noted for after the verdict (only the thumbnails
        with ``thumbnails_only``); the timings of doing it."""
        before = {stage: self.ms.get(stage, 0.0) for stage in ("render_ms", "store_ms")}
        for key, make, is_thumbnail in self.later:
            if thumbnails_only and not is_thumbnail:
                continue
            with self.timed("render_ms"):
                data = make()
            with self.timed("store_ms"):
                store.write(key, data)
        self.later.clear()
        return {stage: round(self.ms[stage] - before[stage], 2) for stage in before}


@dataclass(frozen=True)
class Written:
    """What writing a task's files after its verdict reports: the time it took, and
    whether its pictures were left for a download to ask for."""

    timings: dict[str, float]
    left_pictures: bool = False


@dataclass(frozen=True)
class Job:
    """Everything a child needs to run one task."""

    uid: str
    tool: str  # a tool of the registry (aerovision.tools.TOOLS)
    params: dict[str, Any]
    input_fields: tuple[str, ...]  # the tool's input names, in the order of input_files
    input_files: tuple[str, ...]
    thumbnails: tuple[str, ...]
    results_prefix: str  # "results/<uid>"
    max_image_pixels: int
    max_ply_points: int = 5_000_000
    pictures: bool = True
    """Write the result pictures after the verdict; False leaves them for the first
    download to ask for (the tool's ``pictures_on_demand``): only thumbnails are written."""
    account_id: str = DEFAULT_ACCOUNT_ID
    """Whose task it is: the libraries it may read."""
    database_url: str = ""
    """Where the libraries are (the deployment's database)."""
    index_folder: str = ""
    """This machine's folder of library index files ("" : none)."""
    embedder: Any = None
    """The embedding model for ``similar`` searches (an EmbedderSpec), or None."""


@dataclass
class StoreInputs:
    """A task's input files from the store, decoded on first use and kept for the next
    step: every input is decoded as the kind first asked for (so one message names
    each bad input), and its thumbnail is written then."""

    job: Job
    store: FileStore
    stages: Stages = field(default_factory=Stages)
    _raw: dict[str, bytes] = field(default_factory=dict)
    _decoded: dict[str, list[Any] | InputError] = field(default_factory=dict)

    def _index(self, name: str) -> int:
        try:
            return self.job.input_fields.index(name)
        except ValueError:
            raise InputError(f"the task has no input named {name}") from None

    def raw(self, name: str) -> bytes:
        """The input file's bytes; InputError when the store no longer has it."""
        key = self.job.input_files[self._index(name)]
        if key not in self._raw:
            try:
                with self.stages.timed("read_ms"):
                    self._raw[key] = self.store.read(key)
            except FileNotFoundError:
                raise InputError(
                    f"{name}: input file {key} is missing from the file store"
                ) from None
        return self._raw[key]

    def image(self, name: str) -> np.ndarray:
        """The input as an image; InputError naming each input that is not one."""
        image: np.ndarray = self._every(
            "image",
            lambda data: imageio.decode_image(
                data, max_pixels=self.job.max_image_pixels, limit_name="AEROVISION_MAX_IMAGE_PIXELS"
            ),
            _image_thumbnail,
        )[self._index(name)]
        return image

    def cloud(self, name: str) -> ply.PointCloud:
        """The input as a point cloud with normals; InputError naming each bad input."""
        cloud: ply.PointCloud = self._every(
            "cloud",
            lambda data: ply.read_ply(data, max_points=self.job.max_ply_points),
            _cloud_thumbnail,
        )[self._index(name)]
        return cloud

    def renamed(self, names: Mapping[str, str]) -> Inputs:
        return _Renamed(self, dict(names))

    def library(self, library_id: str) -> Library:
        from aerovision.libraries.service import task_library

        if not self.job.database_url:
            raise InputError("libraries are not available to this task")
        return task_library(
            self.job.database_url, self.store, self.job.index_folder or None,
            self.job.account_id, library_id, self.job.max_image_pixels, self.job.embedder,
        )

    def _every(
        self, kind: str, decode: Callable[[bytes], Any], thumbnail: Callable[[Any, str], bytes]
    ) -> list[Any]:
        """Every input decoded by ``decode``, once per ``kind``, its thumbnail written;
        the InputError (each bad input named) is kept and raised again too."""
        if kind not in self._decoded:
            values: list[Any] = []
            problems: list[str] = []
            for index, name in enumerate(self.job.input_fields):
                data = self.raw(name)
                try:
                    with self.stages.timed("decode_ms"):
                        value = decode(data)
                except InputError as exc:
                    message = str(exc)
                    problems.append(
                        message if message.startswith(f"{name}:") else f"{name}: {message}"
                    )
                    continue
                values.append(value)
                if index < len(self.job.thumbnails):
                    key = self.job.thumbnails[index]
                    self.stages.later.append((key, partial(thumbnail, value, key), True))
            self._decoded[kind] = InputError("; ".join(problems)) if problems else values
        decoded = self._decoded[kind]
        if isinstance(decoded, InputError):
            raise decoded
        return decoded


@dataclass(frozen=True)
class _Renamed:
    """:class:`StoreInputs` under other names (a chain step's tool's)."""

    inner: Inputs
    names: dict[str, str]

    def raw(self, name: str) -> bytes:
        return self.inner.raw(self.names.get(name, name))

    def image(self, name: str) -> np.ndarray:
        return self.inner.image(self.names.get(name, name))

    def cloud(self, name: str) -> ply.PointCloud:
        return self.inner.cloud(self.names.get(name, name))

    def renamed(self, names: Mapping[str, str]) -> Inputs:
        return _Renamed(self, dict(names))

    def library(self, library_id: str) -> Library:
        return self.inner.library(library_id)


@dataclass(frozen=True)
class StoreOutputs:
    """Result files under the task's (or a chain step's) results folder, and the
    store's content-addressed cache."""

    store: FileStore
    prefix: str
    stages: Stages = field(default_factory=Stages)

    def save(self, name: str, data: bytes) -> str:
        key = f"{self.prefix}/{name}"
        with self.stages.timed("store_ms"):
            self.store.write(key, data)
        return key

    def picture(self, name: str, draw: Callable[[], np.ndarray]) -> str:
        key = f"{self.prefix}/{name}"
        self.stages.later.append((key, lambda: imageio.encode_png(draw()), False))
        return key

    def cache_get(self, key: str) -> bytes | None:
        try:
            return self.store.read(key) if self.store.exists(key) else None
        except FileNotFoundError:  # removed meanwhile
            return None

    def cache_put(self, key: str, data: bytes) -> None:
        self.store.write(key, data)

    def within(self, folder: str) -> Outputs:
        return StoreOutputs(self.store, f"{self.prefix}/{folder}", self.stages)


def _image_thumbnail(image: np.ndarray, key: str) -> bytes:
    thumb = imageio.make_thumbnail(image, long_side=THUMBNAIL_LONG_SIDE)
    if key.lower().endswith(JPEG_EXTENSIONS):
        return imageio.encode_jpeg(thumb)
    return imageio.encode_png(thumb)


def _cloud_thumbnail(cloud: ply.PointCloud, _key: str) -> bytes:
    return imageio.encode_png(render3d.render_cloud_thumbnail(cloud, THUMBNAIL_LONG_SIDE))


def run_staged(job: Job, store: FileStore) -> Staged | RunResult:
    """Run ``job`` up to its verdict; raises InputError for unusable input.

    Returns the :class:`RunResult` itself when there is nothing left to write, else
    a :class:`Staged` whose ``then()`` writes the thumbnails and (with
    ``job.pictures``) the pictures, and returns :class:`Written`. On an error the
    thumbnails of the inputs that decoded are written before it is raised.
    """
    tool = TOOLS.get(job.tool)
    if tool is None:
        raise InputError(f"the {job.tool} tool is not available on this server")
    try:
        params = tool.validate_params(job.params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise InputError(f"the task's params are not valid for {job.tool}: {problems}") from None
    stages = Stages()
    started = time.perf_counter()
    try:
        with _opencv_memory():
            result = tool.run(
                params, StoreInputs(job, store, stages),
                StoreOutputs(store, job.results_prefix, stages),
            )
    except Exception:
        _write_thumbnails(stages, store, job.uid)
        raise
    total = (time.perf_counter() - started) * 1000
    spent = {stage: stages.ms.get(stage, 0.0) for stage in ("read_ms", "decode_ms", "store_ms")}
    timings = {**spent, "match_ms": total - sum(spent.values())}
    if not timings["store_ms"]:
        del timings["store_ms"]
    own = result.result_data.get("timings")
    result.result_data["timings"] = {
        **{stage: round(ms, 2) for stage, ms in timings.items()},
        **(own if isinstance(own, dict) else {}),  # a tool's own stages keep their names
    }
    if not stages.later:
        return result
    return Staged(result, lambda: _write_later(stages, store, pictures=job.pictures))


def _write_later(stages: Stages, store: FileStore, *, pictures: bool) -> Written:
    left = not pictures and any(not is_thumbnail for _, _, is_thumbnail in stages.later)
    with _opencv_memory():
        return Written(stages.write_later(store, thumbnails_only=not pictures), left)


def _write_thumbnails(stages: Stages, store: FileStore, uid: str) -> None:
    """The thumbnails of a task that failed (best effort: the error is what matters)."""
    try:
        stages.write_later(store, thumbnails_only=True)
    except Exception:
        log.warning("task %s: its thumbnails could not be written", uid, exc_info=True)


def run_job(job: Job, store: FileStore) -> RunResult:
    """Run ``job`` to its end, pictures written, and return its result (InputError for
    unusable input); ``result_data.timings`` has every stage."""
    answer = run_staged(job, store)
    if isinstance(answer, RunResult):
        return answer
    result: RunResult = answer.value
    written: Written = answer.then()
    result.result_data["timings"].update(written.timings)
    return result


@contextmanager
def _opencv_memory() -> Iterator[None]:
    """OpenCV running out of memory raised as MemoryError (the task's memory limit)."""
    import cv2

    try:
        yield
    except cv2.error as exc:
        if "Insufficient memory" in str(exc) or "Failed to allocate" in str(exc):
            raise MemoryError(str(exc)) from exc
        raise


def warm_up() -> None:
    """Run every tool once on a tiny synthetic input in this (worker) process.

    Task children are forked from the worker: what OpenCV initialises lazily on
    first use (codecs, thread pool, DFT plans) is then already there in every
    child. Measured on a 320×240 task: 49 ms in a child of a cold worker, 21 ms
    in a child of a warmed one, 11 ms in process.
    """
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    decoded = imageio.decode_image(imageio.encode_png(image), max_pixels=image.size)
    imageio.decode_image(imageio.encode_jpeg(image), max_pixels=image.size)
    result = match_template(decoded, decoded[20:52, 30:62].copy())
    render.draw_matches(decoded, result.matches)
    render.heatmap_image(result.score_map, decoded.shape, (32, 32, 3))
    imageio.make_thumbnail(decoded, long_side=THUMBNAIL_LONG_SIDE)
    release_thread_pool()


def release_thread_pool() -> None:
    """Stop OpenCV's worker threads in this process (they start again on next use).

    Call it before forking task processes: a child forked while the pool runs
    inherits a pool whose threads do not exist in it, and its OpenCV then works
    on one thread. Measured, SIFT on 1152×864: 203 ms in the worker, 317 ms in a
    child forked after warm-up, 195 ms in a child forked after this.
    """
    import cv2

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    cv2.setNumThreads(threads)
