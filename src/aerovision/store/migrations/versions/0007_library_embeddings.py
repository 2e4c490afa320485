"""Library images may carry a semantic embedding, and the name of the model that made it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("library_images") as batch:
        batch.add_column(sa.Column("embedding", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("embedder", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("library_images") as batch:
        batch.drop_column("embedder")
        batch.drop_column("embedding")
