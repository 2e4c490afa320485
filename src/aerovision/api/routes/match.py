"""POST /api/v1/match/<tool>: submit a task, one route per tool of the registry."""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Response
from fastapi.responses import JSONResponse

from aerovision import wire
from aerovision.api.auth import CallerDep
from aerovision.api.deps import ServicesDep
from aerovision.api.schemas import Message, TaskOut
from aerovision.api.submit import form_model, submit_tool
from aerovision.tools import TOOLS

router = APIRouter(prefix="/api/v1/match", tags=["match"])

SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Message, "description": "The multipart body could not be parsed."},
    413: {"model": Message, "description": "An uploaded file is over the size limit."},
}


def multipart(model: type) -> dict[str, object]:
    """OpenAPI request body: FastAPI labels a form model with files as urlencoded."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


def _tool_route(name: str) -> None:
    """``POST /api/v1/match/<name>``: the tool's form (files + optional params) → task."""
    form_type: Any = form_model(name)
    tool = TOOLS[name]

    def submit_route(
        form: Annotated[form_type, Form()],
        services: ServicesDep,
        caller: CallerDep,
    ) -> Response:
        # written straight from the new row, like GET /api/v1/tasks/{uid}: the same
        # JSON as TaskOut without validating it again (a thread hop per submission)
        task = submit_tool(services, name, form, caller.account_id)
        return JSONResponse(wire.task_json(task), status_code=201)

    submit_route.__name__ = f"match_{name}"
    submit_route.__doc__ = tool.docs
    router.post(
        f"/{name}",
        status_code=201,
        response_model=TaskOut,
        summary=tool.title,
        responses=SUBMIT_RESPONSES,
        openapi_extra=multipart(form_type),
    )(submit_route)


for _name in TOOLS:
    _tool_route(_name)
