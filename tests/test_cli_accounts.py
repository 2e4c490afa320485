"""`aerovision accounts` and `aerovision tokens`, and the credential options of every
command that talks to a server (CliRunner), against a real `aerovision serve` in
accounts mode."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from aerovision import cli
from aerovision.cli import remote
from tests.images import encode, scene_with_patch
from tests.server import ServeProcess
from tests.test_client import ADMIN_LOGIN, ADMIN_PASSWORD, start_accounts_server, unique_login

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = start_accounts_server(tmp_path_factory, "cli-accounts")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli-accounts-files")
    scene, icon, _ = scene_with_patch(2, size=(240, 320), patch=32, seed=3)
    (folder / "scene.png").write_bytes(encode(scene))
    (folder / "icon.png").write_bytes(encode(icon))
    return folder


@pytest.fixture
def av(server: ServeProcess) -> Any:
    """Run `aerovision ARGS...` against the module's server, as its admin (AEROVISION_LOGIN
    and AEROVISION_PASSWORD) unless ``env`` says otherwise (None: unset)."""
    runner = CliRunner()

    def invoke(
        *args: str | Path, input: str | None = None, env: dict[str, str | None] | None = None
    ) -> Result:
        base: dict[str, str | None] = {
            "AEROVISION_URL": server.base_url, "AEROVISION_LOGIN": ADMIN_LOGIN,
            "AEROVISION_PASSWORD": ADMIN_PASSWORD,
        }
        return runner.invoke(
            cli.main, [str(a) for a in args], env={**base, **(env or {})}, input=input,
            catch_exceptions=False,
        )

    return invoke


def _json(result: Result) -> Any:
    return json.loads(result.stdout)


def _as(login: str, password: str) -> dict[str, str | None]:
    return {"AEROVISION_LOGIN": login, "AEROVISION_PASSWORD": password}


def _make_account(av: Any, prefix: str, *args: str) -> dict[str, Any]:
    login = unique_login(prefix)
    made = av("accounts", "create", login, "--account-password", f"{prefix}-password-1",
              *args, "--json")
    assert made.exit_code == 0, made.output
    account: dict[str, Any] = _json(made)
    return account


# -- accounts


def test_accounts_create_list_delete(av: Any) -> None:
    login = unique_login("dora")
    made = av("accounts", "create", login, "--account-password", "dora-password-1",
              "--description", "night shift")
    assert made.exit_code == 0, made.output
    assert re.fullmatch(rf"({UUID})  {re.escape(login)}  user\n", made.stdout), made.stdout
    account_id = made.stdout.split()[0]

    advanced = _make_account(av, "erin", "--type", "advanced_user")
    assert advanced["account_type"] == "advanced_user" and advanced["description"] == ""
    assert set(advanced) == {"account_id", "login", "account_type", "description", "created_at"}

    listed = av("accounts", "list")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["id", "login", "type", "description", "created"]
    row = next(line for line in lines if account_id in line)
    assert login in row and " user " in row and "night shift" in row
    assert ADMIN_LOGIN in listed.stdout and re.fullmatch(r"1-\d+ of \d+ accounts", lines[-1])
    page = _json(av("accounts", "list", "--limit", "1", "--json"))
    assert page["total"] >= 4 and len(page["accounts"]) == 1  # default, admin, dora, erin

    kept = av("accounts", "delete", account_id, input="n\n")
    assert kept.exit_code == 1
    assert f"Delete the account {login} ({account_id})" in kept.stderr
    assert account_id in av("accounts", "list", "--limit", "200").stdout
    deleted = av("accounts", "delete", account_id, input="y\n")
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout == f"deleted {account_id}\n"
    assert account_id not in av("accounts", "list", "--limit", "200").stdout
    assert av("accounts", "delete", advanced["account_id"], "--yes").stdout == (
        f"deleted {advanced['account_id']}\n"
    )

    missing = av("accounts", "delete", account_id, "--yes")
    assert missing.exit_code == 4 and "error: Account not found (404)" in missing.stderr


def test_accounts_create_refusals(av: Any) -> None:
    taken = av("accounts", "create", ADMIN_LOGIN, "--account-password", "whatever-1")
    assert taken.exit_code == 3
    assert taken.stderr == f"error: login {ADMIN_LOGIN!r} is taken (409)\n"
    short = av("accounts", "create", unique_login("short"), "--account-password", "short")
    assert short.exit_code == 3 and "password" in short.stderr
    bad_type = av("accounts", "create", unique_login("x"), "--type", "root",
                  "--account-password", "x-password-1")
    assert bad_type.exit_code == 2 and "'root' is not one of" in bad_type.stderr
    # no --account-password and stdin not a terminal: nothing to ask on
    unasked = av("accounts", "create", unique_login("x"))
    assert unasked.exit_code == 2 and "give --account-password" in unasked.stderr

    user = _make_account(av, "fred")
    not_admin = av("accounts", "list", env=_as(user["login"], "fred-password-1"))
    assert not_admin.exit_code == 3
    assert "error: only an admin account may manage accounts (403)" in not_admin.stderr
    wrong = av("accounts", "list", env=_as(ADMIN_LOGIN, "not-the-password"))
    assert wrong.exit_code == 3 and "wrong login or password (401)" in wrong.stderr
    nobody = av("accounts", "list", env={"AEROVISION_LOGIN": None, "AEROVISION_PASSWORD": None})
    assert nobody.exit_code == 3 and "credentials needed" in nobody.stderr
    assert av("accounts", "delete", user["account_id"], "--yes").exit_code == 0


def test_passwords_are_asked_for_on_a_terminal(
    av: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote, "stdin_is_terminal", lambda: True)
    login = unique_login("gina")
    made = av("accounts", "create", login, "--json",
              input="gina-password-1\ngina-password-1\n")  # typed twice
    assert made.exit_code == 0, made.output
    assert made.stderr.count("Password for the new account") == 1
    assert "Repeat for confirmation" in made.stderr
    assert "gina-password-1" not in made.output  # hidden
    asked = av("tokens", "list", "--login", login, input="gina-password-1\n")
    assert asked.exit_code == 0, asked.output
    assert f"Password for {login}:" in asked.stderr and asked.stdout == "no tokens\n"
    assert av("accounts", "delete", _json(made)["account_id"], "--yes").exit_code == 0


def test_the_login_needs_a_password_off_a_terminal(av: Any) -> None:
    result = av("tokens", "list", env={"AEROVISION_PASSWORD": None})
    assert result.exit_code == 2 and "no password: give --password" in result.stderr
    lone = av("tokens", "list", "--password", "x", env={"AEROVISION_LOGIN": None})
    assert lone.exit_code == 2 and "--password needs --login" in lone.stderr


# -- tokens


def test_tokens_create_list_revoke_and_use(av: Any, files: Path) -> None:
    user = _make_account(av, "hana")
    hana = _as(user["login"], "hana-password-1")
    made = av("tokens", "create", "--permission", "tasks:view", "--permission",
              "tasks:creation", "--description", "line 3", "--expires", "2030-01-01T02:00:00+02:00",
              env=hana)
    assert made.exit_code == 0, made.output
    shown = dict(line.split(None, 1) for line in made.stdout.splitlines())
    assert set(shown) == {"token", "id", "description", "permissions", "visibility", "expires"}
    assert shown["permissions"] == "tasks:creation,view" and shown["visibility"] == "account"
    assert shown["expires"] == "2030-01-01 00:00:00" and shown["description"] == "line 3"
    assert "shown this once" in made.stderr
    secret, token_id = shown["token"], shown["id"]

    listed = av("tokens", "list", env=hana)
    assert listed.exit_code == 0, listed.output
    header, row = listed.stdout.splitlines()
    assert header.split() == ["id", "description", "permissions", "visibility", "expires",
                              "created"]
    assert row.startswith(token_id) and "tasks:creation,view" in row and secret not in row
    as_json = _json(av("tokens", "list", "--json", env=hana))
    assert [t["token_id"] for t in as_json] == [token_id] and "token" not in as_json[0]
    assert as_json[0]["expiration_time"] == "2030-01-01T00:00:00"

    # the token submits and waits (--token on the command line wins over the login)
    matched = av("match", "template", files / "scene.png", files / "icon.png", "--wait",
                 "--json", "--token", secret)
    assert matched.exit_code == 0, matched.output
    assert _json(matched)["status"] == "done"
    # AEROVISION_TOKEN alone (a lone AEROVISION_PASSWORD, without a login, is ignored)
    seen = av("tasks", "list", "--json", env={**hana, "AEROVISION_LOGIN": None,
                                              "AEROVISION_TOKEN": secret})
    assert [t["uid"] for t in _json(seen)["tasks"]] == [_json(matched)["uid"]]

    revoked = av("tokens", "revoke", token_id, env=hana)
    assert revoked.exit_code == 0 and revoked.stdout == f"revoked {token_id}\n"
    assert av("tokens", "list", env=hana).stdout == "no tokens\n"
    again = av("tokens", "revoke", token_id, env=hana)
    assert again.exit_code == 4 and "error: Token not found (404)" in again.stderr
    refused = av("tasks", "list", "--token", secret)
    assert refused.exit_code == 3 and "error: unknown or revoked token (401)" in refused.stderr
    assert av("accounts", "delete", user["account_id"], "--yes").exit_code == 0


def test_a_token_without_the_permission_exits_3(av: Any, files: Path) -> None:
    made = av("tokens", "create", "--permission", "tasks:view", "--json")
    assert made.exit_code == 0, made.output
    token = _json(made)
    assert token["permissions"] == {"tasks": ["view"]} and token["token"].startswith("av_")
    assert token["expiration_time"] is None and token["visibility_area"] == "account"
    refused = av("match", "template", files / "scene.png", files / "icon.png",
                 "--token", token["token"])
    assert refused.exit_code == 3
    assert refused.stderr == "error: token lacks permission tasks:creation (403)\n"
    as_json = av("tasks", "list", "--token", token["token"], "--json")
    assert as_json.exit_code == 0  # tasks:view is enough to list
    assert av("tokens", "revoke", token["token_id"]).exit_code == 0


def test_tokens_create_refusals(av: Any) -> None:
    for args, message in [
        ((), "Missing option '--permission'"),
        (("--permission", "tasks"), "'tasks' is not RESOURCE:ACTION"),
        (("--permission", "tasks:view", "--expires", "soon"), "'soon' is not an ISO 8601"),
    ]:
        result = av("tokens", "create", *args)
        assert result.exit_code == 2 and message in result.stderr, result.stderr
    unknown = av("tokens", "create", "--permission", "tasks:fly")
    assert unknown.exit_code == 3 and "unknown action 'fly'" in unknown.stderr
    past = av("tokens", "create", "--permission", "tasks:view", "--expires", "2001-01-01")
    assert past.exit_code == 3 and "must be in the future" in past.stderr
    user = _make_account(av, "ivan")
    everyone = av("tokens", "create", "--permission", "tasks:view", "--all-accounts",
                  env=_as(user["login"], "ivan-password-1"))
    assert everyone.exit_code == 3 and "advanced_user or admin" in everyone.stderr
    admin_wide = av("tokens", "create", "--permission", "tasks:view", "--all-accounts", "--json")
    assert admin_wide.exit_code == 0 and _json(admin_wide)["visibility_area"] == "all"
    assert av("tokens", "revoke", _json(admin_wide)["token_id"]).exit_code == 0
    assert av("accounts", "delete", user["account_id"], "--yes").exit_code == 0


def test_one_kind_of_credentials(av: Any) -> None:
    made = _json(av("tokens", "create", "--permission", "tasks:view", "--json"))
    secret = made["token"]
    try:
        # the environment holds a login and a token: two kinds in one place
        both = av("accounts", "list", env={"AEROVISION_TOKEN": secret})
        assert both.exit_code == 2
        assert "--token/AEROVISION_TOKEN and --login/AEROVISION_LOGIN both given" in both.stderr
        twice = av("accounts", "list", "--token", secret, "--api-key", "k")
        assert twice.exit_code == 2 and "use one kind of credentials" in twice.stderr
        # the command line's wins over the environment's: here --login (an admin)
        line = av("accounts", "list", "--login", ADMIN_LOGIN, "--password", ADMIN_PASSWORD,
                  env={"AEROVISION_LOGIN": None, "AEROVISION_PASSWORD": None,
                       "AEROVISION_TOKEN": secret})
        assert line.exit_code == 0, line.output
        tokened = av("tokens", "list", "--token", secret)  # the token lacks tokens:view
        assert tokened.exit_code == 3 and "lacks permission tokens:view" in tokened.stderr
        # AEROVISION_PASSWORD is AEROVISION_LOGIN's, not that of another --login
        other = av("tokens", "list", "--login", unique_login("nobody"))
        assert other.exit_code == 2 and "no password" in other.stderr
    finally:
        assert av("tokens", "revoke", made["token_id"]).exit_code == 0


def test_help_names_the_credentials_and_exit_codes(av: Any) -> None:
    helped = av("tokens", "list", "--help").stdout
    for option in ("--token TOKEN", "AEROVISION_TOKEN", "--login LOGIN", "AEROVISION_LOGIN",
                   "--password PASSWORD", "AEROVISION_PASSWORD", "--api-key KEY"):
        assert option in helped
    assert "409 login taken" in av("accounts", "--help").stdout
