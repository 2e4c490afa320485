"""Per-tool parameters: names, types, ranges, defaults and the "found" rule.

One place for what SPEC.md says about each tool's parameters. Requests, settings
and chain steps all validate through these models, so a range is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, create_model, field_validator
from pydantic.fields import FieldInfo

TemplateMethod = Literal[
    "TM_CCOEFF_NORMED",
    "TM_CCORR_NORMED",
    "TM_SQDIFF_NORMED",
    "TM_CCOEFF",
    "TM_CCORR",
    "TM_SQDIFF",
]
Detector = Literal["SIFT", "ORB", "AKAZE", "BRISK"]
Matcher = Literal["FLANN", "BFMatcher"]


class ToolParams(BaseModel):
    """Base of the complete, validated parameter sets (unknown fields rejected)."""

    model_config = ConfigDict(extra="forbid")


class StrictToolParams(ToolParams):
    """JSON bodies: values must already have their type (ints are fine as floats)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class TemplateParams(ToolParams):
    method: TemplateMethod = Field(
        "TM_CCOEFF_NORMED",
        description="cv2.matchTemplate method. The *_NORMED methods give absolute scores in "
        "0–1; the others are normalised to 0–1 over each response map.",
    )
    threshold: float = Field(
        0.8,
        ge=0.1,
        le=1.0,
        description="Minimum score of a match, 0.1–1.0; higher is stricter.",
    )
    max_results: int = Field(
        20, ge=1, le=1000, description="Most matches returned, 1–1000 (best first)."
    )
    use_grayscale: bool = Field(
        True, description="Convert both images to grayscale first; false matches on colour."
    )


class FeatureParams(ToolParams):
    detector: Detector = Field("SIFT", description="Keypoint detector: SIFT, ORB, AKAZE, BRISK.")
    matcher: Matcher = Field("FLANN", description="Descriptor matcher: FLANN or BFMatcher.")
    ratio_threshold: float = Field(
        0.75,
        ge=0.1,
        le=1.0,
        description="Lowe's ratio test threshold, 0.1–1.0; lower is stricter.",
    )
    max_matches: int = Field(
        200, ge=1, le=5000, description="Most good matches kept (by distance), 1–5000."
    )


class SurfaceParams(ToolParams):
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


@dataclass(frozen=True)
class Tool:
    """What the service knows about one tool."""

    name: str
    params: type[ToolParams]
    inputs: tuple[str, str]
    input_help: tuple[str, str]
    input_kind: Literal["image", "ply"]
    found: Callable[[Mapping[str, Any]], bool]
    summary: str


TOOLS: dict[str, Tool] = {
    "template": Tool(
        "template",
        TemplateParams,
        ("image", "template"),
        (
            "Target image (PNG, JPEG, BMP, TIFF).",
            "Template to find (PNG, JPEG, BMP, TIFF); a PNG's transparent pixels are ignored.",
        ),
        "image",
        lambda data: int(data.get("filtered_matches", 0)) > 0,
        "Find every occurrence of a template in an image (sliding window, NMS, heat map).",
    ),
    "feature": Tool(
        "feature",
        FeatureParams,
        ("query_image", "train_image"),
        ("Image searched for (PNG, JPEG, BMP, TIFF).", "Reference image (PNG, JPEG, BMP, TIFF)."),
        "image",
        lambda data: int(data.get("good_matches", 0)) > 0,
        "Match keypoints between two images (SIFT/ORB/AKAZE/BRISK, FLANN/BFMatcher).",
    ),
    "surface": Tool(
        "surface",
        SurfaceParams,
        ("model_file", "scene_file"),
        (
            "3D model (.ply with normals nx, ny, nz): the object.",
            "3D scene (.ply with normals nx, ny, nz): where to look.",
        ),
        "ply",
        lambda data: int(data.get("poses_found", 0)) > 0,
        "Find a 3D model in a 3D scene (PLY with normals): PPF pose search + ICP.",
    ),
}

ToolName = Literal["template", "feature", "surface"]


def defaults(tool: str) -> dict[str, Any]:
    """The built-in defaults of ``tool`` (SPEC.md's table)."""
    return TOOLS[tool].params().model_dump()


