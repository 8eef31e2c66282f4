"""fair share

Runs of a subscription with fair share carry the value they take turns by (``runs.fair_key``);
``fair_shares`` holds each flow's weight (set at run time) and turn, and the dispatchers' clock
(longhaul/queue/claiming.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("fair_key", sa.String(length=300), nullable=True))
        batch.create_index("ix_runs_fair", ["status", "fair_key"])
    op.create_table(
        "fair_shares",
        sa.Column("queue", sa.String(length=100), primary_key=True),
        sa.Column("key", sa.String(length=300), primary_key=True),
        sa.Column("weight", sa.Float(), server_default="1", nullable=False),
        sa.Column("turn", sa.Float(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fair_shares")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_fair")
        batch.drop_column("fair_key")
