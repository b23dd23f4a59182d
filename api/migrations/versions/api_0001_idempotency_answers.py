"""Idempotency-Key answers too large for the coordination store (stamped documents).

Revision ID: api_0001
Revises:
Create Date: 2026-11-22

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "api_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("api",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_idempotency_answer",
        sa.Column("ref", sa.String(32), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("ref", name="pk_api_idempotency_answer"),
    )
    op.create_index(
        "ix_api_idempotency_answer_expires_at", "api_idempotency_answer", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_table("api_idempotency_answer")
