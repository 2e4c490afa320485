"""Tasks, tool settings, worker heartbeats and the database-backed queue.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tool", sa.String(32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("input_files", sa.JSON(), nullable=False),
        sa.Column("thumbnails", sa.JSON(), nullable=False),
        sa.Column("result_files", sa.JSON(), nullable=False),
        sa.Column("result_data", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("worker_id", sa.String(128), nullable=True),
    )
    op.create_index("ix_tasks_uid", "tasks", ["uid"], unique=True)
    op.create_index("ix_tasks_status", "tasks", ["status"])
    op.create_table(
        "tool_settings",
        sa.Column("tool", sa.String(32), primary_key=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("task_uid", sa.String(36), nullable=True),
    )
    op.create_index("ix_workers_last_seen", "workers", ["last_seen"])
    op.create_table(
        "queue_items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(36), nullable=False, unique=True),
        sa.Column("available_at", sa.Float(), nullable=False),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_expires", sa.Float(), nullable=True),
    )
    op.create_index("ix_queue_items_available_at", "queue_items", ["available_at"])
    op.create_index("ix_queue_items_lease_expires", "queue_items", ["lease_expires"])


def downgrade() -> None:
    op.drop_table("queue_items")
    op.drop_table("workers")
    op.drop_table("tool_settings")
    op.drop_table("tasks")
