"""The ``aerovision`` command: one click group, its commands in the modules of this package.

- :mod:`~aerovision.cli.server`: ``serve``, ``api``, ``worker``, ``notifier``,
  ``migrate``, ``check`` (run the service);
- :mod:`~aerovision.cli.match`: one ``match <tool>`` per tool of the registry;
- :mod:`~aerovision.cli.tasks`, :mod:`~aerovision.cli.settings`,
  :mod:`~aerovision.cli.webhooks`, :mod:`~aerovision.cli.accounts` (``accounts``,
  ``tokens``), :mod:`~aerovision.cli.libraries` (``library``): the other commands that
  talk to a server;
- :mod:`~aerovision.cli.remote`, :mod:`~aerovision.cli.exits`: what those share
  (``--server``, credentials, ``--json``, errors; the exit codes);
- :mod:`~aerovision.cli.render`, :mod:`~aerovision.cli.progress`: terminal output;
- :mod:`~aerovision.cli.ply`: ``ply normals`` (local, no server).
"""

from __future__ import annotations

import click

from aerovision import __version__
from aerovision.cli import accounts, libraries, match, ply, server, settings, tasks, webhooks
from aerovision.cli.exits import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_TIMEOUT,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    exit_code,
)
from aerovision.cli.progress import ProgressBar, Spinner, progress_line
from aerovision.cli.remote import Remote, remote_command
from aerovision.cli.render import render_task, summary
from aerovision.cli.settings import parse_pairs

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_TIMEOUT",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "ProgressBar",
    "Remote",
    "Spinner",
    "exit_code",
    "main",
    "parse_pairs",
    "progress_line",
    "remote_command",
    "render_task",
    "summary",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="aerovision")
def main() -> None:
    """AeroVision: image and 3D surface matching service.

    Every option can also be set by an AEROVISION_<NAME> environment variable
    (e.g. AEROVISION_DATA_DIR); an option given on the command line wins.
    """


for _command in (
    *server.COMMANDS, match.match, tasks.tasks, settings.settings, webhooks.webhooks,
    accounts.accounts, accounts.tokens, libraries.library, ply.ply,
):
    main.add_command(_command)
