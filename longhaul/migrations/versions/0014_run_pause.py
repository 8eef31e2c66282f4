"""run pause

One run paused by a person: a waiting run is not claimed until it is unpaused, a started one is paused in
Temporal (the server's workflow pause); who paused it and why, for its record (longhaul/server/pausing.py).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 21:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("pause_reason", sa.String(length=600), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("pause_reason")
        batch.drop_column("paused_at")
