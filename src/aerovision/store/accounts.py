"""Accounts and their tokens (SPEC-accounts.md).

Passwords are kept as argon2id hashes, token secrets only as their SHA-256: the
database never holds a credential that works.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from aerovision.store.db import Database
from aerovision.store.models import (
    AccountRow,
    AccountType,
    DeliveryRow,
    SettingsRow,
    TaskRow,
    TokenRow,
    WebhookRow,
    utcnow,
)

MIN_PASSWORD = 8
TOKEN_PREFIX = "av_"
"""Secrets start with it, so a leaked one is easy to recognise (and to scan for)."""

_hasher = PasswordHasher()


class LoginTaken(Exception):
    pass


@dataclass(frozen=True)
class Account:
    account_id: str
    login: str
    account_type: AccountType
    description: str
    created_at: datetime
    has_password: bool

    @classmethod
    def from_row(cls, row: AccountRow) -> Account:
        return cls(
            account_id=row.account_id, login=row.login,
            account_type=AccountType(row.account_type), description=row.description,
            created_at=row.created_at, has_password=row.password_hash is not None,
        )


@dataclass(frozen=True)
class Token:
    token_id: str
    account_id: str
    description: str
    permissions: dict[str, list[str]]
    expiration_time: datetime | None
    visibility_area: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Token:
        """From an ORM ``TokenRow`` or a Core row of the tokens table."""
        return cls(
            token_id=row.token_id, account_id=row.account_id, description=row.description,
            permissions={k: list(v) for k, v in row.permissions.items()},
            expiration_time=row.expiration_time, visibility_area=row.visibility_area,
            created_at=row.created_at,
        )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# accounts

def create_account(
    db: Database, *, login: str, password: str | None, account_type: AccountType,
    description: str = "",
) -> Account:
    row = AccountRow(
        account_id=str(uuid.uuid4()), login=login,
        password_hash=hash_password(password) if password is not None else None,
        account_type=account_type.value, description=description, created_at=utcnow(),
    )
    try:
        with db.write() as session:
            session.add(row)
    except IntegrityError:
        raise LoginTaken(login) from None
    return Account.from_row(row)


def get_account(db: Database, account_id: str) -> Account | None:
    with db.read() as session:
        row = session.get(AccountRow, account_id)
        return Account.from_row(row) if row is not None else None


def get_account_by_login(db: Database, login: str) -> Account | None:
    with db.read() as session:
        row = session.scalars(select(AccountRow).where(AccountRow.login == login)).first()
        return Account.from_row(row) if row is not None else None


def list_accounts(db: Database, *, offset: int, limit: int) -> tuple[int, list[Account]]:
    with db.read() as session:
        total = session.scalar(select(func.count()).select_from(AccountRow)) or 0
        rows = session.scalars(
            select(AccountRow).order_by(AccountRow.created_at, AccountRow.login)
            .offset(offset).limit(limit)
        ).all()
        return total, [Account.from_row(r) for r in rows]


def update_account(
    db: Database, account_id: str, *, password: str | None = None,
    description: str | None = None,
) -> Account | None:
    with db.write() as session:
        row = session.get(AccountRow, account_id)
        if row is None:
            return None
        if password is not None:
            row.password_hash = hash_password(password)
        if description is not None:
            row.description = description
        return Account.from_row(row)


def delete_account_rows(db: Database, account_id: str) -> list[str] | None:
    """Delete the account, its tokens, settings and webhooks (with their deliveries) and
    its tasks; return the store keys of the deleted tasks' files (the caller's to
    remove), or None if there is no such account."""
    with db.write() as session:
        row = session.get(AccountRow, account_id)
        if row is None:
            return None
        files = session.execute(
            select(TaskRow.input_files, TaskRow.thumbnails, TaskRow.result_files)
            .where(TaskRow.account_id == account_id)
        ).all()
        keys = [key for listed in files for names in listed for key in names]
        hooks = select(WebhookRow.id).where(WebhookRow.account_id == account_id)
        session.execute(delete(DeliveryRow).where(DeliveryRow.webhook_id.in_(hooks)))
        session.execute(delete(WebhookRow).where(WebhookRow.account_id == account_id))
        session.execute(delete(SettingsRow).where(SettingsRow.account_id == account_id))
        session.execute(delete(TokenRow).where(TokenRow.account_id == account_id))
        session.execute(delete(TaskRow).where(TaskRow.account_id == account_id))
        session.delete(row)
    return keys


def ensure_admin(db: Database, login: str, password: str) -> bool:
    """Create the admin ``login`` unless an account of that login exists (it is never
    overwritten); True if created."""
    if get_account_by_login(db, login) is not None:
        return False
    try:
        create_account(db, login=login, password=password, account_type=AccountType.ADMIN,
                       description="First admin (AEROVISION_ADMIN_LOGIN)")
    except LoginTaken:  # another process made it first
        return False
    return True


@dataclass
class _Verified:
    """Passwords checked lately, by the digest of ``login:password`` → the stored hash
    they matched: argon2 costs ~50 ms by design, and a client sending Basic on every
    request must not pay it every time. A changed password or a deleted account has
    another (or no) stored hash, so the cache can never let an old password in."""

    seen: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    size: int = 1024


_verified = _Verified()


def check_password(db: Database, login: str, password: str) -> Account | None:
    """The account whose login and password these are, or None."""
    with db.read() as session:
        row = session.scalars(select(AccountRow).where(AccountRow.login == login)).first()
        if row is None or row.password_hash is None:
            return None
        stored = row.password_hash
        account = Account.from_row(row)
    key = secret_digest(f"{login}\0{password}")
    with _verified.lock:
        if _verified.seen.get(key) == stored:
            return account
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    with _verified.lock:
        if len(_verified.seen) >= _verified.size:
            _verified.seen.clear()
        _verified.seen[key] = stored
    return account


# tokens

def create_token(
    db: Database, account_id: str, *, description: str, permissions: dict[str, list[str]],
    expiration_time: datetime | None, visibility_area: str,
) -> tuple[Token, str]:
    """The new token and its secret (shown once, stored only as a digest)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = TokenRow(
        token_id=str(uuid.uuid4()), account_id=account_id, secret_sha256=secret_digest(secret),
        description=description, permissions=permissions, expiration_time=expiration_time,
        visibility_area=visibility_area, created_at=utcnow(),
    )
    with db.write() as session:
        session.add(row)
    return Token.from_row(row), secret


