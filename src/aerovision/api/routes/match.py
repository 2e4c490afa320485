"""POST /api/v1/match/<tool>: submit a task."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form

from aerovision.api.deps import ServicesDep
from aerovision.api.schemas import Message, TaskOut
from aerovision.api.submit import form_model, submit

router = APIRouter(prefix="/api/v1/match", tags=["match"])

SUBMIT_RESPONSES: dict[int | str, dict[str, object]] = {
    413: {"model": Message, "description": "An uploaded file is over the size limit."},
}

TemplateForm = form_model("template")


def multipart(model: type) -> dict[str, object]:
    """OpenAPI request body: FastAPI labels a form model with files as urlencoded."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


@router.post(
    "/template",
    status_code=201,
    summary="Template matching",
    responses=SUBMIT_RESPONSES,
    openapi_extra=multipart(TemplateForm),
)
def match_template(
    form: Annotated[TemplateForm, Form()],  # type: ignore[valid-type]
    services: ServicesDep,
) -> TaskOut:
    """Find every occurrence of `template` in `image` (cv2.matchTemplate, NMS, heat map).

    Returns the queued task (201). When done, `result_files` holds
    `results/<uid>/matches.png` and `results/<uid>/heatmap.png`, and
    `result_data` holds `method`, `matches_found`, `best_score`,
    `filtered_matches`, `score_mode` and `matches` (best first).
    """
    return submit(services, "template", form)
