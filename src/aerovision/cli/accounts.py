"""``aerovision accounts`` and ``aerovision tokens``: who may use a server in accounts mode.

``accounts`` (an admin's credentials) creates, lists and deletes accounts;
``tokens`` creates, lists and revokes the tokens of the caller's own account
(its password, or a token holding the ``tokens:*`` permissions). Both need a
server started with ``AEROVISION_AUTH=accounts`` (any other answers 409).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_args

import click

from aerovision import client as avc
from aerovision.cli.exits import EXIT_NOT_FOUND, EXIT_OK
from aerovision.cli.remote import Remote, ask_password, print_error, remote_command
from aerovision.cli.render import echo_json, iso, table, when

EXIT_CODES_HELP = """\b
Exit codes of accounts and tokens:
  0  done
  1  not confirmed (accounts delete)
  2  bad command line
  3  the server refused the request: 401 missing or wrong credentials, 403 not allowed,
     409 login taken or accounts not enabled on this server, 422 invalid value
  4  not found (unknown account or token)
  5  cannot reach the server, or it failed (5xx)"""

ACCOUNT_TYPES: tuple[str, ...] = get_args(avc.AccountType)


@click.group(epilog=EXIT_CODES_HELP)
def accounts() -> None:
    """Create, list and delete accounts (an admin's credentials)."""


def _account_json(account: avc.Account) -> dict[str, Any]:
    return {
        "account_id": account.account_id, "login": account.login,
        "account_type": account.account_type, "description": account.description,
        "created_at": iso(account.created_at),
    }


@accounts.command("create")
@click.argument("new_login", metavar="LOGIN")
@click.option(
    "--type", "account_type", type=click.Choice(ACCOUNT_TYPES), default="user",
    show_default=True,
    help="user: its own data; advanced_user: may also read every account's; admin: also "
    "manages accounts.",
)
@click.option("--description", default="", help="Free text.")
@click.option(
    "--account-password", metavar="PASSWORD",
    help="The new account's password (8 characters or more); asked for twice, hidden, on a "
    "terminal when left out. (--password is the caller's own.)",
)
@remote_command
def accounts_create(
    remote: Remote, as_json: bool, new_login: str, account_type: avc.AccountType,
    description: str, account_password: str | None,
) -> int:
    """A new account LOGIN (e.g. an e-mail address)."""
    if account_password is None:
        account_password = ask_password(
            f"Password for the new account {new_login}", twice=True, option="--account-password"
        )
    with remote.client() as client:
        account = client.create_account(new_login, account_password, account_type, description)
    if as_json:
        echo_json(_account_json(account))
    else:
        click.echo(f"{account.account_id}  {account.login}  {account.account_type}")
    return EXIT_OK


@accounts.command("list")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@remote_command
def accounts_list(remote: Remote, as_json: bool, limit: int, offset: int) -> int:
    """The server's accounts, oldest first."""
    with remote.client() as client:
        page = client.accounts(offset=offset, limit=limit)
    if as_json:
        echo_json({"total": page.total, "accounts": [_account_json(a) for a in page.accounts]})
        return EXIT_OK
    rows = [
        [a.account_id, a.login, a.account_type, a.description, when(a.created_at)]
        for a in page.accounts
    ]
    if rows:
        click.echo(table(["id", "login", "type", "description", "created"], rows))
    shown = f"{offset + 1}-{offset + len(rows)}" if rows else "none"
    click.echo(f"{shown} of {page.total} accounts")
    return EXIT_OK


@accounts.command("delete")
@click.argument("account_id", metavar="ACCOUNT_ID")
@click.option("--yes", "-y", is_flag=True, help="Do not ask to confirm.")
@remote_command
def accounts_delete(remote: Remote, as_json: bool, account_id: str, yes: bool) -> int:
    """Delete an account and everything it owns.

    Its tasks and their files, webhooks, settings and tokens go with it. Asks to
    confirm (showing its login) unless --yes.
    """
    with remote.client() as client:
        if not yes:
            account = client.get_account(account_id)
            click.confirm(
                f"Delete the account {account.login} ({account.account_id}) and everything "
                "it owns (tasks and their files, webhooks, settings, tokens)?",
                abort=True, err=True,
            )
        client.delete_account(account_id)
    if not as_json:
        click.echo(f"deleted {account_id}")
    return EXIT_OK


# -- tokens


@click.group(epilog=EXIT_CODES_HELP)
def tokens() -> None:
    """Create, list and revoke the tokens of your account."""


def _check_permissions(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> dict[str, list[str]]:
    try:
        return avc.permissions_json(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _parse_expiry(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time (e.g. 2027-01-01T00:00:00)"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _permissions_text(token: avc.Token) -> str:
    """``tasks:view,creation analyze:creation``."""
    return " ".join(f"{r}:{','.join(a)}" for r, a in token.permissions.items() if a)


def _token_json(token: avc.Token) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "token_id": token.token_id, "description": token.description,
        "permissions": token.permissions, "expiration_time": iso(token.expiration_time),
        "visibility_area": token.visibility_area, "created_at": iso(token.created_at),
    }
    if token.secret is not None:
        shown["token"] = token.secret
    return shown


@tokens.command("create")
@click.option(
    "--permission", "permissions", multiple=True, required=True, metavar="RESOURCE:ACTION",
    callback=_check_permissions,
    help="A permission the token holds, e.g. tasks:view; repeat it, or list actions: "
    "tasks:view,creation. Resources: tasks, settings, webhooks, libraries, recipes, "
    "analyze, events, tokens.",
)
@click.option("--description", default="", help="What the token is for.")
@click.option(
    "--expires", metavar="ISO", callback=_parse_expiry,
    help="When it stops working, UTC (e.g. 2027-01-01T00:00:00; an offset is converted). "
    "Never if left out.",
)
@click.option(
    "--all-accounts", is_flag=True,
    help="It may read every account's data (visibility_area all; advanced_user and admin "
    "accounts only).",
)
@remote_command
def tokens_create(
    remote: Remote, as_json: bool, permissions: dict[str, list[str]], description: str,
    expires: datetime | None, all_accounts: bool,
) -> int:
    """A new token of your account; its secret is printed this once."""
    with remote.client() as client:
        token = client.create_token(
            permissions, description=description, expiration_time=expires,
            visibility_area="all" if all_accounts else "account",
        )
    if as_json:
        echo_json(_token_json(token))
        return EXIT_OK
    rows = [
        ("token", token.secret), ("id", token.token_id), ("description", token.description),
        ("permissions", _permissions_text(token)), ("visibility", token.visibility_area),
        ("expires", when(token.expiration_time) if token.expiration_time else "never"),
    ]
    click.echo("\n".join(f"{k:<12} {v}" for k, v in rows))
    click.echo("the token is shown this once: keep it (e.g. as AEROVISION_TOKEN)", err=True)
    return EXIT_OK


@tokens.command("list")
@remote_command
def tokens_list(remote: Remote, as_json: bool) -> int:
    """Your account's tokens, oldest first (their secrets are never shown again)."""
    with remote.client() as client:
        found = client.tokens()
    if as_json:
        echo_json([_token_json(t) for t in found])
    elif found:
        rows = [
            [t.token_id, t.description, _permissions_text(t), t.visibility_area,
             when(t.expiration_time) if t.expiration_time else "never", when(t.created_at)]
            for t in found
        ]
        click.echo(table(
            ["id", "description", "permissions", "visibility", "expires", "created"], rows
        ))
    else:
        click.echo("no tokens")
    return EXIT_OK


@tokens.command("revoke")
@click.argument("token_ids", nargs=-1, required=True, metavar="TOKEN_ID...")
@remote_command
def tokens_revoke(remote: Remote, as_json: bool, token_ids: tuple[str, ...]) -> int:
    """Revoke tokens: they stop working at once. Exit 4 if one does not exist (the others
    are still revoked)."""
    missing: avc.NotFound | None = None
    with remote.client() as client:
        for token_id in token_ids:
            try:
                client.revoke_token(token_id)
            except avc.NotFound as exc:
                missing = exc
                print_error(exc, as_json)
            else:
                if not as_json:
                    click.echo(f"revoked {token_id}")
    return EXIT_NOT_FOUND if missing else EXIT_OK
