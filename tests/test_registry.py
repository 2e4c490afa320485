"""The tool registry refuses to start when it is inconsistent, and its rules render alike."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from aerovision.tools import MODULES, RegistryError, build, inspect, template
from aerovision.tools.spec import Found, Summary


def _package(tmp_path: Path, name: str, modules: dict[str, str]) -> list[str]:
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    for module, text in modules.items():
        (root / f"{module}.py").write_text(text)
    sys.path.insert(0, str(tmp_path))
    return [str(root)]


def test_the_real_registry_lists_each_module_once() -> None:
    tools = build(MODULES, "aerovision.tools", importlib.import_module("aerovision.tools").__path__)
    assert list(tools) == ["template", "feature", "surface", "inspect", "search", "chain"]


def test_a_tool_module_the_registry_does_not_list_stops_start_up(tmp_path: Path) -> None:
    path = _package(tmp_path, "extra_tools", {
        "stray": "from aerovision.tools.inspect import TOOL\n",
    })
    try:
        with pytest.raises(RegistryError, match=r"extra_tools\.stray declares a tool that the "
                           "registry does not list"):
            build((template,), "extra_tools", path)
    finally:
        sys.path.remove(str(tmp_path))


def test_a_listed_module_without_a_tool_or_a_runner_stops_start_up(tmp_path: Path) -> None:
    path = _package(tmp_path, "broken_tools", {
        "empty": "X = 1\n",
        "norun": "import dataclasses\nfrom aerovision.tools.inspect import TOOL as _T\n"
                 "TOOL = dataclasses.replace(_T, name='norun', run=None)\n",
    })
    try:
        empty = importlib.import_module("broken_tools.empty")
        norun = importlib.import_module("broken_tools.norun")
        with pytest.raises(RegistryError, match=r"broken_tools\.empty declares no TOOL"):
            build((empty,), "broken_tools", path)
        with pytest.raises(RegistryError, match="the norun tool has no runner"):
            build((norun,), "broken_tools", path)
        with pytest.raises(RegistryError, match="two tools are named inspect"):
            build((inspect, inspect), "aerovision.tools", [])
    finally:
        sys.path.remove(str(tmp_path))


@pytest.mark.parametrize(
    ("template_text", "data", "line"),
    [
        ("{filtered_matches} matches, best score {best_score:.4g}",
         {"filtered_matches": 3, "best_score": 0.987654}, "3 matches, best score 0.9877"),
        ("{filtered_matches#match|matches}, best score {best_score:.4g}",
         {"filtered_matches": 1, "best_score": 0.9}, "1 match, best score 0.9"),
        ("{n#pose|poses}", {"n": 0}, "0 poses"),
        ("{n#pose|poses}", {"n": 2}, "2 poses"),
        ("{n#good match|good matches}", {}, "- good matches"),
        ("{a:.2f} and {b}", {"a": 1, "b": None}, "1.00 and -"),
        ("{missing} x", {}, "- x"),
        ("{s:.3f}", {"s": "text"}, "text"),
    ],
)
def test_summary_lines(template_text: str, data: dict[str, object], line: str) -> None:
    assert Summary(template_text).render(data) == line


def test_found_rules() -> None:
    assert Found("n")({"n": 1}) and not Found("n")({"n": 0}) and not Found("n")({})
    assert not Found("n")({"n": "x"})
    assert Found("r", equals="found")({"r": "found"}) and not Found("r", equals="found")({})
    assert Found("n").describe() == {"field": "n", "above": 0}
    assert Found("r", equals="found").describe() == {"field": "r", "equals": "found"}
