"""The UI shows exactly what GET /api/v1/tools says, from a server whose registry was changed.

The server here runs ``tests.ui.changed_registry``: aerovision's own ``serve`` with the
template tool's "Visual QC" preset replaced in ``aerovision.tools.TOOLS``. No file of the
UI knows that preset: it reaches the page only through ``GET /api/v1/tools``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from aerovision.tools.spec import Found, Summary
from tests.server import ServeProcess
from tests.ui.changed_registry import CHANGED, REPLACED
from tests.ui.conftest import DESKTOP, open_page

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def changed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """`serve` through the launcher that changes a preset; no workers (no task runs here)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    proc = ServeProcess(tmp_path_factory.mktemp("changed") / "data", workers=0,
                        module="tests.ui.changed_registry", env={"PYTHONPATH": path}).start()
    yield proc
    proc.stop()


@pytest.fixture
def changed_page(browser: Any, changed_server: ServeProcess) -> Iterator[Any]:
    context, page, errors = open_page(browser, changed_server, DESKTOP)
    yield page
    context.close()
    assert not errors.errors, f"uncaught errors in the page: {errors.errors}"


def listed_tools(server: ServeProcess) -> dict[str, Any]:
    answer: dict[str, Any] = requests.get(server.url("/api/v1/tools"), timeout=10).json()
    return answer


def tool_entry(server: ServeProcess, name: str) -> dict[str, Any]:
    return next(t for t in listed_tools(server)["tools"] if t["name"] == name)


def test_a_preset_changed_in_the_registry_shows_in_the_ui(
    changed_page: Any, changed_server: ServeProcess, screenshot: Any
) -> None:
    page = changed_page
    presets = tool_entry(changed_server, "template")["presets"]
    names = [p["name"] for p in presets]
    assert REPLACED not in names
    assert {"name": CHANGED.name, "note": CHANGED.note, "params": dict(CHANGED.params)} in presets

    page.goto("/#/new/template")
    bar = page.locator(".presets .preset-name")
    expect(bar).to_have_text(names)
    expect(page.get_by_role("button", name=re.compile(f"^{re.escape(REPLACED)}"))).to_have_count(0)
    button = page.get_by_role("button", name=re.compile(f"^{re.escape(CHANGED.name)}"))
    expect(button).to_contain_text(CHANGED.note)
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_label("Threshold", exact=True)).to_have_value("0.97")
    expect(page.get_by_label("Max results", exact=True)).to_have_value("7")
    expect(page.get_by_label("Use grayscale", exact=True)).not_to_be_checked()
    expect(page.get_by_label("Method", exact=True)).to_have_value("TM_CCOEFF_NORMED")
    expect(page.locator(".preset-status")).to_contain_text(f"Applied “{CHANGED.name}”")
    screenshot(page, "18-changed-preset")

    # a chain's template step offers the same presets
    page.goto("/#/new/chain")
    step = page.locator("ol.steps > li").nth(0)
    expect(step.get_by_label("Tool", exact=True)).to_have_value("template")
    expect(step.locator(".preset-name")).to_have_text(names)
    step.get_by_role("button", name=re.compile(f"^{re.escape(CHANGED.name)}")).click()
    expect(step.get_by_label("Threshold", exact=True)).to_have_value("0.97")
    expect(step.get_by_label("Max results", exact=True)).to_have_value("7")


def test_every_form_is_what_get_tools_returns(
    changed_page: Any, changed_server: ServeProcess
) -> None:
    page = changed_page
    listing = listed_tools(changed_server)
    tools = listing["tools"]
    page.goto("/#/new")
    expect(page.locator(".tool-option .tool-name")).to_have_text([t["title"] for t in tools])

    for tool in tools:
        page.goto(f"/#/new/{tool['name']}")
        radio = page.get_by_role("radio", name=re.compile(f"^{re.escape(tool['title'])}"))
        expect(radio).to_be_checked()
        drops = page.locator(".drop")
        expect(drops).to_have_count(len(tool["inputs"]))
        expect(drops.locator("code.api-name")).to_have_text([i["name"] for i in tool["inputs"]])
        for i, spec in enumerate(tool["inputs"]):
            expect(drops.nth(i).locator("input[type=file]")).to_have_attribute(
                "accept", ",".join(spec["accept"])
            )
        if "steps" in tool["params_schema"]["properties"]:
            continue  # the chain: its steps' forms are their tools' (below)
        fields = page.locator(".param-set .field")
        expect(fields).to_have_count(len(tool["params_schema"]["properties"]))
        assert [f.get_attribute("data-name") for f in fields.all()] == list(
            tool["params_schema"]["properties"]
        )
        starting = (
            requests.get(changed_server.url(tool["settings"]), timeout=10).json()["params"]
            if tool["settings"] else tool["defaults"]
        )
        for name, value in starting.items():
            control = page.locator(f".param-set [name={name}]")
            if isinstance(value, bool):
                assert control.is_checked() is value, (tool["name"], name)
            elif isinstance(value, (int, float)):
                assert float(control.input_value()) == pytest.approx(value), (tool["name"], name)
            else:
                assert control.input_value() == str(value), (tool["name"], name)
        expect(page.locator(".presets .preset-name")).to_have_text(
            [p["name"] for p in tool["presets"]]
        )

    # the chain: its step tools are the chainable ones, up to max_chain_steps
    page.goto("/#/new/chain")
    chainable = [t["title"] for t in tools if t["chainable"]]
    steps = page.locator("ol.steps > li")
    expect(steps.nth(0).get_by_label("Tool", exact=True).locator("option")).to_have_text(chainable)
    add = page.get_by_role("button", name="+ Add step")
    for _ in range(listing["max_chain_steps"] - 1):
        add.click()
    expect(steps).to_have_count(listing["max_chain_steps"])
    expect(add).to_be_disabled()
    expect(page.locator(".chain .row .muted")).to_have_text(
        f"{listing['max_chain_steps']} of at most {listing['max_chain_steps']} steps"
    )


