"""Accounts and tokens: /api/v1/accounts (admins), /api/v1/account (the caller's own)
and /api/v1/tokens (SPEC-accounts.md). Answered only in ``accounts`` mode."""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from aerovision.api.auth import NOT_ENABLED, CallerDep, parse_permissions, within
from aerovision.api.deps import ServicesDep
from aerovision.api.errors import field_error
from aerovision.api.schemas import (
    AccountIn,
    AccountList,
    AccountOut,
    AccountPatch,
    Message,
    MyAccountOut,
    NewTokenOut,
    TokenIn,
    TokenOut,
    TokenPatch,
)
from aerovision.api.services import Services
from aerovision.store import accounts as account_store
from aerovision.store.files import StoreUnavailable
from aerovision.store.models import DEFAULT_ACCOUNT_ID, AccountType, utcnow

log = logging.getLogger(__name__)

router = APIRouter(
    prefix="/api/v1", tags=["accounts"],
    responses={409: {"model": Message, "description": "Accounts are not enabled here."}},
)

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Message}}
BAD_JSON: dict[int | str, dict[str, Any]] = {
    400: {"model": Message, "description": "The body is not JSON (or not UTF-8)."}
}


def _accounts_mode(request: Request) -> None:
    services: Services = request.app.state.services
    mode = services.settings.auth_mode
    if mode != "accounts":
        raise HTTPException(409, NOT_ENABLED.format(mode=mode))


def _account(account: account_store.Account) -> AccountOut:
    return AccountOut(
        account_id=account.account_id, login=account.login, account_type=account.account_type,
        description=account.description, created_at=account.created_at,
    )


def _token(token: account_store.Token) -> TokenOut:
    return TokenOut(
        token_id=token.token_id, description=token.description, permissions=token.permissions,
        expiration_time=token.expiration_time, visibility_area=token.visibility_area,
        created_at=token.created_at,
    )


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


# accounts (admins)

@router.post("/accounts", status_code=201, summary="Create an account", responses=BAD_JSON)
def create_account(
    body: AccountIn, request: Request, services: ServicesDep
) -> AccountOut:
    """A new account; its login must be unused (409 otherwise)."""
    _accounts_mode(request)
    try:
        account = account_store.create_account(
            services.db, login=body.login, password=body.password,
            account_type=body.account_type, description=body.description,
        )
    except account_store.LoginTaken:
        raise HTTPException(409, f"login {body.login!r} is taken") from None
    return _account(account)


@router.get("/accounts", summary="List accounts")
def list_accounts(
    request: Request,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="Accounts to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size, 1–200.")] = 50,
) -> AccountList:
    _accounts_mode(request)
    total, accounts = account_store.list_accounts(services.db, offset=offset, limit=limit)
    return AccountList(total=total, accounts=[_account(a) for a in accounts])


@router.get("/accounts/{account_id}", summary="One account", responses=NOT_FOUND)
def get_account(account_id: str, request: Request, services: ServicesDep) -> AccountOut:
    _accounts_mode(request)
    account = account_store.get_account(services.db, account_id)
    if account is None:
        raise HTTPException(404, "Account not found")
    return _account(account)


@router.patch("/accounts/{account_id}", summary="Change an account",
              responses={**NOT_FOUND, **BAD_JSON})
def update_account(
    account_id: str, body: AccountPatch, request: Request, services: ServicesDep
) -> AccountOut:
    """An admin sets an account's password or description (e.g. gives `default`, which
    holds everything made before accounts, a password)."""
    _accounts_mode(request)
    account = account_store.update_account(
        services.db, account_id, password=body.password, description=body.description
    )
    if account is None:
        raise HTTPException(404, "Account not found")
    return _account(account)


@router.delete("/accounts/{account_id}", status_code=204, summary="Delete an account",
               responses={**NOT_FOUND, 409: {"model": Message}})
def delete_account(
    account_id: str, request: Request, services: ServicesDep, caller: CallerDep
) -> Response:
    """The account and everything it owns: tasks and their files, webhooks and their
    deliveries, settings, tokens. The `default` account and the caller's own are kept
    (409)."""
    _accounts_mode(request)
    if account_id in (DEFAULT_ACCOUNT_ID, caller.account_id):
        raise HTTPException(409, "the default account and your own account cannot be deleted")
    keys = account_store.delete_account_rows(services.db, account_id)
    if keys is None:
        raise HTTPException(404, "Account not found")
    gone = 0
    for key in keys:
        with contextlib.suppress(StoreUnavailable):
            services.store.delete(key)
            gone += 1
    if gone < len(keys):
        log.warning("account %s deleted; %d of its %d files could not be removed",
                    account_id, len(keys) - gone, len(keys))
    return Response(status_code=204)


# the caller's own account

