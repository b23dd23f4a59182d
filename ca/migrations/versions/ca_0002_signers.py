"""Signers: a key-store key bound to a certificate and chain (issued here or imported).

Revision ID: ca_0002_signers
Revises: ca_0001
Create Date: 2026-11-22

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ca_0002_signers"
down_revision: str | Sequence[str] | None = "ca_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ca_signer",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("source", sa.String(12), nullable=False),
        sa.Column("certificate", sa.LargeBinary(), nullable=False),
        sa.Column("chain", sa.LargeBinary(), nullable=False),
        sa.Column("certificate_serial", sa.String(40), nullable=True),
        sa.Column("ca_id", sa.String(40), nullable=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ca_signer"),
    )
    op.create_index("ix_ca_signer_key_id", "ca_signer", ["key_id"])


def downgrade() -> None:
    op.drop_index("ix_ca_signer_key_id", table_name="ca_signer")
    op.drop_table("ca_signer")
