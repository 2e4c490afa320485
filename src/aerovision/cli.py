"""The ``aerovision`` command."""

from __future__ import annotations

import asyncio
import functools
import glob
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal, cast, get_args, get_origin

import click

from aerovision import __version__
from aerovision import client as avc
from aerovision.config import Settings
from aerovision.tools import TOOLS


def _environment_help() -> str:
    """Every AEROVISION_* variable with its default, for --help."""
    lines = ["\b", "Environment variables (every setting; options above win over them):"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=False)
        shown = "computed" if field.default_factory is not None else repr(default)
        lines.append(f"  AEROVISION_{name.upper()} (default {shown})")
        lines.append(f"      {field.description}")
    return "\n".join(lines)


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the command-line options given over them."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="aerovision")
def main() -> None:
    """AeroVision: image and 3D surface matching service.

    Every option can also be set by an AEROVISION_<NAME> environment variable
    (e.g. AEROVISION_DATA_DIR); an option given on the command line wins.
    """


DATA_DIR_OPTION = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the database and files.  [env AEROVISION_DATA_DIR; default ./data]",
)
LOG_LEVEL_OPTION = click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Logging level.  [env AEROVISION_LOG_LEVEL; default info]",
)


@main.command(epilog=_environment_help())
@click.option("--host", help="Address to listen on.  [env AEROVISION_HOST; default 0.0.0.0]")
@click.option("--port", type=int, help="Port to listen on.  [env AEROVISION_PORT; default 8888]")
@DATA_DIR_OPTION
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    help="Worker processes.  [env AEROVISION_WORKERS; default: one per CPU]",
)
@LOG_LEVEL_OPTION
def serve(**options: Any) -> None:
    """Run the API, the workers and the reaper in one command (embedded default).

    Tasks, settings and the queue live in a SQLite database in the data
    directory, files under it. Ctrl-C stops everything cleanly; running serve
    again on the same data directory picks up the queued tasks.
    """
    from aerovision.runtime import run_serve

    run_serve(_settings(**options))


@main.command(epilog=_environment_help())
@click.option("--host", help="Address to listen on.  [env AEROVISION_HOST; default 0.0.0.0]")
@click.option("--port", type=int, help="Port to listen on.  [env AEROVISION_PORT; default 8888]")
@DATA_DIR_OPTION
@LOG_LEVEL_OPTION
def api(**options: Any) -> None:
    """Run the HTTP API alone (scale-out), with the reaper.

    Workers and the notifier run elsewhere (`aerovision worker`,
    `aerovision notifier`) against the same database, queue and storage. Run
    `aerovision migrate` once before.
    """
    from aerovision.runtime import run

    run(_settings(**options), api=True, workers=0, reaper=True, notifier=False)


@main.command(epilog=_environment_help())
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Worker processes on this machine.  [default: one per CPU]",
)
@DATA_DIR_OPTION
@LOG_LEVEL_OPTION
def worker(concurrency: int | None, **options: Any) -> None:
    """Run worker processes that take tasks from the queue (scale-out), with the reaper.

    SIGTERM or Ctrl-C: each worker finishes its task (or gives it back to the
    queue after AEROVISION_SHUTDOWN_GRACE_S) and exits.
    """
    from aerovision.runtime import run

    settings = _settings(**options)
    count = concurrency or settings.workers or 1
    run(settings, api=False, workers=count, reaper=True, notifier=False)


@main.command(epilog=_environment_help())
@DATA_DIR_OPTION
@LOG_LEVEL_OPTION
def notifier(**options: Any) -> None:
    """Send webhook deliveries from the outbox (scale-out)."""
    from aerovision.runtime import run

    run(_settings(**options), api=False, workers=0, reaper=False, notifier=True)


@main.command()
@DATA_DIR_OPTION
def migrate(**options: Any) -> None:
    """Create or upgrade the database schema and the storage bucket (serve does this on start)."""
    from aerovision.runtime import prepare

    settings = _settings(**options)
    prepare(settings)
    click.echo(f"database schema is up to date: {settings.db_url}")


@main.command()
@click.argument("what", type=click.Choice(["database", "worker"]))
def check(what: str) -> None:
    """Health check for containers: exit 0 when WHAT is healthy, 1 otherwise.

    database: the database and the queue answer. worker: a worker process on
    this host reported in during the last 30 s.
    """
    from aerovision.runtime import check as run_check

    healthy, message = run_check(_settings(), what)
    click.echo(message)
    raise SystemExit(0 if healthy else 1)


