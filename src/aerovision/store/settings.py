"""Per-tool default parameters, persisted and shared by every process.

Layers, each over the one before: the tool's built-in defaults, the ``default``
account's stored settings (the deployment's defaults: what ``off`` and ``keys``
mode edit), and an account's own changes (only the fields it set, so a field it
never touched follows the deployment's default when that changes).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from aerovision import params as tool_params
from aerovision.store.db import Database
from aerovision.store.models import DEFAULT_ACCOUNT_ID, SettingsRow, utcnow

_STORED = select(SettingsRow.account_id, SettingsRow.params).where(
    SettingsRow.tool == bindparam("tool"),
    SettingsRow.account_id.in_([DEFAULT_ACCOUNT_ID, bindparam("account_id")]),
)


def get_tool_settings(
    db: Database, tool: str, account_id: str = DEFAULT_ACCOUNT_ID
) -> dict[str, Any]:
    """The settings of ``tool`` that ``account_id``'s requests start from.

    Read on every submission, so a plain statement rather than an ORM load.
    """
    with db.engine.connect() as conn:
        found = conn.execute(_STORED, {"tool": tool, "account_id": account_id}).all()
    rows: dict[str, Any] = dict(found)
    current = tool_params.merge(
        tool, tool_params.defaults(tool), rows.get(DEFAULT_ACCOUNT_ID) or {}
    ).model_dump()
    if account_id != DEFAULT_ACCOUNT_ID and rows.get(account_id):
        current = tool_params.merge(tool, current, rows[account_id]).model_dump()
    return current


def update_tool_settings(
    db: Database, tool: str, changes: dict[str, Any], account_id: str = DEFAULT_ACCOUNT_ID
) -> dict[str, Any]:
    """Apply ``changes`` (already validated field by field) for ``account_id`` and
    return its settings now.

    Read and write happen in one write transaction, so two concurrent partial
    updates of different fields both survive.
    """
    with db.write() as session:
        row = session.get(SettingsRow, (account_id, tool), with_for_update=True)
        stored = dict(row.params) if row is not None else {}
        if account_id == DEFAULT_ACCOUNT_ID:
            current = tool_params.merge(tool, tool_params.defaults(tool), stored)
            new = tool_params.merge(tool, current.model_dump(), changes).model_dump()
        else:  # the account's own fields only; the rest follows the deployment's defaults
            new = {**stored, **changes}
            base = session.get(SettingsRow, (DEFAULT_ACCOUNT_ID, tool))
            deployment = tool_params.merge(
                tool, tool_params.defaults(tool), dict(base.params) if base else {}
            ).model_dump()
            tool_params.merge(tool, deployment, new)  # the whole set must still be valid
        if row is None:
            session.add(
                SettingsRow(account_id=account_id, tool=tool, params=new, updated_at=utcnow())
            )
        else:
            row.params = new
            row.updated_at = utcnow()
    return get_tool_settings(db, tool, account_id)
