"""The tool registry: the only description of each tool.

Each tool is one module of this package holding one :class:`~aerovision.tools.spec.Tool`
named ``TOOL`` (its inputs, params model, presets, "found" rule, summary line and
runner). :data:`TOOLS` lists them in the order users see them; the chain is built
over them. Everything else — the submit and settings routes, chain steps,
``GET /api/v1/tools``, the workers, the CLI and the UI — is made from it.

Adding a tool: write its engine module and its module here, and add the module to
:data:`MODULES` (see docs/adding-a-tool.md).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from aerovision.tools import chain, feature, inspect, search, surface, template
from aerovision.tools.spec import Tool

MODULES = (template, feature, surface, inspect, search)
"""The tools, in the order the UI and the CLI show them (the chain comes last)."""

NOT_TOOLS = frozenset({"spec", "chain"})
"""Modules of this package that are not a tool of :data:`MODULES`."""


class RegistryError(RuntimeError):
    """The registry is inconsistent: the service refuses to start."""


def build(
    modules: Sequence[ModuleType], package: str, path: Sequence[str]
) -> dict[str, Tool[Any]]:
    """The registry of ``modules``, checked against every module of ``package`` (found
    on ``path``): raises :class:`RegistryError` when a listed module declares no tool,
    a tool has no runner, two share a name, or a module declares a tool not listed."""
    tools: dict[str, Tool[Any]] = {}
    for module in modules:
        tool = getattr(module, "TOOL", None)
        if not isinstance(tool, Tool):
            raise RegistryError(f"{module.__name__} declares no TOOL")
        if not callable(tool.run):
            raise RegistryError(f"the {tool.name} tool has no runner")
        if tool.name in tools:
            raise RegistryError(f"two tools are named {tool.name}")
        tools[tool.name] = tool
    listed = {m.__name__.rsplit(".", 1)[1] for m in modules}
    for info in pkgutil.iter_modules(path):
        if info.name not in listed and info.name not in NOT_TOOLS:
            module = importlib.import_module(f"{package}.{info.name}")
            if isinstance(getattr(module, "TOOL", None), Tool):
                raise RegistryError(
                    f"{module.__name__} declares a tool that the registry does not list"
                )
    tools["chain"] = chain.declare(tools)
    return tools


TOOLS: dict[str, Tool[Any]] = build(MODULES, __name__, __path__)
"""Every tool by name, the chain last."""


def get(name: str) -> Tool[Any] | None:
    return TOOLS.get(name)


def chainable() -> list[str]:
    return [name for name, tool in TOOLS.items() if tool.chainable]