# ----------------------------------------------------------------------------------------
# Client commands: match, tasks, settings, webhooks (talk HTTP to a running server)

EXIT_OK = 0
"""Everything asked for was done."""
EXIT_FAILED = 1
"""A task ended in ``error``; in a batch, at least one input failed (partial failure)."""
EXIT_USAGE = 2
"""Bad command line (click's own code): unknown option, missing file, malformed KEY=VALUE."""
EXIT_REFUSED = 3
"""The server refused the request: 422 (invalid parameter or file), 413 (too large), other 4xx."""
EXIT_NOT_FOUND = 4
"""404: unknown task, webhook or file, or a tool this server does not offer."""
EXIT_UNREACHABLE = 5
"""No answer from the server (connection refused, network timeout), or a 5xx."""
EXIT_TIMEOUT = 6
"""The task did not end within --timeout (it keeps running on the server)."""

EXIT_INTERRUPTED = 130
"""Ctrl-C (submitted tasks keep running on the server)."""

EXIT_CODES_HELP = """\b
Exit codes of match, tasks, settings and webhooks:
  0  done
  1  a task ended in error; in a batch, at least one input failed
  2  bad command line
  3  the server refused the request (422 invalid parameter or file, 413 too large)
  4  not found (404: unknown task or webhook, tool not offered by the server)
  5  cannot reach the server, or it failed (5xx)
  6  --timeout passed before the task ended (it keeps running)
  130  interrupted by Ctrl-C (submitted tasks keep running)"""

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
PLY_SUFFIXES = frozenset({".ply"})


def exit_code(exc: avc.AeroVisionError) -> int:
    """The documented exit code for a client error."""
    if isinstance(exc, avc.TaskFailed):
        return EXIT_FAILED
    if isinstance(exc, avc.WaitTimeout):
        return EXIT_TIMEOUT
    if isinstance(exc, avc.NotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, (avc.TransportError, avc.ServerError)):
        return EXIT_UNREACHABLE
    if isinstance(exc, avc.APIError):
        return EXIT_REFUSED
    return EXIT_UNREACHABLE  # an answer the client could not read


def _error_lines(exc: avc.AeroVisionError) -> list[str]:
    if isinstance(exc, avc.APIError) and exc.errors:
        lines = [f"error: the server refused the request ({exc.status_code}):"]
        for item in exc.errors:
            got = item.get("input")
            shown = f" (got {got!r})" if got is not None and not isinstance(got, dict) else ""
            lines.append(f"  {avc.describe_error(item)}{shown}")
        return lines
    if isinstance(exc, avc.APIError):
        return [f"error: {exc.message} ({exc.status_code})"]
    if isinstance(exc, avc.WaitTimeout):
        return [f"error: {exc}; it keeps running: aerovision tasks show {exc.task.uid} --wait"]
    return [f"error: {exc}"]


def _print_error(exc: avc.AeroVisionError, as_json: bool) -> None:
    if as_json:
        body: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
        if isinstance(exc, avc.APIError):
            body.update(status_code=exc.status_code, message=exc.message, errors=exc.errors)
        click.echo(json.dumps({"error": body}), err=True)
    else:
        click.echo("\n".join(_error_lines(exc)), err=True)


@dataclass(frozen=True)
class Remote:
    """Where the server is, from --server/AEROVISION_URL and --api-key/AEROVISION_API_KEY."""

    server: str
    api_key: str | None

    def client(self) -> avc.Client:
        return avc.Client(self.server, api_key=self.api_key)

    def async_client(self) -> avc.AsyncClient:
        return avc.AsyncClient(self.server, api_key=self.api_key)


CommandFn = Callable[..., int | None]


def remote_command(fn: CommandFn) -> Callable[..., None]:
    """Add --server, --api-key and --json; call ``fn(remote, as_json=..., ...)`` and turn
    its return value or client error into the documented exit code."""

    @click.option(
        "--server", envvar="AEROVISION_URL", default=avc.DEFAULT_URL, show_default=True,
        metavar="URL", help="The AeroVision server.  [env AEROVISION_URL]",
    )
    @click.option(
        "--api-key", envvar="AEROVISION_API_KEY", metavar="KEY",
        help="Sent as Authorization: Bearer KEY.  [env AEROVISION_API_KEY]",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts), not text.")
    @functools.wraps(fn)
    def command(server: str, api_key: str | None, as_json: bool, **kwargs: Any) -> None:
        try:
            code = fn(Remote(server, api_key), as_json=as_json, **kwargs)
        except avc.AeroVisionError as exc:
            _print_error(exc, as_json)
            code = exit_code(exc)
        except KeyboardInterrupt:
            click.echo("\ninterrupted (submitted tasks keep running on the server)", err=True)
            code = EXIT_INTERRUPTED
        if code:
            click.get_current_context().exit(code)

    return command


