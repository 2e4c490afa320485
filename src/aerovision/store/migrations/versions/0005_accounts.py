"""Accounts and tokens; tasks, webhooks and settings belong to an account.

Every existing row goes to the ``default`` account, so a deployment switched to
``AEROVISION_AUTH=accounts`` keeps all of its data there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

DEFAULT_ACCOUNT_ID = "00000000-0000-0000-0000-000000000000"


def upgrade() -> None:
    accounts = op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(36), primary_key=True),
        sa.Column("login", sa.String(255), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("account_type", sa.String(16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.bulk_insert(accounts, [{
        "account_id": DEFAULT_ACCOUNT_ID, "login": "default", "password_hash": None,
        "account_type": "user", "description": "Everything made without an account.",
        "created_at": datetime.now(UTC).replace(tzinfo=None),
    }])
    op.create_table(
        "tokens",
        sa.Column("token_id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(36), nullable=False, index=True),
        sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("permissions", sa.JSON(), nullable=False),
        sa.Column("expiration_time", sa.DateTime(), nullable=True),
        sa.Column("visibility_area", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    for table in ("tasks", "webhooks"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column(
                "account_id", sa.String(36), nullable=False, server_default=DEFAULT_ACCOUNT_ID
            ))
            batch.create_index(f"ix_{table}_account_id", ["account_id"])
    # settings: one row per (account, tool); the old rows are the default account's
    op.create_table(
        "tool_settings_v2",
        sa.Column("account_id", sa.String(36), primary_key=True),
        sa.Column("tool", sa.String(32), primary_key=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.execute(
        "INSERT INTO tool_settings_v2 (account_id, tool, params, updated_at) "
        f"SELECT '{DEFAULT_ACCOUNT_ID}', tool, params, updated_at FROM tool_settings"
    )
    op.drop_table("tool_settings")
    op.rename_table("tool_settings_v2", "tool_settings")


def downgrade() -> None:
    op.create_table(
        "tool_settings_v1",
        sa.Column("tool", sa.String(32), primary_key=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.execute(
        "INSERT INTO tool_settings_v1 (tool, params, updated_at) SELECT tool, params, "
        f"updated_at FROM tool_settings WHERE account_id = '{DEFAULT_ACCOUNT_ID}'"
    )
    op.drop_table("tool_settings")
    op.rename_table("tool_settings_v1", "tool_settings")
    for table in ("webhooks", "tasks"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_account_id")
            batch.drop_column("account_id")
    op.drop_table("tokens")
    op.drop_table("accounts")
