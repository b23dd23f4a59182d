"""Certificate authority: dual certificates, the escrowed key of an encryption certificate
and the signing certificate it was issued with.

Revision ID: ca_0003
Revises: ca_0002_signers
Create Date: 2026-11-22

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ca_0003"
down_revision: str | Sequence[str] | None = "ca_0002_signers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a table in every way Alembic may need.
    with op.batch_alter_table("ca_certificate") as batch:
        batch.add_column(sa.Column("escrow_key_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("pair_serial", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ca_certificate") as batch:
        batch.drop_column("pair_serial")
        batch.drop_column("escrow_key_id")
