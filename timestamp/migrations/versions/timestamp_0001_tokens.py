"""TSA token log: one row per issued token, keyed by its serial number.

Revision ID: timestamp_0001
Revises:
Create Date: 2026-01-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "timestamp_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("timestamp",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tsa_token",
        sa.Column("serial_hex", sa.String(40), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("gen_time", sa.String(32), nullable=False),
        sa.Column("policy", sa.String(128), nullable=False),
        sa.Column("hash_algorithm", sa.String(16), nullable=False),
        sa.Column("imprint_hex", sa.String(128), nullable=False),
        sa.Column("token", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("serial_hex", name="pk_tsa_token"),
    )


def downgrade() -> None:
    op.drop_table("tsa_token")
