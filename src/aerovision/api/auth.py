"""Who is calling, and what they may do (SPEC-accounts.md).

Three modes (``AEROVISION_AUTH``): ``off`` — anyone, as the ``default`` account;
``keys`` — holders of a static key, as ``default`` with every permission;
``accounts`` — an account's password (Basic) or one of its tokens (Bearer,
``X-API-Key`` or ``?api_key=``; static keys still act as ``default``).

Every route of the API names what it needs exactly once, in :func:`route_needs`
(tool routes from the tool registry): a ``resource:action`` permission, any valid
credentials, an admin, or nothing (the UI shell, the docs, ``/health``). The
:func:`authorize` dependency, installed on the whole app, checks it before the
route runs; ``/openapi.json`` shows it on each operation (``x-permission``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal
from urllib.parse import parse_qsl

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute

from aerovision import wire
from aerovision.api.services import Services
from aerovision.store import accounts as account_store
from aerovision.store.models import DEFAULT_ACCOUNT_ID, AccountType, utcnow
from aerovision.store.scope import Owner
from aerovision.tools import TOOLS

RESOURCES: dict[str, tuple[str, ...]] = {
    "tasks": ("view", "creation", "deletion"),
    "settings": ("view", "modification"),
    "webhooks": ("view", "creation", "deletion"),
    "libraries": ("view", "creation", "modification", "deletion"),
    "recipes": ("view", "creation", "modification", "deletion"),
    "analyze": ("creation",),
    "events": ("view", "deletion"),
    "tokens": ("view", "creation", "modification", "deletion"),
    "accounts": ("view", "creation", "modification", "deletion"),
}
"""Resources and their actions; a token carries a subset. ``accounts`` (account
management) is AeroVision's addition to SPEC-accounts.md's table: only an admin
account holds it, and its tokens only when they say so."""

ADMIN_ONLY = frozenset({"accounts"})

READ_ACTIONS = frozenset({"view"})

AUTHENTICATED: Final = "authenticated"
"""Any valid credentials, no particular permission (the caller's own account, the tools)."""
OPEN: Final = "open"

KEY_PARAM = "api_key"

NOT_ENABLED = (
    "accounts are not enabled on this server (AEROVISION_AUTH={mode}); "
    "start it with AEROVISION_AUTH=accounts"
)


@dataclass(frozen=True)
class Permission:
    resource: str
    action: str

    def __str__(self) -> str:
        return f"{self.resource}:{self.action}"


Need = Permission | Literal["authenticated", "open"]


def _p(text: str) -> Permission:
    resource, action = text.split(":")
    if action not in RESOURCES.get(resource, ()):
        raise ValueError(f"unknown permission {text}")
    return Permission(resource, action)


ROUTES: dict[tuple[str, str], Need] = {
    ("GET", "/api/v1/tasks"): _p("tasks:view"),
    ("GET", "/api/v1/tasks/{uid}"): _p("tasks:view"),
    ("GET", "/uploads/{path:path}"): _p("tasks:view"),
    ("GET", "/thumbnails/{path:path}"): _p("tasks:view"),
    ("GET", "/results/{path:path}"): _p("tasks:view"),
    ("GET", "/api/v1/webhooks"): _p("webhooks:view"),
    ("POST", "/api/v1/webhooks"): _p("webhooks:creation"),
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): _p("webhooks:deletion"),
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): _p("webhooks:view"),
    ("POST", "/api/v1/libraries"): _p("libraries:creation"),
    ("GET", "/api/v1/libraries"): _p("libraries:view"),
    ("GET", "/api/v1/libraries/{library_id}"): _p("libraries:view"),
    ("PATCH", "/api/v1/libraries/{library_id}"): _p("libraries:modification"),
    ("DELETE", "/api/v1/libraries/{library_id}"): _p("libraries:deletion"),
    ("POST", "/api/v1/libraries/{library_id}/images"): _p("libraries:modification"),
    ("GET", "/api/v1/libraries/{library_id}/images"): _p("libraries:view"),
    ("DELETE", "/api/v1/libraries/{library_id}/images"): _p("libraries:modification"),
    ("GET", "/api/v1/libraries/{library_id}/images/{image_id}"): _p("libraries:view"),
    ("PATCH", "/api/v1/libraries/{library_id}/images/{image_id}"):
        _p("libraries:modification"),
    ("DELETE", "/api/v1/libraries/{library_id}/images/{image_id}"):
        _p("libraries:modification"),
    ("POST", "/api/v1/libraries/{library_id}/search"): _p("libraries:view"),
    ("GET", "/libraries/{path:path}"): _p("libraries:view"),
    ("POST", "/RTSAsService/signup"): _p("libraries:creation"),
    ("POST", "/RTSAsService/add"): _p("libraries:modification"),
    ("POST", "/RTSAsService/update"): _p("libraries:modification"),
    ("POST", "/RTSAsService/search"): _p("libraries:view"),
    ("POST", "/RTSAsService/remove"): _p("libraries:modification"),
    ("POST", "/RTSAsService/snapshot"): _p("libraries:view"),
    ("POST", "/GeneralClassifyService/classify"): _p("libraries:view"),
    ("GET", "/api/v1/tools"): AUTHENTICATED,
    ("GET", "/api/v1/version"): AUTHENTICATED,
    ("GET", "/metrics"): _p("tasks:view"),
    ("GET", "/health"): OPEN,
    ("GET", "/api/v1/account"): AUTHENTICATED,
    ("PATCH", "/api/v1/account"): AUTHENTICATED,
    ("POST", "/api/v1/accounts"): _p("accounts:creation"),
    ("GET", "/api/v1/accounts"): _p("accounts:view"),
    ("GET", "/api/v1/accounts/{account_id}"): _p("accounts:view"),
    ("PATCH", "/api/v1/accounts/{account_id}"): _p("accounts:modification"),
    ("DELETE", "/api/v1/accounts/{account_id}"): _p("accounts:deletion"),
    ("POST", "/api/v1/tokens"): _p("tokens:creation"),
    ("GET", "/api/v1/tokens"): _p("tokens:view"),
    ("GET", "/api/v1/tokens/{token_id}"): _p("tokens:view"),
    ("PATCH", "/api/v1/tokens/{token_id}"): _p("tokens:modification"),
    ("DELETE", "/api/v1/tokens/{token_id}"): _p("tokens:deletion"),
}
"""What each route that is not a tool's needs."""