LINES: list[tuple[str, dict[str, Any]]] = [
    ("{n} matches, best score {s:.4g}", {"n": 3, "s": 0.987654}),
    ("{a#match|matches}|{b#match|matches}|{c#pose|poses}|{d#x|xs}|{e#x|xs}|{f#x|}",
     {"a": 1, "b": 0, "c": 1, "d": True, "e": None, "f": 2}),
    ("{s:.4g}|{t:.4g}|{u:.4g}|{v:.4g}", {"s": 1.0, "t": 123456.0, "u": 0.0001234, "v": 0.00001234}),
    ("{s:.3g}|{t:.4g}|{u:.2g}|{v:.1g}", {"s": 9.9996, "t": 9.99996, "u": 0.125, "v": 0.05}),
    ("{s:.0g}|{t:.6g}|{u:.4g}|{v:.4g}", {"s": 15.0, "t": 1e21, "u": -0.0, "v": 5}),
    ("{s:.2f}|{t:.2f}|{u:.0f}|{v:.0f}", {"s": 0.125, "t": 0.375, "u": 2.5, "v": 3.5}),
    ("{s:.1f}|{t:.3f}|{u:.2f}|{v:.1f}", {"s": 0.05, "t": 5, "u": True, "v": -0.04}),
    ("{s:.2f}|{t:.1f}|{u:.12f}", {"s": 1e22, "t": 1234567.25, "u": 1e-7}),
    ("{a}|{b}|{c}|{d}|{e}", {"a": "found", "b": 0.1, "c": 1.5e-5, "d": True, "e": None}),
    ("{missing} and {x:.2f} and {y}", {"x": None, "y": 42}),
    ("{w}×{h}, {c} channels, brightness {b:.1f}", {"w": 640, "h": 480, "c": 3, "b": 127.45}),
    ("{n:.2f} {s:.2g} {{n}} {n:.x} {o}", {"n": "it's", "s": [1, 2.5, None], "o": {"k": "v"}}),
]

RULES: list[tuple[Found, dict[str, Any]]] = [
    (Found("n"), {"n": 0}),
    (Found("n"), {"n": 2}),
    (Found("n"), {"n": -1}),
    (Found("n"), {"n": None}),
    (Found("n"), {}),
    (Found("n"), {"n": True}),
    (Found("n"), {"n": "3"}),
    (Found("n"), {"n": "many"}),
    (Found("n", above=0.5), {"n": 0.5}),
    (Found("n", above=0.5), {"n": 0.51}),
    (Found("r", equals="found"), {"r": "found"}),
    (Found("r", equals="found"), {"r": "not_found"}),
    (Found("r", equals="found"), {}),
    (Found("r", equals=1), {"r": 1.0}),
]


def test_the_result_line_and_found_rule_read_as_the_server_reads_them(
    changed_page: Any,
) -> None:
    """registry.js renders result_line and applies found as Summary.render and Found do."""
    page = changed_page
    page.goto("/#/tasks")
    expect(page.get_by_role("heading", level=1)).to_have_text("Tasks")
    lines, found = page.evaluate(
        """async ([lines, rules]) => {
          const registry = await import("/static/registry.js");
          return [
            lines.map(([template, data]) => registry.formatLine(template, data)),
            rules.map(([rule, data]) => registry.isFound({ found: rule }, data)),
          ];
        }""",
        [[list(case) for case in LINES], [[rule.describe(), data] for rule, data in RULES]],
    )
    assert lines == [Summary(template).render(data) for template, data in LINES]
    assert found == [rule(data) for rule, data in RULES]
