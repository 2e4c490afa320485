"""GET /api/v1/tools: every tool as the registry declares it, for clients and the UI."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from aerovision.api.deps import ServicesDep
from aerovision.params import defaults
from aerovision.tools import TOOLS
from aerovision.tools.spec import ACCEPT, Tool

router = APIRouter(prefix="/api/v1", tags=["tools"])

class InputOut(BaseModel):
    name: str = Field(description="The form field of this input.")
    kind: str = Field(description="image, cloud (PLY with normals), or any (a chain's).")
    help: str = Field(description="What to give.")
    required: bool = Field(description="Whether the request must include it.")
    many: bool = Field(description="Whether the field may be repeated.")
    accept: list[str] = Field(description="File name endings it takes.")


class PresetOut(BaseModel):
    name: str = Field(description="The preset's name.")
    note: str = Field(description="When to use it.")
    params: dict[str, Any] = Field(description="The parameter values it sets.")


class ToolOut(BaseModel):
    name: str = Field(description="The tool's name: POST /api/v1/match/<name>.")
    title: str = Field(description="A short human name.")
    summary: str = Field(description="One line on what it does.")
    docs: str = Field(description="What it returns, in Markdown.")
    submit: str = Field(description="The route that submits a task.")
    settings: str | None = Field(description="Its settings route, if it has settings.")
    inputs: list[InputOut] = Field(description="Its input files, in order.")
    params_schema: dict[str, Any] = Field(
        description="JSON schema of its complete parameters (the chain: of its steps)."
    )
    defaults: dict[str, Any] = Field(description="Built-in defaults ({} for the chain).")
    presets: list[PresetOut] = Field(description="Named parameter sets from the documentation.")
    found: dict[str, Any] = Field(
        description='When a result counts as found, by default: {"field", "above"} '
        '(result_data[field] > above) or {"field", "equals"}.'
    )
    found_when: list[dict[str, Any]] = Field(
        description='Every rule a chain step may choose with "found_when": {"name", "field", '
        '"above" or "equals"}; the first is the default.'
    )
    result_line: str = Field(
        description="One-line summary of a result: result_data fields in braces, optionally "
        "with :.Nf or :.Ng."
    )
    chainable: bool = Field(description="Whether it may be a step of a chain.")


class ToolsOut(BaseModel):
    tools: list[ToolOut] = Field(description="Every tool, in the order to show them.")
    max_chain_steps: int = Field(description="Most steps in one chain.")


def describe(tool: Tool[Any]) -> ToolOut:
    """``tool`` as ``GET /api/v1/tools`` shows it."""
    return ToolOut(
        name=tool.name,
        title=tool.title,
        summary=tool.summary,
        docs=tool.docs,
        submit=f"/api/v1/match/{tool.name}",
        settings=f"/api/v1/settings/{tool.name}" if tool.has_settings else None,
        inputs=[
            InputOut(name=s.name, kind=s.kind, help=s.help, required=s.required, many=s.many,
                     accept=list(ACCEPT[s.kind]))
            for s in tool.inputs
        ],
        params_schema=tool.params.model_json_schema(),
        defaults=defaults(tool.name) if tool.has_settings else {},
        presets=[PresetOut(name=p.name, note=p.note, params=dict(p.params)) for p in tool.presets],
        found=tool.found.describe(),
        found_when=[{"name": name, **rule.describe()} for name, rule in tool.found_when.items()],
        result_line=tool.result_line.template,
        chainable=tool.chainable,
    )


@cache
def _every_tool() -> tuple[ToolOut, ...]:
    """The registry described once per process: it does not change while it runs."""
    return tuple(describe(tool) for tool in TOOLS.values())


@router.get("/tools", summary="Every tool: inputs, parameters, defaults, presets")
def list_tools(services: ServicesDep) -> ToolsOut:
    """Every tool the server runs, as its registry declares it: what to upload, the
    parameters' JSON schema and built-in defaults (current settings: `GET
    /api/v1/settings/<tool>`), the presets, and how to read a result."""
    return ToolsOut(
        tools=list(_every_tool()),
        max_chain_steps=services.settings.max_chain_steps,
    )