def route_needs(method: str, path: str) -> Need | None:
    """What ``method path`` (a route's path template) needs; None: not an API route."""
    method = "GET" if method == "HEAD" else method
    for name, tool in TOOLS.items():
        if path == f"/api/v1/match/{name}" and method == "POST":
            return _p(tool.permission)
        if path == f"/api/v1/settings/{name}":
            return _p("settings:view" if method == "GET" else "settings:modification")
    return ROUTES.get((method, path))


@dataclass(frozen=True)
class Caller:
    """The credentials of a request, resolved."""

    account_id: str
    account_type: AccountType
    via: Literal["off", "key", "password", "token"]
    permissions: Mapping[str, frozenset[str]] | None = None
    """A token's permissions; None: every permission of the account."""
    every_account: bool = False
    token_id: str | None = None
    login: str = "default"

    def allows(self, permission: Permission) -> bool:
        if permission.resource in ADMIN_ONLY and self.account_type is not AccountType.ADMIN:
            return False
        if self.permissions is None:
            return True
        return permission.action in self.permissions.get(permission.resource, frozenset())

    def owner(self, *, read: bool) -> Owner:
        """Whose rows this caller's request may see (``read``) or change."""
        return Owner(self.account_id, every_account=read and self.every_account)

    def all_permissions(self) -> dict[str, list[str]]:
        """Every permission these credentials hold."""
        return {
            resource: [a for a in actions if self.allows(Permission(resource, a))]
            for resource, actions in RESOURCES.items()
            if any(self.allows(Permission(resource, a)) for a in actions)
        }


