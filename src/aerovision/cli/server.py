"""The commands that run the service: serve, api, worker, notifier, migrate, check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from aerovision.config import Settings


def _shown(default: Any) -> str:
    """A default as one writes it in the environment: ./data, not PosixPath('data')."""
    if default is None:
        return "unset"
    if isinstance(default, Path):
        return str(default) if default.is_absolute() else f"./{default}"
    if isinstance(default, bool):
        return "1" if default else "0"
    if isinstance(default, str):
        return default or "empty"
    return str(default)


def _environment_help(host: str = "127.0.0.1") -> str:
    """Every AEROVISION_* variable with its default, for --help (``host``: this command's)."""
    lines = ["\b", "Environment variables (every setting; options above win over them):"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=False)
        shown = "computed" if field.default_factory is not None else _shown(default)
        if name == "host":
            shown = host
        lines.append(f"  AEROVISION_{name.upper()} (default {shown})")
        lines.append(f"      {field.description}")
    return "\n".join(lines)


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the command-line options given over them."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


API_HOST = "0.0.0.0"
"""`aerovision api` listens on every interface unless told otherwise: it runs in
containers and behind proxies, where loopback would be unreachable."""


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


@click.command(epilog=_environment_help())
@click.option(
    "--host",
    help="Address to listen on; 0.0.0.0 to share it with your network.  "
    "[env AEROVISION_HOST; default 127.0.0.1]",
)
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
    directory, files under it. It listens on 127.0.0.1 (this machine only)
    unless --host says otherwise, and logs "AeroVision serving on …" once the
    port is bound and a worker has reported in. Ctrl-C stops everything
    cleanly; running serve again on the same data directory picks up the
    queued tasks.
    """
    from aerovision.runtime import run_serve

    run_serve(_settings(**options))


@click.command(epilog=_environment_help(host=API_HOST))
@click.option("--host", help=f"Address to listen on.  [env AEROVISION_HOST; default {API_HOST}]")
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

    settings = _settings(**options)
    if "host" not in settings.model_fields_set:  # neither --host nor AEROVISION_HOST
        settings = settings.model_copy(update={"host": API_HOST})
    run(settings, api=True, workers=0, reaper=True, notifier=False)


@click.command(epilog=_environment_help())
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


@click.command(epilog=_environment_help())
@DATA_DIR_OPTION
@LOG_LEVEL_OPTION
def notifier(**options: Any) -> None:
    """Send webhook deliveries from the outbox (scale-out)."""
    from aerovision.runtime import run

    run(_settings(**options), api=False, workers=0, reaper=False, notifier=True)


@click.command()
@DATA_DIR_OPTION
def migrate(**options: Any) -> None:
    """Create or upgrade the database schema and the storage bucket (serve does this on start)."""
    from aerovision.runtime import prepare

    settings = _settings(**options)
    prepare(settings)
    click.echo(f"database schema is up to date: {settings.db_url}")


@click.command()
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


COMMANDS: tuple[click.Command, ...] = (serve, api, worker, notifier, migrate, check)
"""The commands of this module, for :data:`aerovision.cli.main`."""
