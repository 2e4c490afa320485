"""Image libraries: libraries, their images (with what rebuilds their index entries)
and the removals that other processes' indexes catch up with.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DEFAULT_ACCOUNT_ID = "00000000-0000-0000-0000-000000000000"


def _account() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("account_id", sa.String(36), nullable=False, server_default=DEFAULT_ACCOUNT_ID)


def upgrade() -> None:
    op.create_table(
        "libraries",
        sa.Column("library_id", sa.String(36), primary_key=True),
        _account(),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("generation", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("account_id", "name", name="uq_libraries_account_name"),
    )
    op.create_index("ix_libraries_account_id", "libraries", ["account_id"])
    op.create_table(
        "library_images",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        _account(),
        sa.Column("image_id", sa.String(36), nullable=False, unique=True),
        sa.Column("library_id", sa.String(36), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("contsign", sa.BigInteger(), nullable=False),
        sa.Column("phash", sa.BigInteger(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("features", sa.LargeBinary(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("brief", sa.Text(), nullable=False, server_default=""),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("tags_text", sa.Text(), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=True),
        sa.Column("file_key", sa.Text(), nullable=False),
        sa.Column("thumbnail_key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("library_id", "external_id", name="uq_library_images_external_id"),
    )
    op.create_index("ix_library_images_account_id", "library_images", ["account_id"])
    op.create_index("ix_library_images_library_generation", "library_images",
                    ["library_id", "generation"])
    op.create_index("ix_library_images_library_contsign", "library_images",
                    ["library_id", "contsign"])
    op.create_table(
        "library_removals",
        sa.Column("library_id", sa.String(36), primary_key=True),
        sa.Column("generation", sa.BigInteger(), primary_key=True),
        _account(),
        sa.Column("image", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_library_removals_account_id", "library_removals", ["account_id"])


def downgrade() -> None:
    op.drop_table("library_removals")
    op.drop_table("library_images")
    op.drop_table("libraries")
