"""Parameters over the tool registry: partial models, merging, and built-in defaults.

Each tool's params model lives in its module of :mod:`aerovision.tools`; this
module holds what every tool's parameters go through. Requests, settings and
chain steps all validate through the tools' models, so a range is written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, create_model, field_validator
from pydantic.fields import FieldInfo

from aerovision.tools import TOOLS
from aerovision.tools.spec import ToolParams


class StrictToolParams(ToolParams):
    """JSON bodies: values must already have their type (ints are fine as floats)."""

    model_config = ConfigDict(extra="forbid", strict=True)


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
        optional = FieldInfo.merge_field_infos(info, default=None, json_schema_extra=_no_default)
        fields[name] = (info.annotation, optional)
    base = StrictToolParams if strict else ToolParams
    return create_model(
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
    model: type[ToolParams] = TOOLS[tool].params
    return model.model_validate({k: v for k, v in values.items() if k in model.model_fields})


def defaults(tool: str) -> dict[str, Any]:
    """The built-in defaults of ``tool`` (SPEC.md's table)."""
    model: type[ToolParams] = TOOLS[tool].params
    return model().model_dump()


def check_given(tool: str, given: Mapping[str, Any]) -> None:
    """Validate a JSON object of some of ``tool``'s params (chain steps, settings)."""
    model: type[ToolParams] = TOOLS[tool].params
    partial_model(model, strict=True).model_validate(dict(given))
