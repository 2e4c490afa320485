"""Which account's rows a statement may touch: the one place account scoping lives.

Every table of an account's data has an ``account_id`` column (the
:class:`~aerovision.store.models.Owned` mixin). A store function that answers a
caller takes an :class:`Owner` and passes each statement through
:func:`restrict`, which adds ``account_id = …`` for every owned table the
statement reads, updates or deletes. A row of another account is then exactly
as absent as a missing one (the API answers 404 for both). Workers, the reaper
and the notifier act for the deployment and use no owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Delete, Join, Select, Table, Update

from aerovision.store.models import DEFAULT_ACCOUNT_ID, Base, Owned

S = TypeVar("S", Select, Update, Delete)  # type: ignore[type-arg]


@dataclass(frozen=True)
class Owner:
    """The account a request acts for; ``every_account``: it may read (never change)
    every account's rows (a token of ``visibility_area: all``)."""

    account_id: str
    every_account: bool = False


DEFAULT = Owner(DEFAULT_ACCOUNT_ID)
"""The owner of every request in ``off`` and ``keys`` mode."""


OWNED_TABLES = frozenset(
    str(getattr(mapper.local_table, "name", ""))
    for mapper in Base.registry.mappers
    if issubclass(mapper.class_, Owned)
)
"""The tables of an account's data."""


def restrict(stmt: S, owner: Owner) -> S:
    """``stmt`` limited to ``owner``'s rows of every owned table it names."""
    if owner.every_account and isinstance(stmt, Select):
        return stmt
    tables = [stmt.table] if isinstance(stmt, (Update, Delete)) else stmt.get_final_froms()
    for table in _tables(tables):
        if table.name in OWNED_TABLES:
            stmt = stmt.where(table.c.account_id == owner.account_id)
    return stmt


def _tables(froms: Sequence[object]) -> list[Table]:
    found: list[Table] = []
    for item in froms:
        if isinstance(item, Table):
            found.append(item)
        elif isinstance(item, Join):  # its sides (a subquery scopes its own statement)
            found += _tables([item.left, item.right])
    return found
