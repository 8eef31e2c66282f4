"""queue pauses and limits

A queue paused at run time, or one tenant's runs of it: its pending runs stay pending, saying why, until
resumed; and concurrency or rate limits set at run time per scope, in place of the declared ones
(longhaul/queue/controls.py).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 19:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_pauses",
        sa.Column("queue", sa.String(length=100), primary_key=True),
        sa.Column("key", sa.String(length=64), primary_key=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("paused_by", sa.String(length=100), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
    )

    op.create_table(
        "queue_limits",
        sa.Column("scope", sa.String(length=300), primary_key=True),
        sa.Column("limit", sa.Integer(), nullable=False),
        sa.Column("set_by", sa.String(length=100), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("queue_limits")
    op.drop_table("queue_pauses")
