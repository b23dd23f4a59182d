"""Key store: the reason given for a key's latest state change.

Revision ID: keystore_0002
Revises: keystore_0001
Create Date: 2026-11-22

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "keystore_0002"
down_revision: str | Sequence[str] | None = "keystore_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a table in every way Alembic may need.
    with op.batch_alter_table("keystore_key") as batch:
        batch.add_column(sa.Column("state_reason", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("keystore_key") as batch:
        batch.drop_column("state_reason")