def token_by_secret(db: Database, secret: str) -> Token | None:
    with db.engine.connect() as conn:
        row = conn.execute(
            select(TokenRow).where(TokenRow.secret_sha256 == secret_digest(secret))
        ).first()
    return Token.from_row(row) if row is not None else None


def list_tokens(db: Database, account_id: str) -> list[Token]:
    with db.read() as session:
        rows = session.scalars(
            select(TokenRow).where(TokenRow.account_id == account_id)
            .order_by(TokenRow.created_at, TokenRow.token_id)
        ).all()
        return [Token.from_row(r) for r in rows]


def get_token(db: Database, account_id: str, token_id: str) -> Token | None:
    with db.read() as session:
        row = session.get(TokenRow, token_id)
        if row is None or row.account_id != account_id:
            return None
        return Token.from_row(row)


def update_token(db: Database, account_id: str, token_id: str, changes: dict[str, Any]) -> (
    Token | None
):
    with db.write() as session:
        row = session.get(TokenRow, token_id)
        if row is None or row.account_id != account_id:
            return None
        for name, value in changes.items():
            setattr(row, name, value)
        return Token.from_row(row)


def delete_token(db: Database, account_id: str, token_id: str) -> bool:
    with db.write() as session:
        result = session.execute(
            delete(TokenRow).where(TokenRow.token_id == token_id,
                                   TokenRow.account_id == account_id)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


