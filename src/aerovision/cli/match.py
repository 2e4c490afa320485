"""``aerovision match <tool>``: one command per tool of the registry, made from its declaration.

A tool's inputs are the command's arguments, in order (a ``many`` input takes
several files, an optional one may be left out). Each field of its parameters
is an option (``--threshold``, ``--use-grayscale/--no-use-grayscale``, a
Literal's values as a choice); a tool with a request form of its own (the
chain's ``steps``) has one option per field of that form instead, naming a
file of JSON ('-': standard input). Nothing here names a tool: adding one to
:mod:`aerovision.tools` adds its command.
"""

from __future__ import annotations

import asyncio
import glob
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any, Literal, get_args, get_origin

import click
from pydantic.fields import FieldInfo

from aerovision import client as avc
from aerovision.cli.exits import EXIT_CODES_HELP, EXIT_FAILED, EXIT_OK
from aerovision.cli.progress import ProgressBar, stderr_is_terminal
from aerovision.cli.remote import (
    OWN_OPTIONS,
    Remote,
    print_task,
    remote_command,
    wait_and_download,
)
from aerovision.cli.render import batch_summary
from aerovision.tools import TOOLS
from aerovision.tools.spec import ACCEPT, InputKind, InputSpec, Tool

Decorator = Callable[[Any], Any]

SUFFIXES: dict[InputKind, frozenset[str]] = {kind: frozenset(s) for kind, s in ACCEPT.items()}
"""The files a --batch directory contributes, by the kind of the tool's first input."""

RUN_OPTIONS = frozenset({"wait", "download", "timeout", "batch", "concurrency"})
"""The options every match command has (no tool input or parameter may take these names)."""


