"""Surface matching: where a 3D model is in a 3D scan (PPF pose search, ICP)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import Field

from aerovision.engine import render3d, surface
from aerovision.engine.errors import InputError
from aerovision.tools import spec


class SurfaceParams(spec.ToolParams):
    relative_sampling_step: float = Field(
        0.05,
        ge=0.01,
        le=0.5,
        description="Point sampling step relative to the model diameter, 0.01–0.5; "
        "smaller is finer.",
    )
    relative_distance_step: float = Field(
        0.05,
        ge=0.01,
        le=0.5,
        description="PPF distance quantisation relative to the model diameter, 0.01–0.5.",
    )
    num_angles: int = Field(
        30, ge=1, le=360, description="Rotation discretisation (angle bins), 1–360."
    )
    use_icp: bool = Field(True, description="Refine the pose with ICP.")
    icp_tolerance: float = Field(
        0.005, gt=0.0, le=1.0, description="ICP convergence threshold, (0, 1]."
    )
    icp_iterations: int = Field(100, ge=1, le=1000, description="Most ICP iterations, 1–1000.")


SEED = 0
"""Seed of the surface search's sampling: the same inputs always give the same answer."""

MODEL_CACHE = "cache/surface"
"""Where trained surface models are kept, by content hash (model file + training params)."""


def trained_model(
    inputs: spec.Inputs, out: spec.Outputs, params: dict[str, Any]
) -> tuple[surface.SurfaceModel, bool]:
    """The trained model for the task's model file and params, from the cache when there.

    Returns ``(model, cache_hit)``. The key hashes the model file's bytes and the
    parameters that affect training, so any process on any machine shares it.
    """
    training = surface.training_key(params)
    digest = hashlib.sha256(inputs.raw("model_file"))
    digest.update(json.dumps(training, sort_keys=True).encode())
    key = f"{MODEL_CACHE}/{digest.hexdigest()}.npz"
    cached = out.cache_get(key)
    if cached is not None:
        try:
            return surface.SurfaceModel.from_bytes(cached), True
        except InputError:
            pass  # unreadable (an older format): train again
    model = surface.train_model(inputs.cloud("model_file"), **training)
    out.cache_put(key, model.to_bytes())
    return model, False


def run(params: SurfaceParams, inputs: spec.Inputs, out: spec.Outputs) -> spec.RunResult:
    model_cloud, scene = inputs.cloud("model_file"), inputs.cloud("scene_file")
    values = params.model_dump()
    model, cache_hit = trained_model(inputs, out, values)
    matching = {k: v for k, v in values.items() if k not in surface.TRAINING_PARAMS}
    result = surface.match_surface(model, scene, rng=SEED, **matching)
    picture = out.picture(
        "alignment.png", lambda: render3d.render_alignment(model_cloud, scene, result.pose)
    )
    data = result.summary()
    data["model_cache_hit"] = cache_hit
    return spec.RunResult([picture], data)


TOOL = spec.Tool(
    name="surface",
    title="Surface matching",
    summary="Find a 3D model in a 3D scene (PLY with normals): PPF pose search + ICP.",
    docs="""Find `model_file` in `scene_file` (PLY with normals): PPF pose search + ICP.

    When done, `result_files` holds `results/<uid>/alignment.png` and
    `result_data` holds `pose` (4×4, model → scene, or null), `num_model_points`,
    `num_scene_points`, `icp_residual`, `poses_found`, `score`, `poses` and
    `timings`. Trained models are cached by content, so the same model file
    trains once.
    """,
    inputs=(
        spec.InputSpec(
            "model_file", "cloud", "3D model (.ply with normals nx, ny, nz): the object."
        ),
        spec.InputSpec(
            "scene_file", "cloud", "3D scene (.ply with normals nx, ny, nz): where to look."
        ),
    ),
    pictures_on_demand=False,  # a run takes seconds; its picture, milliseconds
    params=SurfaceParams,
    run=run,
    found_when={"poses": spec.Found("poses_found")},
    result_line=spec.Summary("{poses_found#pose|poses}, icp residual {icp_residual:.4g}"),
    presets=(
        spec.Preset("Precise parts", "CAD model vs scan: a fine step, many ICP iterations.",
               {"relative_sampling_step": 0.025, "use_icp": True, "icp_iterations": 200}),
        spec.Preset("Fast pose", "A rough estimate, real time: a coarse step, no ICP.",
               {"relative_sampling_step": 0.1, "use_icp": False}),
        spec.Preset("Noisy scans", "Kinect/LiDAR data: a medium step, many ICP iterations.",
               {"relative_sampling_step": 0.05, "use_icp": True, "icp_iterations": 300}),
    ),
)
