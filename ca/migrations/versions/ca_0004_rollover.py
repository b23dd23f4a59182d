"""Certificate authority: CA key rollover. A CA's key generations: the current one stays
in ``ca_authority`` (``generation``), retired ones move to ``ca_key_generation`` with their
CRL, OCSP responder and link certificates; each certificate records the generation
(``ca_generation``) of the key that signed it.

Revision ID: ca_0004
Revises: ca_0003
Create Date: 2026-11-22

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ca_0004"
down_revision: str | Sequence[str] | None = "ca_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a table in every way Alembic may need.
    with op.batch_alter_table("ca_authority") as batch:
        batch.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("ca_certificate") as batch:
        batch.add_column(
            sa.Column("ca_generation", sa.Integer(), nullable=False, server_default="1")
        )
    op.create_table(
        "ca_key_generation",
        sa.Column("ca_id", sa.String(40), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("certificate_serial", sa.String(40), nullable=False),
        sa.Column("certificate", sa.LargeBinary(), nullable=False),
        sa.Column("ocsp_key_id", sa.String(64), nullable=True),
        sa.Column("ocsp_certificate", sa.LargeBinary(), nullable=True),
        sa.Column("crl", sa.LargeBinary(), nullable=True),
        sa.Column("crl_next_update", sa.DateTime(), nullable=True),
        sa.Column("new_with_old", sa.LargeBinary(), nullable=True),
        sa.Column("old_with_new", sa.LargeBinary(), nullable=True),
        sa.Column("retired_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ca_id"], ["ca_authority.id"], name="fk_ca_key_generation_ca_id_ca_authority"
        ),
        sa.PrimaryKeyConstraint("ca_id", "generation", name="pk_ca_key_generation"),
    )


def downgrade() -> None:
    op.drop_table("ca_key_generation")
    with op.batch_alter_table("ca_certificate") as batch:
        batch.drop_column("ca_generation")
    with op.batch_alter_table("ca_authority") as batch:
        batch.drop_column("generation")
