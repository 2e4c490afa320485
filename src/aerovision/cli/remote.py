"""What every command that talks to a server shares: where it is, --json, errors.

The commands themselves are in :mod:`~aerovision.cli.match`,
:mod:`~aerovision.cli.tasks`, :mod:`~aerovision.cli.settings` and
:mod:`~aerovision.cli.webhooks`; they speak HTTP through :mod:`aerovision.client`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from aerovision import client as avc
from aerovision.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, exit_code
from aerovision.cli.progress import Spinner, stderr_is_terminal
from aerovision.cli.render import echo_json, render_task


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


def print_error(exc: avc.AeroVisionError, as_json: bool) -> None:
    """``exc`` on stderr: the server's message and 422 details, or ``{"error": {...}}``."""
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

OWN_OPTIONS = frozenset({"server", "api_key", "as_json"})
"""The keyword arguments :func:`remote_command` adds (no tool input or parameter may take
one of these names)."""


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
            print_error(exc, as_json)
            code = exit_code(exc)
        except KeyboardInterrupt:
            click.echo("\ninterrupted (submitted tasks keep running on the server)", err=True)
            code = EXIT_INTERRUPTED
        if code:
            click.get_current_context().exit(code)

    return command


def wait_and_download(
    client: avc.Client, task: avc.Task, timeout: float, download: Path | None
) -> tuple[avc.Task, list[Path]]:
    """Wait for ``task`` (a spinner on a terminal), then save its files into ``download``."""
    spinner = Spinner(enabled=stderr_is_terminal())
    try:
        task = client.wait(task, timeout, raise_on_error=False, on_update=spinner, poll_max=1.0)
    finally:
        spinner.clear()
    files = client.download(task, download) if download and task.status == "done" else []
    return task, files


def print_task(task: avc.Task, downloaded: Sequence[Path], as_json: bool) -> int:
    """Show a task (text or JSON); the exit code it calls for."""
    if as_json:
        shown = dict(task.raw)
        if downloaded:
            shown["downloaded"] = [str(p) for p in downloaded]
        echo_json(shown)
    else:
        click.echo(render_task(task, downloaded))
    if task.status == "error":
        if not as_json:
            click.echo(f"error: task {task.uid} ended in error: {task.error}", err=True)
        return EXIT_FAILED
    return EXIT_OK