class ToolCommand(click.Command):
    """A match command: its help lists the tool's inputs (arguments have no help of
    their own in click)."""

    def __init__(self, *args: Any, inputs: tuple[InputSpec, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inputs = inputs

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_help_text(ctx, formatter)
        rows = [
            (spec.name.upper(), spec.help + ("" if spec.required else " Optional.")
             + (" One or more files." if spec.many else ""))
            for spec in self.inputs
        ]
        if rows:
            with formatter.section("Inputs"):
                formatter.write_dl(rows)


class ToolGroup(click.Group):
    """Lists its commands in the registry's order, not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=ToolGroup, epilog=EXIT_CODES_HELP)
def match() -> None:
    """Submit a task of one tool to a server; --wait for its result, --download its files.

    The server is --server or AEROVISION_URL (default http://localhost:8888).
    """


def fields_of(tool: Tool[Any]) -> dict[str, FieldInfo]:
    """What the tool's options are made from: its own form's fields, else its params'."""
    return dict((tool.form or tool.params).model_fields)


def input_argument(spec: InputSpec, first: bool) -> Decorator:
    """The argument of one input. The first is plain text (with --batch: a directory or a
    glob), the others must be existing files."""
    kind: click.ParamType[Any] = (
        click.STRING if first else click.Path(exists=True, dir_okay=False, path_type=Path)
    )
    return click.argument(
        spec.name, type=kind, nargs=-1 if spec.many else 1, required=spec.required
    )


def param_option(tool: Tool[Any], name: str, info: FieldInfo) -> Decorator:
    """One option for a parameter. Ranges are not checked here: the server's 422 says
    what is wrong (exit code 3)."""
    flag = "--" + name.replace("_", "-")
    default = (
        f"the server's {tool.name} settings" if tool.has_settings else repr(info.get_default())
    )
    help_text = f"{info.description}  [default: {default}]"
    annotation = info.annotation
    if annotation is bool:
        decl = f"{flag}/--no-{name.replace('_', '-')}"
        return click.option(decl, name, default=None, help=help_text)
    if get_origin(annotation) is Literal:
        choices = click.Choice([str(a) for a in get_args(annotation)])
        return click.option(flag, name, type=choices, help=help_text)
    kind: type = int if annotation is int else float if annotation is float else str
    return click.option(flag, name, type=kind, help=help_text)


def form_option(name: str, info: FieldInfo) -> Decorator:
    """One option for a field of a tool's own form: a file holding its JSON text."""
    return click.option(
        "--" + name.replace("_", "-"), name, type=click.File("r"), metavar="FILE",
        required=info.is_required(),
        help=f"{info.description}  FILE holds it ('-': standard input).",
    )


def read_json(source: IO[str], name: str) -> str:
    """The text of a form field's file, refused (exit 2) unless it is JSON."""
    text = source.read()
    try:
        json.loads(text)
    except ValueError as exc:
        hint = "--" + name.replace("_", "-")
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=hint) from None
    return text


def batch_inputs(pattern: str, suffixes: frozenset[str]) -> list[Path]:
    """The files of a --batch: a directory's files with one of ``suffixes``, or a glob's."""
    folder = Path(pattern)
    if folder.is_dir():
        found = [
            p for p in folder.iterdir()
            if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")
        ]
    else:
        found = [Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file()]
    return sorted(found)


def _given(value: Any) -> list[Any]:
    """An argument's value(s) as a list: none, one, or a ``many`` input's several."""
    if value is None:
        return []
    return list(value) if isinstance(value, tuple) else [value]


def _inputs(tool: Tool[Any], files: Mapping[str, list[Any]]) -> dict[str, Any]:
    """What ``client.match`` takes for the inputs given: a path each, a list for ``many``."""
    return {
        spec.name: [Path(v) for v in files[spec.name]] if spec.many else Path(files[spec.name][0])
        for spec in tool.inputs if files.get(spec.name)
    }


def _batch_files(first: InputSpec | None, patterns: list[str]) -> list[Path]:
    """The files of a --batch over the first input (directories and globs), exit 2 if none."""
    if first is None:
        raise click.UsageError("--batch runs over the first input; this tool has none")
    suffixes = SUFFIXES[first.kind]
    found = sorted({p for pattern in patterns for p in batch_inputs(pattern, suffixes)})
    if not found:
        shown = " ".join(patterns) or "nothing"
        raise click.BadParameter(f"no files match {shown!r}", param_hint=first.name.upper())
    return found


def _check_files(first: InputSpec | None, paths: list[str]) -> None:
    """The first input's paths must be files (the others are checked by click)."""
    if first is None:
        return
    for path in paths:
        if not Path(path).is_file():
            raise click.BadParameter(f"{path!r} is not a file", param_hint=first.name.upper())


def _check_names(tool: Tool[Any], fields: Iterable[str]) -> None:
    names = [*tool.input_names, *fields]
    clashes = sorted(
        {n for n in names if names.count(n) > 1 or n in RUN_OPTIONS | OWN_OPTIONS}
    )
    if clashes:
        raise RuntimeError(
            f"the {tool.name} tool's {', '.join(clashes)} clash with another input, "
            "parameter or option of its match command"
        )


def tool_command(tool: Tool[Any]) -> click.Command:
    """``aerovision match <tool.name>``, made from the tool's declaration alone."""
    fields = fields_of(tool)
    _check_names(tool, fields)
    first = tool.inputs[0] if tool.inputs else None

    def command(
        remote: Remote, as_json: bool, wait: bool, download: Path | None, timeout: float,
        batch: bool, concurrency: int, **values: Any,
    ) -> int:
        files = {spec.name: _given(values.pop(spec.name)) for spec in tool.inputs}
        given = {k: v for k, v in values.items() if v is not None}
        if tool.form is not None:
            given = {k: read_json(v, k) for k, v in given.items()}
        if batch:
            found = _batch_files(first, files.pop(first.name) if first else [])
            return asyncio.run(run_batch(
                remote, tool.name, found, {**_inputs(tool, files), **given},
                concurrency=concurrency, timeout=timeout, download=download,
            ))
        _check_files(first, files[first.name] if first else [])
        return run_single(
            remote, tool.name, {**_inputs(tool, files), **given},
            wait=wait, download=download, timeout=timeout, as_json=as_json,
        )

    options: list[Decorator] = (
        [form_option(name, info) for name, info in fields.items()] if tool.form is not None
        else [param_option(tool, name, info) for name, info in fields.items()]
    )
    batch_help = (
        f"{first.name.upper()} is a directory or a glob pattern: one task per file (the "
        "other inputs the same for all), one JSON line per input, exit 1 if any failed."
        if first is not None else "Not for a tool without inputs."
    )
    decorators: list[Decorator] = [
        click.command(name=tool.name, cls=ToolCommand, inputs=tool.inputs, help=tool.summary,
                      short_help=tool.title, epilog=EXIT_CODES_HELP),
        *(input_argument(spec, spec is first) for spec in tool.inputs),
        *options,
        click.option("--wait", is_flag=True, help="Wait for the task to end; show its result."),
        click.option(
            "--download", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
            help="Wait, then save the result files into DIR (with --batch: DIR/<input name>/).",
        ),
        click.option(
            "--timeout", type=click.FloatRange(min=0), default=avc.DEFAULT_WAIT_S,
            show_default=True, help="Seconds to wait for a task to end.",
        ),
        click.option("--batch", is_flag=True, help=batch_help),
        click.option(
            "--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
            help="With --batch: tasks submitted or waited on at once.",
        ),
        remote_command,
    ]
    made: Any = command
    for decorator in reversed(decorators):
        made = decorator(made)
    assert isinstance(made, click.Command)
    return made


def run_single(
    remote: Remote, tool: str, values: Mapping[str, Any], *,
    wait: bool, download: Path | None, timeout: float, as_json: bool,
) -> int:
    """Submit one task (inputs and fields by name); wait and download if asked."""
    downloaded: list[Path] = []
    with remote.client() as client:
        task = client.match(tool, **values)
        if wait or download is not None:
            task, downloaded = wait_and_download(client, task, timeout, download)
    return print_task(task, downloaded, as_json)


async def run_batch(
    remote: Remote, tool: str, inputs: list[Path], values: Mapping[str, Any], *,
    concurrency: int, timeout: float, download: Path | None,
) -> int:
    """One task per file of ``inputs`` (the tool's first input), ``values`` the same for
    all; one JSON line per input as each ends, a progress bar on a terminal."""
    bar = ProgressBar(len(inputs), enabled=stderr_is_terminal())
    async with remote.async_client() as client:
        await client.tools()  # no server: exit 5 now rather than one error per input
        bar.draw()
        results = client.match_many(
            tool, inputs, concurrency=concurrency, timeout=timeout, download_dir=download,
            **values,
        )
        async for result in results:
            bar.clear()
            click.echo(json.dumps({**result.to_json(), "summary": batch_summary(result)}))
            bar.add(result.ok)
            bar.draw()
    bar.clear()
    click.echo(
        f"{bar.total} inputs: {bar.done} done, {bar.failed} error ({bar.elapsed:.1f} s)",
        err=True,
    )
    return EXIT_FAILED if bar.failed else EXIT_OK


for _tool in TOOLS.values():
    match.add_command(tool_command(_tool))