# -- text output


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return f"[{len(value)} items]" if isinstance(value, list) else "{…}"
    return str(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A compact text table: numbers right-aligned, the rest left-aligned."""
    cells = [[_fmt(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in rows)
        for i in range(len(headers))
    ]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in cells)])


def _inline(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in values.items())


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def summary(task: avc.Task) -> str:
    """One line about a task's outcome, for lists."""
    if task.status == "error":
        return (task.error or "error")[:80]
    data = task.result_data
    if task.status != "done":
        return ""
    if "chain_result" in data:
        step = f"{data.get('completed_step')}/{data.get('total_steps')}"
        return f"{data['chain_result']} (step {step})"
    if "filtered_matches" in data:
        return f"{data['filtered_matches']} matches, best score {_fmt(data.get('best_score'))}"
    if "good_matches" in data:
        return f"{data['good_matches']} good matches"
    if "poses_found" in data:
        return f"{data['poses_found']} poses, icp residual {_fmt(data.get('icp_residual'))}"
    return _inline({k: v for k, v in data.items() if not isinstance(v, (list, dict))})


def render_task(task: avc.Task, downloaded: Sequence[Path] = ()) -> str:
    """A task for people: fields, then the result's tables (matches, pose, chain steps)."""
    rows = [
        ("uid", task.uid), ("status", task.status), ("tool", task.tool),
        ("created", _when(task.created_at)), ("params", _inline(task.params)),
    ]
    if task.error:
        rows.append(("error", task.error))
    scalars = {k: v for k, v in task.result_data.items() if not isinstance(v, (list, dict))}
    if scalars:
        rows.append(("result", _inline(scalars)))
    rows += [("file", f) for f in task.result_files]
    rows += [("saved", str(p)) for p in downloaded]
    text = "\n".join(f"{k:<8} {v}" for k, v in rows)
    data = task.result_data
    if data.get("matches"):
        matches = [
            [i, m.get("x"), m.get("y"), m.get("w"), m.get("h"), m.get("score")]
            for i, m in enumerate(data["matches"], 1)
        ]
        text += "\n\n" + _table(["#", "x", "y", "w", "h", "score"], matches)
    if data.get("pose"):
        text += "\n\npose (model → scene)\n" + _table(
            ["", "", "", ""], [[float(v) for v in row] for row in data["pose"]]
        ).split("\n", 1)[1]
    if data.get("steps"):
        steps = [
            [s.get("step"), s.get("tool"), s.get("status"), s.get("found"),
             s.get("error") or _inline({
                 k: v for k, v in (s.get("result_data") or {}).items()
                 if not isinstance(v, (list, dict))
             })]
            for s in data["steps"]
        ]
        text += "\n\n" + _table(["step", "tool", "status", "found", "result"], steps)
    return text


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


class Spinner:
    """Shows ``| <uid> processing 3.2s`` on a terminal while waiting; nothing otherwise."""

    FRAMES = "|/-\\"

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.monotonic()
        self.turn = 0

    def __call__(self, task: avc.Task) -> None:
        if self.enabled and not task.finished:
            frame = self.FRAMES[self.turn % len(self.FRAMES)]
            self.turn += 1
            elapsed = time.monotonic() - self.started
            click.echo(f"\r{frame} {task.uid} {task.status} {elapsed:.1f}s ", nl=False, err=True)

    def clear(self) -> None:
        if self.enabled and self.turn:
            click.echo("\r\033[K", nl=False, err=True)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    if minutes >= 60:
        return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
    return f"{minutes:02d}:{secs:02d}"


def progress_line(done: int, failed: int, total: int, elapsed: float, width: int = 24) -> str:
    """``[######------] 12/50  done 11  error 1  ETA 00:07``."""
    finished = done + failed
    filled = width * finished // total if total else width
    eta = elapsed / finished * (total - finished) if finished else None
    return (
        f"[{'#' * filled}{'-' * (width - filled)}] {finished}/{total}  done {done}  "
        f"error {failed}  ETA {_clock(eta)}"
    )


class ProgressBar:
    """A one-line progress bar on stderr, redrawn in place; silent when not a terminal."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self.done = self.failed = 0
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def draw(self) -> None:
        if self.enabled:
            line = progress_line(self.done, self.failed, self.total, self.elapsed)
            click.echo(f"\r{line}", nl=False, err=True)

    def clear(self) -> None:
        if self.enabled:
            click.echo("\r\033[K", nl=False, err=True)

    def add(self, ok: bool) -> None:
        if ok:
            self.done += 1
        else:
            self.failed += 1


# -- match


def _param_options(tool: str) -> list[Callable[[Any], Any]]:
    """One click option per parameter of ``tool`` (from params.py, the one place they live).

    Ranges are not checked here: the server's 422 says what is wrong (exit code 3).
    """
    options = []
    for name, info in TOOLS[tool].params.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = f"{info.description}  [default: the server's {tool} settings]"
        annotation = info.annotation
        if annotation is bool:
            decl = f"{flag}/--no-{name.replace('_', '-')}"
            options.append(click.option(decl, name, default=None, help=help_text))
        elif get_origin(annotation) is Literal:
            choices = click.Choice([str(a) for a in get_args(annotation)])
            options.append(click.option(flag, name, type=choices, help=help_text))
        else:
            kind = annotation if annotation in (int, float) else str
            options.append(click.option(flag, name, type=kind, help=help_text))
    return options


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


def _run_single(
    remote: Remote, tool: str, first: Path, second: Path, params: dict[str, Any], *,
    wait: bool, download: Path | None, timeout: float, as_json: bool,
) -> int:
    downloaded: list[Path] = []
    with remote.client() as client:
        task = client.match(cast(avc.Tool, tool), first, second, **params)
        if wait or download is not None:
            task, downloaded = _wait_and_download(client, task, timeout, download)
    return _print_task(task, downloaded, as_json)


def _wait_and_download(
    client: avc.Client, task: avc.Task, timeout: float, download: Path | None
) -> tuple[avc.Task, list[Path]]:
    spinner = Spinner(enabled=_stderr_is_terminal())
    try:
        task = client.wait(task, timeout, raise_on_error=False, on_update=spinner, poll_max=1.0)
    finally:
        spinner.clear()
    files = client.download(task, download) if download and task.status == "done" else []
    return task, files


def _print_task(task: avc.Task, downloaded: Sequence[Path], as_json: bool) -> int:
    if as_json:
        shown = dict(task.raw)
        if downloaded:
            shown["downloaded"] = [str(p) for p in downloaded]
        _echo_json(shown)
    else:
        click.echo(render_task(task, downloaded))
    if task.status == "error":
        if not as_json:
            click.echo(f"error: task {task.uid} ended in error: {task.error}", err=True)
        return EXIT_FAILED
    return EXIT_OK


async def _run_batch(
    remote: Remote, tool: str, inputs: list[Path], second: Path, params: dict[str, Any], *,
    concurrency: int, timeout: float, download: Path | None,
) -> int:
    bar = ProgressBar(len(inputs), enabled=_stderr_is_terminal())
    async with remote.async_client() as client:
        await client.version()  # no server: exit 5 now rather than one error per input
        bar.draw()
        results = client.match_many(
            cast(avc.Tool, tool), inputs, second, concurrency=concurrency, timeout=timeout,
            download_dir=download, **params,
        )
        async for result in results:
            bar.clear()
            click.echo(json.dumps(result.to_json()))
            bar.add(result.ok)
            bar.draw()
    bar.clear()
    click.echo(
        f"{bar.total} inputs: {bar.done} done, {bar.failed} error "
        f"({bar.elapsed:.1f} s)",
        err=True,
    )
    return EXIT_FAILED if bar.failed else EXIT_OK


@main.group(epilog=EXIT_CODES_HELP)
def match() -> None:
    """Submit a matching task to a server; --wait for its result, --download its files.

    The server is --server or AEROVISION_URL (default http://localhost:8888).
    """


def _match_command(tool: str) -> None:
    first_field, second_field = avc.TOOL_INPUTS[tool]
    suffixes = PLY_SUFFIXES if tool == "surface" else IMAGE_SUFFIXES
    if tool == "chain":
        suffixes = IMAGE_SUFFIXES | PLY_SUFFIXES
        help_text = (
            "Run the steps of --steps FILE in order until one finds something.\n\n"
            "FILE holds a JSON array of at most 10 {\"tool\": ..., \"params\": {...}} objects "
            "('-' reads it from standard input)."
        )
    else:
        help_text = TOOLS[tool].summary

    def command(
        remote: Remote, as_json: bool, first: str, second: Path, wait: bool,
        download: Path | None, timeout: float, batch: bool, concurrency: int, **params: Any,
    ) -> int:
        given = {k: v for k, v in params.items() if v is not None}
        if tool == "chain":
            given["steps"] = _read_steps(given.pop("steps"))
        if batch:
            inputs = batch_inputs(first, suffixes)
            if not inputs:
                raise click.BadParameter(
                    f"no files match {first!r}", param_hint=first_field.upper()
                )
            return asyncio.run(_run_batch(
                remote, tool, inputs, second, given,
                concurrency=concurrency, timeout=timeout, download=download,
            ))
        if not Path(first).is_file():
            raise click.BadParameter(f"{first!r} is not a file", param_hint=first_field.upper())
        return _run_single(
            remote, tool, Path(first), second, given,
            wait=wait, download=download, timeout=timeout, as_json=as_json,
        )

    decorators: list[Callable[[Any], Any]] = [
        match.command(name=tool, help=help_text, epilog=EXIT_CODES_HELP),
        click.argument("first", metavar=first_field.upper()),
        click.argument(
            "second", metavar=second_field.upper(),
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
        ),
        *(_param_options(tool) if tool != "chain" else [
            click.option("--steps", type=click.File("r"), required=True, metavar="FILE",
                         help="JSON file with the steps ('-': standard input).")
        ]),
        click.option("--wait", is_flag=True, help="Wait for the task to end; show its result."),
        click.option(
            "--download", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
            help="Wait, then save the result files into DIR (with --batch: DIR/<input name>/).",
        ),
        click.option(
            "--timeout", type=click.FloatRange(min=0), default=avc.DEFAULT_WAIT_S,
            show_default=True, help="Seconds to wait for a task to end.",
        ),
        click.option(
            "--batch", is_flag=True,
            help=f"{first_field.upper()} is a directory or a glob pattern: run on every file, "
            "write one JSON line per input, exit 1 if any failed.",
        ),
        click.option(
            "--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
            help="With --batch: tasks submitted or waited on at once.",
        ),
        remote_command,
    ]
    fn: Any = command
    for decorator in reversed(decorators):
        fn = decorator(fn)


def _read_steps(source: IO[str]) -> str:
    text = source.read()
    try:
        json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--steps") from None
    return text


for _tool in ("template", "feature", "surface", "chain"):
    _match_command(_tool)


# -- tasks


@main.group(epilog=EXIT_CODES_HELP)
def tasks() -> None:
    """List tasks, show one, wait for it, download its files."""


@tasks.command("list")
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@remote_command
def tasks_list(remote: Remote, as_json: bool, limit: int, offset: int) -> int:
    """Tasks, newest first."""
    with remote.client() as client:
        page = client.list_tasks(offset=offset, limit=limit)
    if as_json:
        _echo_json({"total": page.total, "tasks": [t.raw for t in page.tasks]})
        return EXIT_OK
    rows = [[t.uid, t.status, t.tool, _when(t.created_at), summary(t)] for t in page.tasks]
    if rows:
        click.echo(_table(["uid", "status", "tool", "created", "result"], rows))
    shown = f"{offset + 1}-{offset + len(rows)}" if rows else "none"
    click.echo(f"{shown} of {page.total} tasks")
    return EXIT_OK


@tasks.command("show")
@click.argument("uid")
@click.option("--wait", is_flag=True, help="Wait for the task to end.")
@click.option(
    "--download", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
    help="Wait, then save the result files into DIR.",
)
@click.option(
    "--timeout", type=click.FloatRange(min=0), default=avc.DEFAULT_WAIT_S, show_default=True,
    help="Seconds to wait for the task to end.",
)
@remote_command
def tasks_show(
    remote: Remote, as_json: bool, uid: str, wait: bool, download: Path | None, timeout: float
) -> int:
    """One task; exit 1 if it ended in error, 4 if there is no such task."""
    downloaded: list[Path] = []
    with remote.client() as client:
        task = client.get_task(uid)
        if wait or download is not None:
            task, downloaded = _wait_and_download(client, task, timeout, download)
    return _print_task(task, downloaded, as_json)


# -- settings


@main.group(epilog=EXIT_CODES_HELP)
def settings() -> None:
    """Read or change the defaults each tool's requests start from."""


@settings.command("get")
@click.argument("tool", type=click.Choice([n for n, t in TOOLS.items() if t.has_settings]))
@remote_command
def settings_get(remote: Remote, as_json: bool, tool: str) -> int:
    """The current defaults of TOOL."""
    with remote.client() as client:
        current = client.get_settings(tool)
    _print_settings(current, as_json)
    return EXIT_OK


@settings.command("set")
@click.argument("tool", type=click.Choice([n for n, t in TOOLS.items() if t.has_settings]))
@click.argument("pairs", nargs=-1, required=True, metavar="KEY=VALUE...")
@remote_command
def settings_set(remote: Remote, as_json: bool, tool: str, pairs: tuple[str, ...]) -> int:
    """Change some defaults of TOOL, e.g. `settings set template threshold=0.9`.

    VALUE is read as JSON when it can be (0.9, 20, true), else as text
    (TM_CCOEFF_NORMED). Keys left out keep their value.
    """
    with remote.client() as client:
        current = client.update_settings(tool, **parse_pairs(pairs))
    _print_settings(current, as_json)
    return EXIT_OK


def parse_pairs(pairs: Sequence[str]) -> dict[str, Any]:
    """``["threshold=0.9", "method=TM_CCORR"]`` → ``{"threshold": 0.9, "method": "TM_CCORR"}``."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="KEY=VALUE")
        try:
            values[key.strip()] = json.loads(raw)
        except ValueError:
            values[key.strip()] = raw
    return values


def _print_settings(current: avc.ToolSettings, as_json: bool) -> None:
    if as_json:
        _echo_json({"tool": current.tool, "params": current.params})
    else:
        click.echo(_table(["parameter", current.tool], list(current.params.items())))


# -- webhooks


@main.group(epilog=EXIT_CODES_HELP)
def webhooks() -> None:
    """Register, list and remove the receivers notified when a task ends."""


@webhooks.command("add")
@click.argument("url")
@click.option("--secret", help="Sign each POST with HMAC-SHA256 of the body (never shown again).")
@remote_command
def webhooks_add(remote: Remote, as_json: bool, url: str, secret: str | None) -> int:
    """Notify URL (http:// or https://) whenever a task ends."""
    with remote.client() as client:
        hook = client.add_webhook(url, secret)
    if as_json:
        _echo_json({"id": hook.id, "url": hook.url, "created_at": _iso(hook.created_at)})
    else:
        click.echo(f"{hook.id}  {hook.url}")
    return EXIT_OK


@webhooks.command("list")
@remote_command
def webhooks_list(remote: Remote, as_json: bool) -> int:
    """Every registered webhook."""
    with remote.client() as client:
        hooks = client.list_webhooks()
    if as_json:
        _echo_json([{"id": h.id, "url": h.url, "created_at": _iso(h.created_at)} for h in hooks])
    elif hooks:
        rows = [[h.id, h.url, _when(h.created_at)] for h in hooks]
        click.echo(_table(["id", "url", "created"], rows))
    else:
        click.echo("no webhooks")
    return EXIT_OK


@webhooks.command("rm")
@click.argument("webhook_ids", nargs=-1, required=True, metavar="ID...")
@remote_command
def webhooks_rm(remote: Remote, as_json: bool, webhook_ids: tuple[str, ...]) -> int:
    """Remove webhooks; exit 4 if one does not exist (the others are still removed)."""
    missing: avc.NotFound | None = None
    with remote.client() as client:
        for webhook_id in webhook_ids:
            try:
                client.delete_webhook(webhook_id)
            except avc.NotFound as exc:
                missing = exc
                _print_error(exc, as_json)
            else:
                if not as_json:
                    click.echo(f"removed {webhook_id}")
    return EXIT_NOT_FOUND if missing else EXIT_OK


@webhooks.command("deliveries")
@click.argument("webhook_id", metavar="ID")
@remote_command
def webhooks_deliveries(remote: Remote, as_json: bool, webhook_id: str) -> int:
    """The recent deliveries to a webhook, newest first."""
    with remote.client() as client:
        found = client.webhook_deliveries(webhook_id)
    if as_json:
        _echo_json([
            {**{k: getattr(d, k) for k in ("id", "task_uid", "event", "status", "attempts",
                                           "response_code", "error")},
             **{k: _iso(getattr(d, k)) for k in ("next_attempt_at", "created_at", "delivered_at")}}
            for d in found
        ])
        return EXIT_OK
    rows = [
        [d.id, d.task_uid, d.event, d.status, d.attempts, d.response_code, d.error]
        for d in found
    ]
    click.echo(_table(["id", "task", "event", "status", "attempts", "code", "error"], rows)
               if rows else "no deliveries")
    return EXIT_OK


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S") if value else None
