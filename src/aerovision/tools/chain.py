"""Chains: several tools' steps on the same two inputs, until one finds something."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aerovision import safejson
from aerovision.engine.errors import InputError
from aerovision.tools.spec import (
    Found,
    InputKind,
    Inputs,
    InputSpec,
    Outputs,
    ParamsError,
    ResolveContext,
    RunResult,
    Summary,
    Tool,
    ToolParams,
)

MAX_STEPS = 10
"""The default of ``AEROVISION_MAX_CHAIN_STEPS``."""


class ChainStep(BaseModel):
    tool: str = Field(description="A chainable tool's name.")
    params: dict[str, Any] = Field(description="That tool's complete, effective parameters.")
    found_when: str | None = Field(
        None, description="Which of the tool's found rules decides (default: its first)."
    )
    inputs: dict[str, str] | None = Field(
        None,
        description="The tool's input name → the chain input it reads (default: in order).",
    )


class ChainParams(ToolParams):
    steps: list[ChainStep] = Field(description="The steps, in order, with effective params.")


class ChainForm(BaseModel):
    """The chain's own request field (besides its two inputs)."""

    model_config = ConfigDict(extra="forbid")

    steps: str = Field(
        min_length=1,
        description='JSON array of at most 10 {"tool": "template"|"feature"|"surface", '
        '"params": {...}} objects; each step\'s params are merged over that tool\'s settings. '
        'A step may add "found_when" (one of its tool\'s rules, GET /api/v1/tools: feature '
        '"good_matches" (default) or "homography") and "inputs" (which chain input each of '
        'its tool\'s inputs reads, e.g. {"query_image": "template", "train_image": "image"}).',
    )




def parse_steps(
    raw: str,
    tools: Mapping[str, Tool[Any]],
    resolve: Callable[[Tool[Any], Mapping[str, Any]], dict[str, Any]],
    max_steps: int = MAX_STEPS,
) -> list[dict[str, Any]]:
    """Validate a chain's ``steps`` JSON; each step's params resolved by ``resolve``
    (the tool's settings under the step's values).

    Returns ``[{"tool", "params"}]`` with complete, effective params. Raises
    :class:`ParamsError` whose errors name the step (``loc`` ``["body", "steps", i, …]``,
    ``msg`` starting with ``step N``).
    """

    def error(loc: tuple[Any, ...], msg: str, given: Any, kind: str = "value_error") -> ParamsError:
        return ParamsError(
            [{"type": kind, "loc": ("body", "steps", *loc), "msg": msg, "input": given}]
        )

    try:
        steps = safejson.loads(raw)
    except safejson.TooDeep as exc:
        raise error((), f"steps: {exc}", None, "json_too_deep") from None
    except ValueError as exc:
        raise error((), f"steps is not valid JSON: {exc}", raw, "json_invalid") from None
    if not isinstance(steps, list) or not steps:
        raise error((), "steps must be a non-empty JSON array of {tool, params} objects", steps)
    if len(steps) > max_steps:
        raise error(
            (),
            f"a chain has at most {max_steps} steps (AEROVISION_MAX_CHAIN_STEPS), got {len(steps)}",
            len(steps),
            "too_long",
        )
    chainable = {name: tool for name, tool in tools.items() if tool.chainable}
    parsed: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    for index, step in enumerate(steps):
        label = f"step {index + 1}"
        if not isinstance(step, dict):
            problems += error((index,), f"{label}: must be an object {{tool, params}}", step).errors
            continue
        unknown = sorted(set(step) - {"tool", "params", "found_when", "inputs"})
        if unknown:
            problems += error(
                (index, unknown[0]),
                f"{label}: unknown field {unknown[0]!r}",
                step[unknown[0]],
                "extra_forbidden",
            ).errors
            continue
        name = step.get("tool")
        tool = chainable.get(name) if isinstance(name, str) else None
        if tool is None:
            problems += error(
                (index, "tool"),
                f"{label}: tool must be one of {', '.join(chainable)}",
                name,
                "literal_error",
            ).errors
            continue
        given = step.get("params", {})
        if not isinstance(given, dict):
            problems += error((index, "params"), f"{label}: params must be an object", given).errors
            continue
        choices = _step_choices(tool, step, label, index, error)
        if isinstance(choices, ParamsError):
            problems += choices.errors
            continue
        try:
            effective = resolve(tool, given)
        except ValidationError as exc:
            for item in exc.errors():
                problems.append(
                    {
                        "type": item["type"],
                        "loc": ("body", "steps", index, "params", *item["loc"]),
                        "msg": f"{label} ({tool.name}): {item['loc'][0] if item['loc'] else ''}: "
                        f"{item['msg']}",
                        "input": item.get("input"),
                    }
                )
            continue
        parsed.append({"tool": tool.name, "params": effective, **choices})
    if problems:
        raise ParamsError(problems)
    return parsed


def _step_choices(
    tool: Tool[Any],
    step: Mapping[str, Any],
    label: str,
    index: int,
    error: Callable[..., ParamsError],
) -> dict[str, Any] | ParamsError:
    """A step's optional ``found_when`` and ``inputs``, checked against its tool; only
    the ones given are kept, so a step without them reads as it always has."""
    chosen: dict[str, Any] = {}
    if "found_when" in step:
        rule = step["found_when"]
        if not isinstance(rule, str) or rule not in tool.found_when:
            return error(
                (index, "found_when"),
                f"{label} ({tool.name}): found_when must be one of {', '.join(tool.found_when)}",
                rule,
                "literal_error",
            )
        chosen["found_when"] = rule
    if "inputs" in step:
        mapping = step["inputs"]
        wanted = f"{{{', '.join(f'{n!r}: image|template' for n in tool.input_names)}}}"
        if (
            not isinstance(mapping, dict)
            or set(mapping) != set(tool.input_names)
            or not all(isinstance(v, str) and v in CHAIN_INPUTS for v in mapping.values())
            or len(set(mapping.values())) != len(mapping)
        ):
            return error(
                (index, "inputs"),
                f"{label} ({tool.name}): inputs must map each of the tool's inputs to a "
                f"different chain input: {wanted}",
                mapping if isinstance(mapping, dict) else None,
            )
        chosen["inputs"] = {name: mapping[name] for name in tool.input_names}
    return chosen


