"""POST /api/v1/match/<tool>: submit a task."""

from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from aerovision import params as tool_params
from aerovision.api.deps import ServicesDep
from aerovision.api.schemas import Message, TaskOut
from aerovision.api.services import Services
from aerovision.api.submit import ChainForm, form_model, submit
from aerovision.store.settings import get_tool_settings

router = APIRouter(prefix="/api/v1/match", tags=["match"])

SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Message, "description": "The multipart body could not be parsed."},
    413: {"model": Message, "description": "An uploaded file is over the size limit."},
}


def multipart(model: type) -> dict[str, object]:
    """OpenAPI request body: FastAPI labels a form model with files as urlencoded."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


def submit_tool(services: Services, tool: str, form: BaseModel) -> TaskOut:
    spec = tool_params.TOOLS[tool]
    given = form.model_dump(exclude=set(spec.inputs), exclude_none=True)
    return submit(
        services,
        tool=tool,
        uploads=[(name, getattr(form, name)) for name in spec.inputs],
        kinds=[spec.input_kind],
        effective_params=lambda: tool_params.merge(
            tool, get_tool_settings(services.db, tool), given
        ).model_dump(),
    )


TOOL_DOCS: dict[str, tuple[str, str]] = {
    "template": (
        "Template matching",
        """Find every occurrence of `template` in `image` (cv2.matchTemplate, NMS, heat map).

    Returns the queued task (201). When done, `result_files` holds
    `results/<uid>/matches.png` and `results/<uid>/heatmap.png`, and
    `result_data` holds `method`, `matches_found`, `best_score`,
    `filtered_matches`, `score_mode` and `matches` (best first).
    """,
    ),
    "feature": (
        "Feature matching",
        """Match keypoints of `query_image` in `train_image` and locate it (homography).

    When done, `result_files` holds `results/<uid>/matches.png` and `result_data`
    holds `query_keypoints`, `train_keypoints`, `good_matches`, `detector`,
    `matcher`, and the geometry: `homography` (3×3, query → train, or null),
    `inliers`, `inlier_ratio`, `corners` (the query's outline in the train image),
    `center` and `found` (true only when the geometry is consistent).
    """,
    ),
    "surface": (
        "Surface matching",
        """Find `model_file` in `scene_file` (PLY with normals): PPF pose search + ICP.

    When done, `result_files` holds `results/<uid>/alignment.png` and
    `result_data` holds `pose` (4×4, model → scene, or null), `num_model_points`,
    `num_scene_points`, `icp_residual`, `poses_found`, `score`, `poses` and
    `timings`. Trained models are cached by content, so the same model file
    trains once.
    """,
    ),
}


def _tool_route(tool: str) -> None:
    """``POST /api/v1/match/<tool>``: the tool's form (files + optional params) → task."""
    form_type: Any = form_model(tool)
    summary, doc = TOOL_DOCS[tool]

    def submit_route(
        form: Annotated[form_type, Form()],  # type: ignore[valid-type]
        services: ServicesDep,
    ) -> TaskOut:
        return submit_tool(services, tool, form)

    submit_route.__name__ = f"match_{tool}"
    submit_route.__doc__ = doc
    router.post(
        f"/{tool}",
        status_code=201,
        summary=summary,
        responses=SUBMIT_RESPONSES,
        openapi_extra=multipart(form_type),
    )(submit_route)


for _tool in TOOL_DOCS:
    _tool_route(_tool)


@router.post(
    "/chain",
    status_code=201,
    summary="Chain of matchings",
    responses=SUBMIT_RESPONSES,
    openapi_extra=multipart(ChainForm),
)
def match_chain(form: Annotated[ChainForm, Form()], services: ServicesDep) -> TaskOut:
    """Run `steps` in order on the same two inputs until one finds something.

    A step runs only if every earlier step found nothing (template:
    `filtered_matches > 0`, feature: `good_matches > 0`, surface:
    `poses_found > 0`). `result_data` holds `chain_result` (`found` or
    `not_found`), `completed_step`, `total_steps` and `steps[]`; each step
    writes its pictures under `results/<uid>/step<N>/`. A step that cannot use
    the inputs records its `error` and the chain goes on.
    """
    try:
        steps = tool_params.parse_steps(
            form.steps,
            lambda tool: get_tool_settings(services.db, tool),
            services.settings.max_chain_steps,
        )
    except tool_params.StepsError as exc:
        raise RequestValidationError(exc.errors) from None
    kinds = list(dict.fromkeys(tool_params.TOOLS[s["tool"]].input_kind for s in steps))
    return submit(
        services,
        tool="chain",
        uploads=[("image", form.image), ("template", form.template)],
        kinds=kinds,
        effective_params=lambda: {"steps": steps},
    )
