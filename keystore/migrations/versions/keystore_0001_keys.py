"""Key store: key records and their versions (sealed private keys, public keys).

Revision ID: keystore_0001
Revises:
Create Date: 2026-01-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "keystore_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("keystore",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "keystore_key",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("permitted", sa.Text(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("activation_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("rotation_seconds", sa.Integer(), nullable=True),
        sa.Column("rotated_at", sa.DateTime(), nullable=False),
        sa.Column("compromised_at", sa.DateTime(), nullable=True),
        sa.Column("destroy_after", sa.DateTime(), nullable=True),
        sa.Column("destroyed_at", sa.DateTime(), nullable=True),
        sa.Column("imported", sa.Boolean(), nullable=False),
        sa.Column("primary_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_keystore_key"),
    )
    op.create_index("ix_keystore_key_destroy_after", "keystore_key", ["destroy_after"])
    op.create_table(
        "keystore_version",
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.Column("sealed_key", sa.LargeBinary(), nullable=True),
        sa.Column("wrapped_data_key", sa.LargeBinary(), nullable=True),
        sa.Column("kek_id", sa.String(80), nullable=True),
        sa.Column("destroyed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["keystore_key.id"],
            name="fk_keystore_version_key_id_keystore_key",
        ),
        sa.PrimaryKeyConstraint("key_id", "version", name="pk_keystore_version"),
    )
    op.create_index("ix_keystore_version_kek_id", "keystore_version", ["kek_id"])


def downgrade() -> None:
    op.drop_index("ix_keystore_version_kek_id", "keystore_version")
    op.drop_table("keystore_version")
    op.drop_index("ix_keystore_key_destroy_after", "keystore_key")
    op.drop_table("keystore_key")
