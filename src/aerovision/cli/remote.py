"""What every command that talks to a server shares: where it is, credentials, --json, errors.

The commands themselves are in :mod:`~aerovision.cli.match`,
:mod:`~aerovision.cli.tasks`, :mod:`~aerovision.cli.settings`,
:mod:`~aerovision.cli.webhooks` and :mod:`~aerovision.cli.accounts`; they speak
HTTP through :mod:`aerovision.client`.

Credentials: ``--token``, ``--api-key`` (both sent as Bearer) or ``--login`` with
``--password`` (HTTP Basic; asked for, hidden, on a terminal when left out), each
also from its ``AEROVISION_*`` variable. One kind is used: the command line's
wins over the environment's; two kinds from the same place is a usage error.
``AEROVISION_PASSWORD`` goes with ``AEROVISION_LOGIN``: a ``--login`` of another
account takes ``--password`` or asks, and without any login it is ignored.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

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
    """Where the server is (--server/AEROVISION_URL) and the credentials to send: a token
    or static key (Bearer), or a login and password (Basic); none on a server without
    accounts or keys."""

    server: str
    api_key: str | None = None
    token: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)

    def client(self) -> avc.Client:
        return avc.Client(
            self.server, api_key=self.api_key, token=self.token, login=self.login,
            password=self.password,
        )

    def async_client(self) -> avc.AsyncClient:
        return avc.AsyncClient(
            self.server, api_key=self.api_key, token=self.token, login=self.login,
            password=self.password,
        )


CommandFn = Callable[..., int | None]

OWN_OPTIONS = frozenset({"server", "api_key", "token", "login", "password", "as_json"})
"""The keyword arguments :func:`remote_command` adds (no tool input or parameter may take
one of these names)."""

_CREDENTIALS: dict[str, tuple[str, ...]] = {
    "--token/AEROVISION_TOKEN": ("token",),
    "--api-key/AEROVISION_API_KEY": ("api_key",),
    "--login/AEROVISION_LOGIN": ("login", "password"),
}
"""The kinds of credentials, each with the parameters that give it."""


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def ask_password(prompt: str, *, twice: bool = False, option: str = "--password") -> str:
    """A password typed on the terminal (hidden; ``twice``: typed again to confirm); a
    usage error naming ``option`` when stdin is not a terminal."""
    if not stdin_is_terminal():
        raise click.UsageError(f"no password: give {option} (stdin is not a terminal to ask)")
    value: str = click.prompt(
        prompt, hide_input=True, confirmation_prompt=twice, err=True, type=str
    )
    return value


def _remote(
    server: str, api_key: str | None, token: str | None, login: str | None,
    password: str | None,
) -> Remote:
    """The Remote of the options given; one kind of credentials (see the module docstring)."""
    ctx = click.get_current_context()
    if ctx.get_parameter_source("password") is ParameterSource.ENVIRONMENT and not login:
        password = None  # a lone AEROVISION_PASSWORD is no credential (it needs a login)
    values = {"api_key": api_key, "token": token, "login": login, "password": password}
    given = {
        kind: any(
            ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE for name in names
        )
        for kind, names in _CREDENTIALS.items() if any(values[name] for name in names)
    }
    if any(given.values()):  # the command line's credentials win over the environment's
        given = {kind: on_line for kind, on_line in given.items() if on_line}
    if len(given) > 1:
        raise click.UsageError(
            f"{' and '.join(given)} both given: use one kind of credentials"
        )
    kind = next(iter(given), None)
    if kind is None:
        return Remote(server)
    if kind.startswith("--token"):
        return Remote(server, token=token)
    if kind.startswith("--api-key"):
        return Remote(server, api_key=api_key)
    if not login:
        raise click.UsageError("--password needs --login (or AEROVISION_LOGIN)")
    env_login = os.environ.get("AEROVISION_LOGIN")
    if (
        ctx.get_parameter_source("password") is ParameterSource.ENVIRONMENT
        and env_login and env_login != login
    ):
        password = None  # AEROVISION_PASSWORD is AEROVISION_LOGIN's, not --login's
    if password is None:
        password = ask_password(f"Password for {login}")
    return Remote(server, login=login, password=password)


def remote_command(fn: CommandFn) -> Callable[..., None]:
    """Add --server, the credentials' options (--token, --api-key, --login, --password) and
    --json; call ``fn(remote, as_json=..., ...)`` and turn its return value or client error
    into the documented exit code."""

    @click.option(
        "--server", envvar="AEROVISION_URL", default=avc.DEFAULT_URL, show_default=True,
        metavar="URL", help="The AeroVision server.  [env AEROVISION_URL]",
    )
    @click.option(
        "--token", envvar="AEROVISION_TOKEN", metavar="TOKEN",
        help="A token's secret, sent as Authorization: Bearer TOKEN.  [env AEROVISION_TOKEN]",
    )
    @click.option(
        "--api-key", envvar="AEROVISION_API_KEY", metavar="KEY",
        help="A static key, sent as Authorization: Bearer KEY.  [env AEROVISION_API_KEY]",
    )
    @click.option(
        "--login", envvar="AEROVISION_LOGIN", metavar="LOGIN",
        help="An account's login, sent with --password as HTTP Basic.  [env AEROVISION_LOGIN]",
    )
    @click.option(
        "--password", envvar="AEROVISION_PASSWORD", metavar="PASSWORD",
        help="The password of --login (asked for on a terminal when left out).  "
        "[env AEROVISION_PASSWORD]",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts), not text.")
    @functools.wraps(fn)
    def command(
        server: str, token: str | None, api_key: str | None, login: str | None,
        password: str | None, as_json: bool, **kwargs: Any,
    ) -> None:
        remote = _remote(server, api_key, token, login, password)
        try:
            code = fn(remote, as_json=as_json, **kwargs)
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
