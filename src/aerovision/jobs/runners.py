"""Tool runners: decode inputs → engine call → result files and data.

Runs inside the task's child process (see executor.py). Inputs are read from
the file store once and decoded at most once per kind (a chain's steps share
them); pictures are written back to the store under the task's (or step's)
results folder, and JSON-ready result data is returned. An input the store no
longer has is the task's error (InputError, naming the key); a store that fails
(StoreUnavailable) is not, and is left to the worker, which retries the task.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aerovision.engine import imageio, ply, render, render3d, surface
from aerovision.engine.errors import InputError
from aerovision.engine.feature import match_features
from aerovision.engine.template import match_template
from aerovision.params import TOOLS
from aerovision.store.files import JPEG_EXTENSIONS, FileStore

THUMBNAIL_LONG_SIDE = 256


@dataclass(frozen=True)
class Job:
    """Everything a child needs to run one task."""

    uid: str
    tool: str  # a tool of params.TOOLS, or "chain"
    params: dict[str, Any]
    input_fields: tuple[str, ...]  # the form fields the inputs came from, for messages
    input_files: tuple[str, ...]
    thumbnails: tuple[str, ...]
    results_prefix: str  # "results/<uid>"
    max_image_pixels: int
    max_ply_points: int = 5_000_000


@dataclass(frozen=True)
class RunResult:
    result_files: list[str]
    result_data: dict[str, Any]


@dataclass
class Inputs:
    """A task's input files, decoded on first use and kept for the next step."""

    job: Job
    store: FileStore
    _raw: dict[str, bytes] = field(default_factory=dict)
    _decoded: dict[str, list[Any] | InputError] = field(default_factory=dict)

    def raw(self, index: int) -> bytes:
        """The input file's bytes; InputError when the store no longer has it."""
        key = self.job.input_files[index]
        if key not in self._raw:
            try:
                self._raw[key] = self.store.read(key)
            except FileNotFoundError:
                raise InputError(f"input file {key} is missing from the file store") from None
        return self._raw[key]

    def images(self) -> list[np.ndarray]:
        """Every input as an image; InputError naming each field that is not one."""
        return self._every(
            "image",
            lambda data: imageio.decode_image(
                data, max_pixels=self.job.max_image_pixels, limit_name="AEROVISION_MAX_IMAGE_PIXELS"
            ),
            _image_thumbnail,
        )

    def clouds(self) -> list[ply.PointCloud]:
        """Every input as a point cloud with normals; InputError naming each bad field."""
        return self._every(
            "cloud",
            lambda data: ply.read_ply(data, max_points=self.job.max_ply_points),
            _cloud_thumbnail,
        )

    def _every(
        self, kind: str, decode: Callable[[bytes], Any], thumbnail: Callable[[Any, str], bytes]
    ) -> list[Any]:
        """Every input decoded by ``decode``, once per ``kind``, its thumbnail written;
        the InputError (each bad field named) is kept and raised again too."""
        if kind not in self._decoded:
            values: list[Any] = []
            problems: list[str] = []
            for index in range(len(self.job.input_files)):
                try:
                    value = decode(self.raw(index))
                except InputError as exc:
                    problems.append(f"{self.job.input_fields[index]}: {exc}")
                    continue
                values.append(value)
                if index < len(self.job.thumbnails):
                    key = self.job.thumbnails[index]
                    self.store.write(key, thumbnail(value, key))
            self._decoded[kind] = InputError("; ".join(problems)) if problems else values
        decoded = self._decoded[kind]
        if isinstance(decoded, InputError):
            raise decoded
        return decoded


def _image_thumbnail(image: np.ndarray, key: str) -> bytes:
    thumb = imageio.make_thumbnail(image, long_side=THUMBNAIL_LONG_SIDE)
    if key.lower().endswith(JPEG_EXTENSIONS):
        return imageio.encode_jpeg(thumb)
    return imageio.encode_png(thumb)


def _cloud_thumbnail(cloud: ply.PointCloud, _key: str) -> bytes:
    return imageio.encode_png(render3d.render_cloud_thumbnail(cloud, THUMBNAIL_LONG_SIDE))


ToolRunner = Callable[[Inputs, dict[str, Any], str], RunResult]


def _run_template(inputs: Inputs, params: dict[str, Any], prefix: str) -> RunResult:
    image, template = inputs.images()
    result = match_template(image, template, **params)
    matches_key = f"{prefix}/matches.png"
    heatmap_key = f"{prefix}/heatmap.png"
    store = inputs.store
    store.write(matches_key, imageio.encode_png(render.draw_matches(image, result.matches)))
    heat = render.heatmap_image(result.score_map, image.shape, template.shape)
    store.write(heatmap_key, imageio.encode_png(heat))
    return RunResult([matches_key, heatmap_key], result.summary())