def _given(cls: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """The partial models' rules: a field may be left out, but not sent as ``null``; and
    a whole number written as ``590.0`` is an integer (as JSON Schema counts it)."""
    if value is None:
        raise ValueError("must not be null; leave the field out to keep it")
    field = cls.model_fields.get(info.field_name or "")
    if (
        field is not None and field.annotation is int and isinstance(value, float)
        and value.is_integer()
    ):
        return int(value)
    return value


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


@cache
def partial_model(params: type[ToolParams], *, strict: bool = False) -> type[ToolParams]:
    """The same fields as ``params``, all optional: left out, a field is ``None``.

    Used for request fields and ``PUT /settings`` bodies: the same ranges apply,
    fields left out keep their current value, unknown fields are rejected, and
    an explicit ``null`` is refused (the schema says so: the types are not
    nullable). ``strict`` is for JSON bodies, where a value must already have
    its type (``true``, not ``"true"`` or ``1``); form fields are text and are parsed.
    """
    fields: dict[str, Any] = {}
    for name, info in params.model_fields.items():
        optional = FieldInfo.merge_field_infos(
            info, default=None, json_schema_extra=_no_default
        )
        fields[name] = (info.annotation, optional)
    base = StrictToolParams if strict else ToolParams
    return create_model(  # type: ignore[no-any-return]
        f"{params.__name__}{'Update' if strict else 'Fields'}",
        __base__=base,
        __doc__=f"Any subset of {params.__name__}'s fields.",
        __validators__={"given": field_validator("*", mode="before")(_given)},
        **fields,
    )


def merge(tool: str, current: Mapping[str, Any], given: Mapping[str, Any]) -> ToolParams:
    """Effective parameters: the values ``given`` (not None) over ``current``.

    Raises pydantic's ``ValidationError`` if the result is invalid.
    """
    values = dict(current)
    values.update({k: v for k, v in given.items() if v is not None})
    known = TOOLS[tool].params.model_fields
    return TOOLS[tool].params.model_validate({k: v for k, v in values.items() if k in known})


CHAIN_INPUTS: tuple[str, str] = ("image", "template")
CHAIN_INPUT_HELP: tuple[str, str] = (
    "First input: the image for template steps, query_image for feature steps, "
    "model_file for surface steps.",
    "Second input: the template for template steps, train_image for feature steps, "
    "scene_file for surface steps.",
)
MAX_CHAIN_STEPS = 10


def input_fields(tool: str) -> tuple[str, str]:
    """The form fields a task's two inputs came from (used in error messages)."""
    return CHAIN_INPUTS if tool == "chain" else TOOLS[tool].inputs


class StepsError(ValueError):
    """``steps`` is unusable; ``errors`` are in FastAPI's validation format."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(e["msg"] for e in errors))
        self.errors = errors


def parse_steps(
    raw: str,
    current: Callable[[str], Mapping[str, Any]],
    max_steps: int = MAX_CHAIN_STEPS,
) -> list[dict[str, Any]]:
    """Validate a chain's ``steps`` JSON and merge each step's params over ``current(tool)``.

    Returns ``[{"tool", "params"}]`` with complete, effective params. Raises
    :class:`StepsError` whose errors name the step (``loc`` ``["body", "steps", i, …]``,
    ``msg`` starting with ``step N``).
    """
    from pydantic import ValidationError

    from aerovision import safejson

    def error(loc: tuple[Any, ...], msg: str, given: Any, kind: str = "value_error") -> StepsError:
        return StepsError([{"type": kind, "loc": ("body", "steps", *loc), "msg": msg, "input": given}])

    try:
        steps = safejson.loads(raw)
    except safejson.TooDeep as exc:
        raise error((), f"steps: {exc}", None, "json_too_deep") from None
    except ValueError as exc:
        raise error((), f"steps is not valid JSON: {exc}", raw, "json_invalid") from None
    if not isinstance(steps, list) or not steps:
        raise error((), "steps must be a non-empty JSON array of {tool, params} objects", steps)
    if len(steps) > max_steps:
        raise error(
            (),
            f"a chain has at most {max_steps} steps (AEROVISION_MAX_CHAIN_STEPS), "
            f"got {len(steps)}",
            len(steps),
            "too_long",
        )
    parsed: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    for index, step in enumerate(steps):
        label = f"step {index + 1}"
        if not isinstance(step, dict):
            problems += error((index,), f"{label}: must be an object {{tool, params}}", step).errors
            continue
        unknown = set(step) - {"tool", "params"}
        if unknown:
            problems += error(
                (index, sorted(unknown)[0]), f"{label}: unknown field {sorted(unknown)[0]!r}",
                step[sorted(unknown)[0]], "extra_forbidden",
            ).errors
            continue
        tool = step.get("tool")
        if tool not in TOOLS:
            problems += error(
                (index, "tool"), f"{label}: tool must be one of {', '.join(TOOLS)}", tool,
                "literal_error",
            ).errors
            continue
        given = step.get("params", {})
        if not isinstance(given, dict):
            problems += error((index, "params"), f"{label}: params must be an object", given).errors
            continue
        try:
            partial_model(TOOLS[tool].params, strict=True).model_validate(given)
            effective = merge(tool, current(tool), given)
        except ValidationError as exc:
            for item in exc.errors():
                problems.append(
                    {
                        "type": item["type"],
                        "loc": ("body", "steps", index, "params", *item["loc"]),
                        "msg": f"{label} ({tool}): {item['loc'][0] if item['loc'] else ''}: "
                        f"{item['msg']}",
                        "input": item.get("input"),
                    }
                )
            continue
        parsed.append({"tool": tool, "params": effective.model_dump()})
    if problems:
        raise StepsError(problems)
    return parsed
