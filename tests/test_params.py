"""Tool parameters: partial models (requests, settings, chain steps), merging, the
built-in defaults, and the chain's step messages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import ValidationError

from aerovision import params as tool_params
from aerovision.params import check_given, defaults, merge, partial_model
from aerovision.tools import TOOLS
from aerovision.tools.chain import parse_steps
from aerovision.tools.spec import ParamsError, Tool
from aerovision.tools.surface import SurfaceParams
from aerovision.tools.template import TemplateParams

SPEC_DEFAULTS: dict[str, dict[str, Any]] = {
    "template": {
        "method": "TM_CCOEFF_NORMED", "threshold": 0.8, "max_results": 20, "use_grayscale": True,
    },
    "feature": {
        "detector": "SIFT", "matcher": "FLANN", "ratio_threshold": 0.75, "max_matches": 200,
    },
    "surface": {
        "relative_sampling_step": 0.05, "relative_distance_step": 0.05, "num_angles": 30,
        "use_icp": True, "icp_tolerance": 0.005, "icp_iterations": 100,
    },
    "inspect": {"bins": 32},
}
"""SPEC.md's parameter tables (and the inspect tool's declaration)."""

FORM = partial_model(TemplateParams)
JSON = partial_model(TemplateParams, strict=True)


def _errors(model: type[Any], values: Mapping[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(dict(values))
    return [(tuple(e["loc"]), e["msg"]) for e in refused.value.errors()]


def test_defaults_are_the_spec_table() -> None:
    with_settings = [name for name, tool in TOOLS.items() if tool.has_settings]
    assert with_settings == list(SPEC_DEFAULTS)
    for tool, expected in SPEC_DEFAULTS.items():
        assert defaults(tool) == expected


@pytest.mark.parametrize("model", [FORM, JSON], ids=["form", "json"])
def test_a_field_left_out_is_none_but_null_is_refused(model: type[Any]) -> None:
    assert model.model_validate({}).model_dump() == dict.fromkeys(SPEC_DEFAULTS["template"])
    assert _errors(model, {"threshold": None}) == [
        (("threshold",), "Value error, must not be null; leave the field out to keep it")
    ]


@pytest.mark.parametrize("model", [FORM, JSON], ids=["form", "json"])
def test_a_whole_number_written_as_a_float_is_an_int(model: type[Any]) -> None:
    given = model.model_validate({"max_results": 590.0})
    assert given.max_results == 590 and type(given.max_results) is int
    assert _errors(model, {"max_results": 590.5})[0][0] == ("max_results",)
    surface = partial_model(SurfaceParams, strict=model is JSON).model_validate(
        {"num_angles": 30.0, "icp_iterations": 100.0})
    given_values = surface.model_dump(exclude_none=True)
    assert given_values == {"num_angles": 30, "icp_iterations": 100}
    assert {type(v) for v in given_values.values()} == {int}


@pytest.mark.parametrize("model", [FORM, JSON], ids=["form", "json"])
def test_ranges_literals_and_unknown_fields_still_apply(model: type[Any]) -> None:
    assert _errors(model, {"threshold": 1.5}) == [
        (("threshold",), "Input should be less than or equal to 1")]
    assert _errors(model, {"max_results": 0}) == [
        (("max_results",), "Input should be greater than or equal to 1")]
    assert _errors(model, {"colour": "red"}) == [(("colour",), "Extra inputs are not permitted")]
    [(where, message)] = _errors(model, {"method": "TM_FASTEST"})
    assert where == ("method",) and "'TM_CCOEFF_NORMED'" in message


def test_json_values_must_already_have_their_type() -> None:
    for values, expected in (
        ({"use_grayscale": "true"}, "Input should be a valid boolean"),
        ({"use_grayscale": 1}, "Input should be a valid boolean"),
        ({"threshold": "0.9"}, "Input should be a valid number"),
        ({"max_results": "20"}, "Input should be a valid integer"),
        ({"max_results": True}, "Input should be a valid integer"),
    ):
        assert [m for _, m in _errors(JSON, values)] == [expected], values
    as_float = JSON.model_validate({"threshold": 1}).model_dump(exclude_none=True)
    assert as_float == {"threshold": 1.0}  # an int is a fine float


def test_form_fields_are_text_and_are_parsed() -> None:
    parsed = FORM.model_validate({"use_grayscale": "false", "threshold": "0.9",
                                  "max_results": "5"})
    assert parsed.model_dump(exclude_none=True) == {
        "use_grayscale": False, "threshold": 0.9, "max_results": 5}


def test_the_partial_schema_has_no_defaults_and_no_null() -> None:
    for model in (FORM, JSON):
        properties = model.model_json_schema()["properties"]
        assert properties["threshold"] == {
            "description": "Minimum score of a match, 0.1–1.0; higher is stricter.",
            "maximum": 1.0, "minimum": 0.1, "title": "Threshold", "type": "number",
        }
        assert all("default" not in p and "anyOf" not in p for p in properties.values())
    assert "required" not in JSON.model_json_schema()


def test_merge_puts_the_values_given_over_the_current_ones() -> None:
    current = {**SPEC_DEFAULTS["template"], "threshold": 0.5, "retired_field": 1}
    merged = merge("template", current, {"threshold": None, "max_results": 3})
    assert merged.model_dump() == {**SPEC_DEFAULTS["template"], "threshold": 0.5,
                                   "max_results": 3}
    assert merge("feature", {}, {}).model_dump() == SPEC_DEFAULTS["feature"]
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        merge("template", current, {"threshold": 3})


def test_check_given_is_the_strict_partial_model() -> None:
    check_given("template", {"threshold": 0.9})
    check_given("inspect", {})
    with pytest.raises(ValidationError, match="Input should be a valid number"):
        check_given("template", {"threshold": "0.9"})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        check_given("inspect", {"threshold": 0.9})


def _resolve(tool: Tool[Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """What the API does for a step: the given values checked, merged over the settings
    (here the defaults)."""
    tool_params.check_given(tool.name, given)
    return tool_params.merge(tool.name, defaults(tool.name), given).model_dump()


def _step_errors(raw: str, max_steps: int = 10) -> list[tuple[tuple[Any, ...], str, str]]:
    with pytest.raises(ParamsError) as refused:
        parse_steps(raw, TOOLS, _resolve, max_steps)
    return [(tuple(e["loc"]), e["msg"], e["type"]) for e in refused.value.errors]


def test_steps_come_back_with_complete_effective_params() -> None:
    raw = json.dumps([{"tool": "template", "params": {"threshold": 0.95}},
                      {"tool": "feature", "params": {"max_matches": 590.0}},
                      {"tool": "surface"}])
    assert parse_steps(raw, TOOLS, _resolve) == [
        {"tool": "template", "params": {**SPEC_DEFAULTS["template"], "threshold": 0.95}},
        {"tool": "feature", "params": {**SPEC_DEFAULTS["feature"], "max_matches": 590}},
        {"tool": "surface", "params": SPEC_DEFAULTS["surface"]},
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("nope", [((), "steps is not valid JSON: Expecting value: line 1 column 1 (char 0)",
                   "json_invalid")]),
        ('{"tool": "template"}',
         [((), "steps must be a non-empty JSON array of {tool, params} objects", "value_error")]),
        ("[]",
         [((), "steps must be a non-empty JSON array of {tool, params} objects", "value_error")]),
        ("[" * 40 + "]" * 40,
         [((), "steps: JSON nests 40 levels deep; at most 32 are accepted", "json_too_deep")]),
        ("[1]", [((0,), "step 1: must be an object {tool, params}", "value_error")]),
        ('[{"tool": "template", "extra": 1}]',
         [((0, "extra"), "step 1: unknown field 'extra'", "extra_forbidden")]),
        ('[{"tool": "inspect"}]',
         [((0, "tool"), "step 1: tool must be one of template, feature, surface, search",
           "literal_error")]),
        ('[{"tool": "chain"}]',
         [((0, "tool"), "step 1: tool must be one of template, feature, surface, search",
           "literal_error")]),
        ('[{"tool": "template", "params": []}]',
         [((0, "params"), "step 1: params must be an object", "value_error")]),
        ('[{"tool": "template", "params": {"threshold": null}}]',
         [((0, "params", "threshold"), "step 1 (template): threshold: Value error, must not be "
           "null; leave the field out to keep it", "value_error")]),
        ('[{"tool": "surface"}, 7, {"tool": "template", "params": {"threshold": "0.5", "x": 1}}]',
         [((1,), "step 2: must be an object {tool, params}", "value_error"),
          ((2, "params", "threshold"), "step 3 (template): threshold: Input should be a valid "
           "number", "float_type"),
          ((2, "params", "x"), "step 3 (template): x: Extra inputs are not permitted",
           "extra_forbidden")]),
    ],
    ids=["not-json", "not-a-list", "empty", "too-deep", "not-an-object", "unknown-field",
         "not-chainable", "chain-in-chain", "params-not-object", "null", "every-step-named"],
)
def test_step_errors_name_the_step_and_the_field(
    raw: str, expected: list[tuple[tuple[Any, ...], str, str]]
) -> None:
    assert _step_errors(raw) == [
        (("body", "steps", *loc), msg, kind) for loc, msg, kind in expected
    ]


def test_the_step_limit_names_its_setting() -> None:
    raw = json.dumps([{"tool": "template"}] * 4)
    assert _step_errors(raw, max_steps=3) == [(
        ("body", "steps"), "a chain has at most 3 steps (AEROVISION_MAX_CHAIN_STEPS), got 4",
        "too_long")]
    assert len(parse_steps(raw, TOOLS, _resolve, max_steps=4)) == 4