def _run_feature(inputs: Inputs, params: dict[str, Any], prefix: str) -> RunResult:
    query, train = inputs.images()
    result = match_features(query, train, **params)
    key = f"{prefix}/matches.png"
    inputs.store.write(key, imageio.encode_png(render.draw_feature_matches(query, train, result)))
    return RunResult([key], result.summary())


SURFACE_SEED = 0
"""Seed of the surface search's sampling: the same inputs always give the same answer."""

MODEL_CACHE = "cache/surface"
"""Where trained surface models are kept, by content hash (model file + training params)."""


def _trained_model(inputs: Inputs, model_cloud: ply.PointCloud, params: dict[str, Any]) -> tuple[
    surface.SurfaceModel, bool
]:
    """The trained model for the task's model file and params, from the cache when there.

    Returns ``(model, cache_hit)``. The key hashes the model file's bytes and the
    parameters that affect training, so any process on any machine shares it.
    """
    training = surface.training_key(params)
    digest = hashlib.sha256(inputs.raw(0))
    digest.update(json.dumps(training, sort_keys=True).encode())
    key = f"{MODEL_CACHE}/{digest.hexdigest()}.npz"
    if inputs.store.exists(key):
        try:
            return surface.SurfaceModel.from_bytes(inputs.store.read(key)), True
        except (InputError, FileNotFoundError):
            pass  # unreadable (older format, or removed meanwhile): train again
    model = surface.train_model(model_cloud, **training)
    inputs.store.write(key, model.to_bytes())
    return model, False


def _run_surface(inputs: Inputs, params: dict[str, Any], prefix: str) -> RunResult:
    model_cloud, scene = inputs.clouds()
    model, cache_hit = _trained_model(inputs, model_cloud, params)
    matching = {k: v for k, v in params.items() if k not in surface.TRAINING_PARAMS}
    result = surface.match_surface(model, scene, rng=SURFACE_SEED, **matching)
    key = f"{prefix}/alignment.png"
    picture = render3d.render_alignment(model_cloud, scene, result.pose)
    inputs.store.write(key, imageio.encode_png(picture))
    data = result.summary()
    data["model_cache_hit"] = cache_hit
    return RunResult([key], data)


TOOL_RUNNERS: dict[str, ToolRunner] = {
    "template": _run_template,
    "feature": _run_feature,
    "surface": _run_surface,
}


def _run_chain(inputs: Inputs, params: dict[str, Any], prefix: str) -> RunResult:
    """Steps in order until one finds something; the rest are skipped.

    A step that cannot use the inputs (e.g. images given to a surface step)
    records its error and the chain goes on; the task fails only when no step
    could run at all.
    """
    steps: list[dict[str, Any]] = params["steps"]
    reports: list[dict[str, Any]] = []
    files: list[str] = []
    completed = 0
    found_at: int | None = None
    errors: list[str] = []
    for number, step in enumerate(steps, start=1):
        report: dict[str, Any] = {"step": number, "tool": step["tool"], "params": step["params"]}
        reports.append(report)
        if found_at is not None:
            report["status"] = "skipped"
            continue
        try:
            runner = TOOL_RUNNERS.get(step["tool"])
            if runner is None:
                raise InputError(f"the {step['tool']} tool is not available on this server")
            result = runner(inputs, step["params"], f"{prefix}/step{number}")
        except InputError as exc:
            report.update(status="error", found=False, error=str(exc))
            errors.append(f"step {number} ({step['tool']}): {exc}")
            continue
        completed = number
        found = TOOLS[step["tool"]].found(result.result_data)
        report.update(
            status="done", found=found, result_data=result.result_data,
            result_files=result.result_files,
        )
        files += result.result_files
        if found:
            found_at = number
    if completed == 0:
        raise InputError("no step of the chain could run: " + "; ".join(errors))
    return RunResult(
        files,
        {
            "chain_result": "found" if found_at is not None else "not_found",
            "completed_step": found_at if found_at is not None else completed,
            "total_steps": len(steps),
            "steps": reports,
        },
    )


def run_job(job: Job, store: FileStore) -> RunResult:
    """Run ``job`` and return its result; raises InputError for unusable input."""
    runner = _run_chain if job.tool == "chain" else TOOL_RUNNERS.get(job.tool)
    if runner is None:
        raise InputError(f"the {job.tool} tool is not available on this server")
    try:
        return runner(Inputs(job, store), job.params, job.results_prefix)
    except Exception as exc:
        if _is_opencv_out_of_memory(exc):
            raise MemoryError(str(exc)) from exc
        raise


def _is_opencv_out_of_memory(exc: Exception) -> bool:
    import cv2

    return isinstance(exc, cv2.error) and (
        "Insufficient memory" in str(exc) or "Failed to allocate" in str(exc)
    )


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
