"""GET/PUT /api/v1/settings/{tool}: the defaults each tool's requests start from."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body

from aerovision.api.auth import CallerDep
from aerovision.api.deps import ServicesDep
from aerovision.api.schemas import Message, ToolSettingsOut
from aerovision.params import partial_model
from aerovision.store.settings import get_tool_settings, update_tool_settings
from aerovision.tools import TOOLS
from aerovision.tools.spec import ToolParams

router = APIRouter(prefix="/api/v1/settings", tags=["settings"])


def _routes_for(tool: str) -> None:
    params_model: type[ToolParams] = TOOLS[tool].params
    update_model: Any = partial_model(params_model, strict=True)

    def read(services: ServicesDep, caller: CallerDep) -> ToolSettingsOut:
        return ToolSettingsOut(
            tool=tool, params=get_tool_settings(services.db, tool, caller.account_id)
        )

    def write(
        services: ServicesDep, caller: CallerDep, changes: Annotated[update_model, Body()]
    ) -> ToolSettingsOut:
        given = changes.model_dump(exclude_unset=True)
        return ToolSettingsOut(
            tool=tool, params=update_tool_settings(services.db, tool, given, caller.account_id)
        )

    _register(read, "get", tool, f"{tool.capitalize()} settings")
    _register(write, "put", tool, f"Update {tool} settings")


def _register(fn: Callable[..., ToolSettingsOut], method: str, tool: str, summary: str) -> None:
    fn.__name__ = f"{method}_{tool}_settings"
    doc = (
        f"Current defaults of the {tool} tool, applied when a request leaves a parameter out "
        "(the caller's account's own changes over the deployment's defaults)."
        if method == "get"
        else f"Change some or all of the {tool} tool's defaults; fields left out keep their "
        "value, unknown fields and out-of-range values are refused (422). Persisted and "
        "shared by every process; for the caller's account only (the `default` account's "
        "settings are the deployment's defaults)."
    )
    fn.__doc__ = doc
    responses: dict[int | str, dict[str, Any]] = (
        {400: {"model": Message, "description": "The body is not JSON (or not UTF-8)."}}
        if method == "put"
        else {}
    )
    getattr(router, method)(f"/{tool}", summary=summary, responses=responses)(fn)


for _name, _spec in TOOLS.items():
    if _spec.has_settings:
        _routes_for(_name)
