"""``aerovision webhooks``: register, list and remove the receivers notified when a task ends."""

from __future__ import annotations

import click

from aerovision import client as avc
from aerovision.cli.exits import EXIT_CODES_HELP, EXIT_NOT_FOUND, EXIT_OK
from aerovision.cli.remote import Remote, print_error, remote_command
from aerovision.cli.render import echo_json, iso, table, when


@click.group(epilog=EXIT_CODES_HELP)
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
        echo_json({"id": hook.id, "url": hook.url, "created_at": iso(hook.created_at)})
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
        echo_json([{"id": h.id, "url": h.url, "created_at": iso(h.created_at)} for h in hooks])
    elif hooks:
        rows = [[h.id, h.url, when(h.created_at)] for h in hooks]
        click.echo(table(["id", "url", "created"], rows))
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
                print_error(exc, as_json)
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
        echo_json([
            {**{k: getattr(d, k) for k in ("id", "task_uid", "event", "status", "attempts",
                                           "response_code", "error")},
             **{k: iso(getattr(d, k)) for k in ("next_attempt_at", "created_at", "delivered_at")}}
            for d in found
        ])
        return EXIT_OK
    rows = [
        [d.id, d.task_uid, d.event, d.status, d.attempts, d.response_code, d.error]
        for d in found
    ]
    click.echo(table(["id", "task", "event", "status", "attempts", "code", "error"], rows)
               if rows else "no deliveries")
    return EXIT_OK
