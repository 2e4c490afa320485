"""``aerovision tasks``: list tasks, show one, wait for it, download its files."""

from __future__ import annotations

from pathlib import Path

import click

from aerovision import client as avc
from aerovision.cli.exits import EXIT_CODES_HELP, EXIT_OK
from aerovision.cli.remote import Remote, print_task, remote_command, wait_and_download
from aerovision.cli.render import echo_json, summary, table, when


@click.group(epilog=EXIT_CODES_HELP)
def tasks() -> None:
    """List tasks, show one, wait for it, download its files."""


@tasks.command("list")
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@remote_command
def tasks_list(remote: Remote, as_json: bool, limit: int, offset: int) -> int:
    """Tasks, newest first, each with its tool's one-line summary of the result."""
    with remote.client() as client:
        page = client.list_tasks(offset=offset, limit=limit)
    if as_json:
        echo_json({"total": page.total, "tasks": [t.raw for t in page.tasks]})
        return EXIT_OK
    rows = [[t.uid, t.status, t.tool, when(t.created_at), summary(t)] for t in page.tasks]
    if rows:
        click.echo(table(["uid", "status", "tool", "created", "result"], rows))
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
            task, downloaded = wait_and_download(client, task, timeout, download)
    return print_task(task, downloaded, as_json)