@router.get("/account", summary="Your account")
def my_account(request: Request, services: ServicesDep, caller: CallerDep) -> MyAccountOut:
    """The account the credentials act for (`default` in `off` and `keys` mode), how
    they were given, and every permission they hold."""
    account = account_store.get_account(services.db, caller.account_id)
    if account is None:  # deleted while its token was being checked
        raise HTTPException(404, "Account not found")
    return MyAccountOut(
        **_account(account).model_dump(), via=caller.via,
        permissions=caller.all_permissions(),
        visibility_area="all" if caller.every_account else "account",
    )


@router.patch("/account", summary="Change your password or description", responses=BAD_JSON)
def update_my_account(
    body: AccountPatch, request: Request, services: ServicesDep, caller: CallerDep
) -> AccountOut:
    """Needs the account's password (Basic): a token cannot change its account."""
    _accounts_mode(request)
    if caller.via != "password":
        raise HTTPException(403, "changing an account needs its password (Basic), not a token")
    account = account_store.update_account(
        services.db, caller.account_id, password=body.password, description=body.description
    )
    if account is None:
        raise HTTPException(404, "Account not found")
    return _account(account)


# tokens

@router.post("/tokens", status_code=201, summary="Create a token", responses=BAD_JSON)
def create_token(
    body: TokenIn, request: Request, services: ServicesDep, caller: CallerDep
) -> NewTokenOut:
    """A token holding `permissions` (never more than its creator holds); the secret
    is in the answer and never shown again."""
    _accounts_mode(request)
    try:
        permissions = parse_permissions(body.permissions)
    except ValueError as exc:
        raise field_error("permissions", str(exc), body.permissions) from None
    lacking = within(caller, permissions)
    if lacking is not None:
        raise HTTPException(403, f"a token cannot hold more than its creator: {lacking}")
    if body.visibility_area == "all" and (
        caller.account_type is AccountType.USER or (caller.via == "token" and not
                                                   caller.every_account)
    ):
        raise HTTPException(
            403, "visibility_area all needs an advanced_user or admin account"
        )
    expires = _utc(body.expiration_time)
    if expires is not None and expires <= utcnow():
        raise field_error("expiration_time", "must be in the future", str(body.expiration_time))
    token, secret = account_store.create_token(
        services.db, caller.account_id, description=body.description, permissions=permissions,
        expiration_time=expires, visibility_area=body.visibility_area,
    )
    return NewTokenOut(**_token(token).model_dump(), token=secret)


@router.get("/tokens", summary="List your tokens")
def list_tokens(request: Request, services: ServicesDep, caller: CallerDep) -> list[TokenOut]:
    """The account's tokens, oldest first (secrets are never shown)."""
    _accounts_mode(request)
    return [_token(t) for t in account_store.list_tokens(services.db, caller.account_id)]


@router.get("/tokens/{token_id}", summary="One token", responses=NOT_FOUND)
def get_token(
    token_id: str, request: Request, services: ServicesDep, caller: CallerDep
) -> TokenOut:
    _accounts_mode(request)
    token = account_store.get_token(services.db, caller.account_id, token_id)
    if token is None:
        raise HTTPException(404, "Token not found")
    return _token(token)


@router.patch(
    "/tokens/{token_id}", summary="Change a token", responses={**NOT_FOUND, **BAD_JSON}
)
def update_token(
    token_id: str, body: TokenPatch, request: Request, services: ServicesDep,
    caller: CallerDep,
) -> TokenOut:
    """Description, permissions (never more than the caller holds) or expiration."""
    _accounts_mode(request)
    changes = body.model_dump(exclude_unset=True)
    if "permissions" in changes:
        if changes["permissions"] is None:
            raise field_error("permissions", "must be an object", None)
        try:
            changes["permissions"] = parse_permissions(changes["permissions"])
        except ValueError as exc:
            raise field_error("permissions", str(exc), body.permissions) from None
        lacking = within(caller, changes["permissions"])
        if lacking is not None:
            raise HTTPException(403, f"a token cannot hold more than its creator: {lacking}")
    if "expiration_time" in changes:
        changes["expiration_time"] = _utc(changes["expiration_time"])
    if changes.get("description", "") is None:
        del changes["description"]
    token = account_store.update_token(services.db, caller.account_id, token_id, changes)
    if token is None:
        raise HTTPException(404, "Token not found")
    return _token(token)


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a token",
               responses=NOT_FOUND)
def delete_token(
    token_id: str, request: Request, services: ServicesDep, caller: CallerDep
) -> Response:
    """The token stops working at once, on every API process (each request looks its
    digest up in the database)."""
    _accounts_mode(request)
    if not account_store.delete_token(services.db, caller.account_id, token_id):
        raise HTTPException(404, "Token not found")
    return Response(status_code=204)
