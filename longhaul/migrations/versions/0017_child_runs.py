"""child runs

A run started by another run's workflow (trigger_and_wait) names its parent and root; the parent waits
for it through ``run_waiters``, which a dispatcher turns into a signal when the child closes.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("parent_run_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("root_run_id", sa.String(length=40), nullable=True))
        batch.create_index("ix_runs_parent_run_id", ["parent_run_id"])
    op.create_table(
        "run_waiters",
        sa.Column(
            "run_id", sa.String(length=40), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "waiter_run_id",
            sa.String(length=40),
            sa.ForeignKey("runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_run_waiters_open", "run_waiters", ["notified_at"])


def downgrade() -> None:
    op.drop_index("ix_run_waiters_open", table_name="run_waiters")
    op.drop_table("run_waiters")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_parent_run_id")
        batch.drop_column("root_run_id")
        batch.drop_column("parent_run_id")
