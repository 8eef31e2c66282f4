"""run metadata

What a workflow reports about itself (longhaul/workflows/metadata.py), on its run record.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:28:17.983745
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run_metadata", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("run_metadata")
