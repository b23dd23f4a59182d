"""Seal registry: seals, their status history, approvals and the seal maker.

Revision ID: seals_0001
Revises:
Create Date: 2026-11-22

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "seals_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("seals",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seal",
        sa.Column("esid", sa.String(64), nullable=False),
        sa.Column("type_code", sa.Integer(), nullable=False),
        sa.Column("type_name", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("picture_type", sa.String(8), nullable=False),
        sa.Column("picture", sa.LargeBinary(), nullable=False),
        sa.Column("width_mm", sa.Integer(), nullable=False),
        sa.Column("height_mm", sa.Integer(), nullable=False),
        sa.Column("valid_start", sa.DateTime(), nullable=False),
        sa.Column("valid_end", sa.DateTime(), nullable=False),
        sa.Column("cert_list_type", sa.Integer(), nullable=False),
        sa.Column("cert_list", sa.LargeBinary(), nullable=False),
        sa.Column("applicant", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.Column("eseal", sa.LargeBinary(), nullable=True),
        sa.Column("maker_serial", sa.String(40), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("esid", name="pk_seal"),
    )
    op.create_table(
        "seal_status",
        sa.Column("esid", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["esid"], ["seal.esid"], name="fk_seal_status_esid_seal"),
        sa.PrimaryKeyConstraint("esid", "seq", name="pk_seal_status"),
    )
    op.create_table(
        "seal_approval",
        sa.Column("esid", sa.String(64), nullable=False),
        sa.Column("officer", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["esid"], ["seal.esid"], name="fk_seal_approval_esid_seal"),
        sa.PrimaryKeyConstraint("esid", "officer", name="pk_seal_approval"),
    )
    op.create_table(
        "seal_maker",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("serial", sa.String(40), nullable=False),
        sa.Column("certificate", sa.LargeBinary(), nullable=False),
        sa.Column("not_after", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_seal_maker"),
    )


def downgrade() -> None:
    op.drop_table("seal_maker")
    op.drop_table("seal_approval")
    op.drop_table("seal_status")
    op.drop_table("seal")
