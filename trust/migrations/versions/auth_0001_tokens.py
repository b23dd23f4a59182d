"""API tokens and their grants.

Revision ID: auth_0001
Revises:
Create Date: 2026-01-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "auth_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("auth",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_token",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_auth_token"),
    )
    op.create_table(
        "auth_grant",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=True),
        sa.Column("resource_ids", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_auth_grant"),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["auth_token.id"],
            name="fk_auth_grant_token_id_auth_token",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_auth_grant_token_id", "auth_grant", ["token_id"])
    op.create_index("ix_auth_grant_role", "auth_grant", ["role"])


def downgrade() -> None:
    op.drop_table("auth_grant")
    op.drop_table("auth_token")
