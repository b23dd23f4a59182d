"""Certificate authority: authorities and certificates (serials reserved before signing).

Revision ID: ca_0001
Revises:
Create Date: 2026-01-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ca_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("ca",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ca_authority",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("parent_id", sa.String(40), nullable=True),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("certificate_serial", sa.String(40), nullable=True),
        sa.Column("certificate", sa.LargeBinary(), nullable=True),
        sa.Column("ocsp_key_id", sa.String(64), nullable=True),
        sa.Column("ocsp_certificate", sa.LargeBinary(), nullable=True),
        sa.Column("crl_number", sa.Integer(), nullable=False),
        sa.Column("crl", sa.LargeBinary(), nullable=True),
        sa.Column("crl_next_update", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["ca_authority.id"], name="fk_ca_authority_parent_id_ca_authority"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ca_authority"),
        sa.UniqueConstraint("name", name="uq_ca_authority_name"),
    )
    op.create_table(
        "ca_certificate",
        sa.Column("serial", sa.String(40), nullable=False),
        sa.Column("ca_id", sa.String(40), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("profile", sa.String(32), nullable=False),
        sa.Column("profile_version", sa.Integer(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("spki_fingerprint", sa.String(64), nullable=False),
        sa.Column("is_ca", sa.Boolean(), nullable=False),
        sa.Column("not_before", sa.DateTime(), nullable=False),
        sa.Column("not_after", sa.DateTime(), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=True),
        sa.Column("replaces", sa.String(40), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revocation_reason", sa.String(24), nullable=True),
        sa.ForeignKeyConstraint(
            ["ca_id"], ["ca_authority.id"], name="fk_ca_certificate_ca_id_ca_authority"
        ),
        sa.PrimaryKeyConstraint("serial", name="pk_ca_certificate"),
    )
    op.create_index("ix_ca_certificate_ca_id_revoked_at", "ca_certificate", ["ca_id", "revoked_at"])
    op.create_index("ix_ca_certificate_subject", "ca_certificate", ["subject"])


def downgrade() -> None:
    op.drop_index("ix_ca_certificate_subject", table_name="ca_certificate")
    op.drop_index("ix_ca_certificate_ca_id_revoked_at", table_name="ca_certificate")
    op.drop_table("ca_certificate")
    op.drop_table("ca_authority")
