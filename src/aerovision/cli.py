"""The ``aerovision`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from aerovision import __version__
from aerovision.config import Settings


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


@main.command(epilog=_environment_help())
@click.option("--host", help="Address to listen on.  [env AEROVISION_HOST; default 0.0.0.0]")
@click.option("--port", type=int, help="Port to listen on.  [env AEROVISION_PORT; default 8888]")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the database and files.  [env AEROVISION_DATA_DIR; default ./data]",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    help="Worker processes.  [env AEROVISION_WORKERS; default: one per CPU]",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Logging level.  [env AEROVISION_LOG_LEVEL; default info]",
)
def serve(**options: Any) -> None:
    """Run the API, the workers and the reaper in one command (embedded default).

    Tasks, settings and the queue live in a SQLite database in the data
    directory, files under it. Ctrl-C stops everything cleanly; running serve
    again on the same data directory picks up the queued tasks.
    """
    from aerovision.runtime import run_serve

    run_serve(_settings(**options))


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the database and files.  [env AEROVISION_DATA_DIR; default ./data]",
)
def worker(**options: Any) -> None:
    """Run one worker process (takes tasks from the queue until stopped)."""
    from aerovision.runtime import run_worker

    run_worker(_settings(**options))


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the database and files.  [env AEROVISION_DATA_DIR; default ./data]",
)
def migrate(**options: Any) -> None:
    """Create or upgrade the database schema (serve does this on start)."""
    from aerovision.store.db import migrate as run_migrations

    settings = _settings(**options)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    run_migrations(settings.db_url)
    click.echo(f"database schema is up to date: {settings.db_url}")