def default_inputs(tool: Tool[Any]) -> dict[str, str]:
    """A step's inputs when it names none: the chain's, in order (the seed's mapping; a
    tool of one input reads the first)."""
    return dict(zip(tool.input_names, CHAIN_INPUTS, strict=False))


def step_kinds(
    tools: Mapping[str, Tool[Any]], steps: list[dict[str, Any]]
) -> tuple[InputKind, ...]:
    """What the chain's inputs may be: the input kinds of its steps' tools."""
    return tuple(dict.fromkeys(k for s in steps for k in tools[s["tool"]].input_kinds))


def run_chain(
    tools: Mapping[str, Tool[Any]], params: ChainParams, inputs: Inputs, out: Outputs
) -> RunResult:
    """Steps in order until one finds something; the rest are skipped.

    A step that cannot use the inputs (e.g. images given to a surface step)
    records its error and the chain goes on; the task fails only when no step
    could run at all. Each step sees the chain's two inputs under its own tool's
    input names, and writes its pictures under ``step<N>/``.
    """
    reports: list[dict[str, Any]] = []
    files: list[str] = []
    completed = 0
    found_at: int | None = None
    errors: list[str] = []
    for number, step in enumerate(params.steps, start=1):
        report: dict[str, Any] = {"step": number, "tool": step.tool, "params": step.params}
        if step.found_when is not None:
            report["found_when"] = step.found_when
        if step.inputs is not None:
            report["inputs"] = step.inputs
        reports.append(report)
        if found_at is not None:
            report["status"] = "skipped"
            continue
        tool = tools.get(step.tool)
        try:
            if tool is None:
                raise InputError(f"the {step.tool} tool is not available on this server")
            renamed = inputs.renamed(step.inputs or default_inputs(tool))
            result = tool.run(
                tool.validate_params(step.params), renamed, out.within(f"step{number}")
            )
        except InputError as exc:
            report.update(status="error", found=False, error=str(exc))
            errors.append(f"step {number} ({step.tool}): {exc}")
            continue
        completed = number
        rule = tool.found_when.get(step.found_when or tool.found_default, tool.found)
        found = rule(result.result_data)
        report.update(
            status="done",
            found=found,
            result_data=result.result_data,
            result_files=result.result_files,
        )
        files += result.result_files
        if found:
            found_at = number
    if completed == 0:
        raise InputError("no step of the chain could run: " + "; ".join(errors))
    return RunResult(
        files,
        {
            "chain_result": "found" if found_at is not None else "not_found",
            "completed_step": found_at if found_at is not None else completed,
            "total_steps": len(params.steps),
            "steps": reports,
        },
    )


CHAIN_INPUTS = ("image", "template")

INPUTS = (
    InputSpec(
        "image",
        "any",
        "First input: the image for template steps, query_image for feature steps, "
        "model_file for surface steps.",
    ),
    InputSpec(
        "template",
        "any",
        "Second input: the template for template steps, train_image for feature steps, "
        "scene_file for surface steps.",
    ),
)

DOCS = """Run `steps` in order on the same two inputs until one finds something.

    A step runs only if every earlier step found nothing (each tool's "found"
    rule: template `filtered_matches > 0`, feature `good_matches > 0`, surface
    `poses_found > 0`; a step's `"found_when"` picks another of its tool's rules,
    e.g. feature `"homography"`: a consistent homography, `found: true`). Each
    step reads the chain's inputs in order — `image` as its tool's first input
    (`query_image`, `model_file`), `template` as its second (`train_image`,
    `scene_file`) — unless its `"inputs"` maps them otherwise, e.g.
    `{"query_image": "template", "train_image": "image"}` to look for the icon
    in the photo. `result_data` holds `chain_result` (`found` or
    `not_found`), `completed_step`, `total_steps` and `steps[]`; each step
    writes its pictures under `results/<uid>/step<N>/`. A step that cannot use
    the inputs records its `error` and the chain goes on.
    """


def declare(tools: Mapping[str, Tool[Any]]) -> Tool[ChainParams]:
    """The chain tool over ``tools`` (the registry, which includes it once built)."""

    def run(params: ChainParams, inputs: Inputs, out: Outputs) -> RunResult:
        return run_chain(tools, params, inputs, out)

    def resolve(
        form: BaseModel, context: ResolveContext
    ) -> tuple[dict[str, Any], tuple[InputKind, ...]]:
        assert isinstance(form, ChainForm)
        steps = parse_steps(form.steps, context.tools, context.params_for, context.max_chain_steps)
        return {"steps": steps}, step_kinds(context.tools, steps)

    return Tool(
        name="chain",
        title="Chain of matchings",
        summary="Several steps on the same two inputs, in order, until one finds something.",
        docs=DOCS,
        inputs=INPUTS,
        params=ChainParams,
        run=run,
        found_when={"found": Found("chain_result", equals="found")},
        result_line=Summary("{chain_result} (step {completed_step}/{total_steps})"),
        has_settings=False,
        chainable=False,
        form=ChainForm,
        resolve=resolve,
    )