OFF = Caller(DEFAULT_ACCOUNT_ID, AccountType.USER, "off")
KEY = Caller(DEFAULT_ACCOUNT_ID, AccountType.USER, "key")


class Unauthorized(HTTPException):
    def __init__(self, detail: str, mode: str) -> None:
        scheme = 'Basic realm="aerovision", Bearer' if mode == "accounts" else "Bearer"
        super().__init__(401, detail, headers={"WWW-Authenticate": scheme})


@dataclass
class Given:
    """The credentials a request brought (at most one kind is used: Authorization
    first, then X-API-Key, then ?api_key=)."""

    basic: tuple[str, str] | None = None
    secret: str | None = None
    problems: list[str] = field(default_factory=list)


def given_credentials(request: Request) -> Given:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return Given(secret=value.strip())
        if scheme.lower() == "basic":
            try:
                login, sep, password = base64.b64decode(value.strip(), validate=True).decode(
                    "utf-8"
                ).partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return Given(problems=["Authorization: Basic is not base64 of login:password"])
            if not sep:
                return Given(problems=["Authorization: Basic is not base64 of login:password"])
            return Given(basic=(login, password))
        return Given(problems=[f"Authorization scheme {scheme!r} is not Basic or Bearer"])
    header = request.headers.get("x-api-key")
    if header and header.strip():
        return Given(secret=header.strip())
    for key, value in parse_qsl(request.scope.get("query_string", b"").decode("latin-1")):
        if key == KEY_PARAM and value:
            return Given(secret=value)
    return Given()


def _static_key(secret: str, keys: list[str]) -> bool:
    found = False
    for key in keys:  # constant time, every key compared
        found |= hmac.compare_digest(secret.encode(), key.encode())
    return found


def _resolve_account_credentials(services: Services, given: Given) -> Caller:
    """accounts mode: the caller, or Unauthorized (runs in a thread: database reads,
    and a password hash check on a first sign-in)."""
    db = services.db
    if given.basic is not None:
        login, password = given.basic
        account = account_store.check_password(db, login, password)
        if account is None:
            raise Unauthorized("wrong login or password", "accounts")
        return Caller(account.account_id, account.account_type, "password", login=account.login)
    assert given.secret is not None
    if _static_key(given.secret, services.settings.api_key_list):
        return KEY
    token = account_store.token_by_secret(db, given.secret)
    if token is None:
        raise Unauthorized("unknown or revoked token", "accounts")
    if token.expiration_time is not None and token.expiration_time <= utcnow():
        raise Unauthorized(
            f"token expired at {wire.timestamp(token.expiration_time)} UTC", "accounts"
        )
    account = account_store.get_account(db, token.account_id)
    if account is None:
        raise Unauthorized("unknown or revoked token", "accounts")
    return Caller(
        account.account_id, account.account_type, "token",
        permissions={r: frozenset(a) for r, a in token.permissions.items()},
        every_account=token.visibility_area == "all"
        and account.account_type is not AccountType.USER,
        token_id=token.token_id, login=account.login,
    )


async def resolve_caller(request: Request) -> Caller:
    """The request's caller; Unauthorized when credentials are needed and missing."""
    services: Services = request.app.state.services
    mode = services.settings.auth_mode
    if mode == "off":
        return OFF
    given = given_credentials(request)
    if given.problems:
        raise Unauthorized(given.problems[0], mode)
    if mode == "keys":
        if given.secret is not None and _static_key(given.secret, services.settings.api_key_list):
            return KEY
        raise Unauthorized(
            "Missing or invalid API key: send Authorization: Bearer <key>, "
            "X-API-Key: <key>, or ?api_key=<key>", mode,
        )
    if given.basic is None and given.secret is None:
        raise Unauthorized(
            "credentials needed: Authorization: Basic <login:password> or Bearer <token>, "
            "X-API-Key: <token>, or ?api_key=<token>", mode,
        )
    return await run_in_threadpool(_resolve_account_credentials, services, given)


