"""Per-tool default parameters, persisted and shared by every process."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from aerovision import params as tool_params
from aerovision.store.db import Database
from aerovision.store.models import SettingsRow, utcnow

_STORED = select(SettingsRow.params).where(SettingsRow.tool == bindparam("tool"))


def get_tool_settings(db: Database, tool: str) -> dict[str, Any]:
    """The current settings of ``tool``: stored values over the built-in defaults.

    Read on every submission, so a plain statement rather than an ORM load.
    """
    with db.engine.connect() as conn:
        stored = conn.execute(_STORED, {"tool": tool}).scalar() or {}
    return tool_params.merge(tool, tool_params.defaults(tool), stored).model_dump()


def update_tool_settings(db: Database, tool: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply ``changes`` (already validated field by field) and return the new settings.

    Read and write happen in one write transaction, so two concurrent partial
    updates of different fields both survive.
    """
    with db.write() as session:
        row = session.get(SettingsRow, tool, with_for_update=True)
        stored = dict(row.params) if row is not None else {}
        current = tool_params.merge(tool, tool_params.defaults(tool), stored)
        new = tool_params.merge(tool, current.model_dump(), changes).model_dump()
        if row is None:
            session.add(SettingsRow(tool=tool, params=new, updated_at=utcnow()))
        else:
            row.params = new
            row.updated_at = utcnow()
    return new
