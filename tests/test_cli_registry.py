"""The `aerovision match` commands are made from the tool registry alone (no server)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Literal, get_args

import click
import pytest
from click.testing import CliRunner
from pydantic import Field

from aerovision import cli
from aerovision import client as avc
from aerovision.cli.match import RUN_OPTIONS, fields_of, tool_command
from aerovision.cli.remote import OWN_OPTIONS
from aerovision.tools import TOOLS
from aerovision.tools.spec import (
    Found,
    Inputs,
    InputSpec,
    Outputs,
    RunResult,
    Summary,
    Tool,
    ToolParams,
)


class StitchParams(ToolParams):
    overlap: int = Field(10, description="Pixels of overlap.")
    blend: bool = Field(True, description="Blend the seams.")
    projection: Literal["plane", "cylinder"] = Field("plane", description="Projection.")
    label: str = Field("", description="A label.")


def _run(params: StitchParams, inputs: Inputs, out: Outputs) -> RunResult:
    return RunResult([], {})


STITCH = Tool(
    name="stitch",
    title="Stitch",
    summary="Stitch a base image, an optional depth scan and any number of extra images.",
    docs="",
    inputs=(
        InputSpec("base", "image", "The base image."),
        InputSpec("depth", "cloud", "A depth scan.", required=False),
        InputSpec("extras", "any", "More images.", many=True),
    ),
    params=StitchParams,
    run=_run,
    found_when={"overlap": Found("overlap")},
    result_line=Summary("{overlap} px"),
)
"""A tool of three inputs (one optional, one repeated) that no server runs."""


def _match_commands() -> dict[str, click.Command]:
    group = cli.main.commands["match"]
    assert isinstance(group, click.Group)
    return dict(group.commands)


def _arguments(command: click.Command) -> list[click.Argument]:
    return [p for p in command.params if isinstance(p, click.Argument)]


def _options(command: click.Command) -> dict[str, click.Option]:
    return {
        str(p.name): p for p in command.params
        if isinstance(p, click.Option) and p.name not in RUN_OPTIONS | OWN_OPTIONS
        and p.name != "help"
    }


def test_the_match_commands_are_the_registrys_tools_in_order() -> None:
    assert list(_match_commands()) == list(TOOLS)
    listed = CliRunner().invoke(cli.main, ["match", "--help"]).stdout
    shown = listed.split("Commands:\n", 1)[1].split("\n\n", 1)[0].split("\n")
    assert [line.split()[0] for line in shown] == list(TOOLS)


@pytest.mark.parametrize("name", list(TOOLS))
def test_a_match_command_is_its_tools_inputs_and_fields(name: str, tmp_path: Path) -> None:
    tool, command = TOOLS[name], _match_commands()[name]
    arguments = _arguments(command)
    assert [a.name for a in arguments] == list(tool.input_names)
    assert [(a.required, a.nargs) for a in arguments] == [
        (spec.required, -1 if spec.many else 1) for spec in tool.inputs
    ]
    assert [a.human_readable_name for a in arguments] == [n.upper() for n in tool.input_names]
    options = _options(command)
    assert set(options) == set(fields_of(tool))
    help_text = CliRunner().invoke(cli.main, ["match", name, "--help"]).stdout
    assert tool.summary in " ".join(help_text.split())
    for spec in tool.inputs:
        assert f"  {spec.name.upper()} " in help_text
    for field_name, info in fields_of(tool).items():
        option = options[field_name]
        assert option.opts == ["--" + field_name.replace("_", "-")]
        if tool.form is not None:  # the chain's --steps FILE
            assert isinstance(option.type, click.File) and option.required == info.is_required()
        elif info.annotation is bool:
            assert option.secondary_opts == ["--no-" + field_name.replace("_", "-")]
        elif isinstance(option.type, click.Choice):
            assert list(option.type.choices) == [str(a) for a in get_args(info.annotation)]
        else:
            assert option.type.name == {int: "integer", float: "float"}.get(
                info.annotation, "text"  # type: ignore[arg-type]
            )
    given = [str(tmp_path / f"{spec.name}.png") for spec in tool.inputs]
    for path in given:
        Path(path).write_bytes(b"x")
    form_args = [a for f in fields_of(tool) if tool.form is not None for a in (f"--{f}", given[0])]
    ctx = command.make_context(name, [*given, *form_args])
    left_out = {f: ctx.params[f] for f in fields_of(tool) if tool.form is None}
    assert left_out == dict.fromkeys(left_out)  # None: the server's settings apply


def test_a_new_tool_needs_no_cli_edit(tmp_path: Path) -> None:
    command = tool_command(STITCH)
    assert [(a.name, a.required, a.nargs) for a in _arguments(command)] == [
        ("base", True, 1), ("depth", False, 1), ("extras", True, -1),
    ]
    assert set(_options(command)) == {"overlap", "blend", "projection", "label"}
    for name in ("base.png", "depth.ply", "a.png", "b.jpg"):
        (tmp_path / name).write_bytes(b"x")
    args = [str(tmp_path / n) for n in ("base.png", "depth.ply", "a.png", "b.jpg")]
    ctx = command.make_context("stitch", [*args, "--overlap", "5", "--no-blend",
                                          "--projection", "cylinder"])
    assert ctx.params["base"] == args[0] and ctx.params["depth"] == tmp_path / "depth.ply"
    assert ctx.params["extras"] == (tmp_path / "a.png", tmp_path / "b.jpg")
    assert (ctx.params["overlap"], ctx.params["blend"], ctx.params["projection"]) == (
        5, False, "cylinder"
    )
    assert ctx.params["label"] is None  # left out: the server's settings apply
    usage = CliRunner().invoke(command, ["--help"]).stdout
    assert usage.startswith("Usage: stitch [OPTIONS] BASE [DEPTH] EXTRAS...")
    assert "A depth scan. Optional." in usage and "More images. One or more files." in usage


def test_an_input_or_parameter_named_like_an_option_is_refused() -> None:
    class Clashing(ToolParams):
        timeout: float = Field(1.0, description="Clashes with --timeout.")

    with pytest.raises(RuntimeError, match="the clash tool's timeout clash"):
        tool_command(Tool(
            name="clash", title="", summary="", docs="", inputs=STITCH.inputs,
            params=Clashing, run=_run, found_when={"timeout": Found("timeout")}, result_line=Summary(""),
        ))


def _task(tool: str, status: str = "done", **fields: Any) -> avc.Task:
    return avc.Task.from_json({"uid": "u1", "status": status, "tool": tool, **fields})


def test_summaries_are_the_registrys_result_lines() -> None:
    data = {"width": 600, "height": 400, "channels": 3, "brightness": 97.25, "sharpness": 1234.5}
    assert cli.summary(_task("inspect", result_data=data)) == TOOLS[
        "inspect"
    ].result_line.render(data) == "600×400, 3 channels, brightness 97.2, sharpness 1234"
    chain = {"chain_result": "found", "completed_step": 2, "total_steps": 3}
    assert cli.summary(_task("chain", result_data=chain)) == "found (step 2/3)"
    assert cli.summary(_task("template", "error", error="could not decode")) == "could not decode"
    assert cli.summary(_task("template", "processing")) == ""
    assert cli.summary(_task("newer", result_data={"n": 1, "xs": [1]})) == "n=1"


def test_python_dash_m_aerovision() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aerovision", "match", "inspect", "--help"],
        capture_output=True, text=True, check=True,
    )
    assert result.stdout.startswith("Usage: aerovision match inspect [OPTIONS] IMAGE")
