"""TSA units: one row per key generation of each unit (key id, certificate, chain, policy).

Revision ID: timestamp_0002
Revises: timestamp_0001
Create Date: 2026-11-22

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "timestamp_0002"
down_revision: str | Sequence[str] | None = "timestamp_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tsa_unit",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("ca_id", sa.String(64), nullable=False),
        sa.Column("certificate", sa.LargeBinary(), nullable=False),
        sa.Column("chain", sa.LargeBinary(), nullable=False),
        sa.Column("policy", sa.String(128), nullable=False),
        sa.Column("accuracy_us", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("retired_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", "generation", name="pk_tsa_unit"),
    )


def downgrade() -> None:
    op.drop_table("tsa_unit")
