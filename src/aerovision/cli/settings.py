"""``aerovision settings``: read or change the defaults each tool's requests start from."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from aerovision import client as avc
from aerovision.cli.exits import EXIT_CODES_HELP, EXIT_OK
from aerovision.cli.remote import Remote, remote_command
from aerovision.cli.render import echo_json, table
from aerovision.tools import TOOLS

WITH_SETTINGS = [name for name, tool in TOOLS.items() if tool.has_settings]
"""The tools that have settings (``GET``/``PUT /api/v1/settings/<tool>``)."""


@click.group(epilog=EXIT_CODES_HELP)
def settings() -> None:
    """Read or change the defaults each tool's requests start from."""


@settings.command("get")
@click.argument("tool", type=click.Choice(WITH_SETTINGS))
@remote_command
def settings_get(remote: Remote, as_json: bool, tool: str) -> int:
    """The current defaults of TOOL."""
    with remote.client() as client:
        current = client.get_settings(tool)
    _print_settings(current, as_json)
    return EXIT_OK


@settings.command("set")
@click.argument("tool", type=click.Choice(WITH_SETTINGS))
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
        echo_json({"tool": current.tool, "params": current.params})
    else:
        click.echo(table(["parameter", current.tool], list(current.params.items())))