async def authorize(request: Request) -> None:
    """App-wide dependency: the route's need (see :func:`route_needs`) is met, or 401/403."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema:
        return
    need = route_needs(request.method, route.path)
    if need is None:
        raise RuntimeError(f"{request.method} {route.path} declares no permission")
    if need == OPEN:
        return
    caller = await resolve_caller(request)
    request.state.caller = caller
    if need == AUTHENTICATED:
        return
    assert isinstance(need, Permission)
    if need.resource in ADMIN_ONLY:
        mode = request.app.state.services.settings.auth_mode
        if mode != "accounts":
            raise HTTPException(409, NOT_ENABLED.format(mode=mode))
        if caller.account_type is not AccountType.ADMIN:
            raise HTTPException(403, "only an admin account may manage accounts")
    if not caller.allows(need):
        raise HTTPException(403, f"token lacks permission {need}")


def get_caller(request: Request) -> Caller:
    caller: Caller = getattr(request.state, "caller", OFF)
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


def check_routes(app: FastAPI) -> None:
    """Every API route names its need (start-up fails on one that does not)."""
    missing = [
        f"{method} {route.path}"
        for route in app.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in sorted(route.methods or ())
        if route_needs(method, route.path) is None
    ]
    if missing:
        raise RuntimeError("routes without a permission in api/auth.py: " + ", ".join(missing))


def document_permissions(schema: dict[str, Any]) -> dict[str, Any]:
    """Each operation of the OpenAPI ``schema`` says what it needs (``x-permission``)."""
    for path, operations in schema.get("paths", {}).items():
        template = path.replace("{path}", "{path:path}")
        for method, operation in operations.items():
            need = route_needs(method.upper(), template)
            if need is None:
                continue
            text = str(need)
            operation["x-permission"] = text
            responses = operation.setdefault("responses", {})
            if need != OPEN:
                responses.setdefault("401", _problem("Missing, invalid or expired credentials."))
            if need not in (OPEN, AUTHENTICATED):
                responses.setdefault("403", _problem("The credentials lack the permission."))
            line = {
                OPEN: "Needs no credentials.",
                AUTHENTICATED: "Needs valid credentials (any permission).",
            }.get(text, f"Needs the permission `{text}`.")
            if isinstance(need, Permission) and need.resource in ADMIN_ONLY:
                line += " Only an admin account holds it."
            operation["description"] = (operation.get("description", "") + "\n\n" + line).strip()
    return schema


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Message"}}},
    }


def parse_permissions(value: Mapping[str, Any]) -> dict[str, list[str]]:
    """A token's ``permissions`` checked against :data:`RESOURCES`; ValueError naming
    the first unknown resource or action."""
    out: dict[str, list[str]] = {}
    for resource, actions in value.items():
        if resource not in RESOURCES:
            raise ValueError(
                f"unknown resource {resource!r}; known: {', '.join(RESOURCES)}"
            )
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise ValueError(f"{resource}: a list of actions")
        for action in actions:
            if action not in RESOURCES[resource]:
                raise ValueError(
                    f"{resource}: unknown action {action!r}; known: "
                    f"{', '.join(RESOURCES[resource])}"
                )
        out[resource] = sorted(set(actions))
    return out


def within(caller: Caller, permissions: Mapping[str, list[str]]) -> str | None:
    """The first permission in ``permissions`` that ``caller`` does not hold, or None."""
    for resource, actions in permissions.items():
        for action in actions:
            if not caller.allows(Permission(resource, action)):
                return f"{resource}:{action}"
    return None
