"""signal deliveries

Signals that events route to open runs (SignalRoute), written in the transaction that accepts the event
and sent by a dispatcher once the run's workflow exists (longhaul/queue/signals.py).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 21:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signal_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "run_id", sa.String(length=40), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("request_id", sa.String(length=400), nullable=False),
        sa.Column("signal", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("event", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(length=600), nullable=True),
        sa.UniqueConstraint("run_id", "request_id", name="uq_signal_deliveries_request"),
    )
    op.create_index("ix_signal_deliveries_due", "signal_deliveries", ["sent_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_signal_deliveries_due", table_name="signal_deliveries")
    op.drop_table("signal_deliveries")
