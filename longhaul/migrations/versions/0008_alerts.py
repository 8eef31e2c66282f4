"""alerts

Failure alerts (longhaul/alerts.py): where a tenant wants to hear of failed or expired runs and timed-out
waitpoints, and the deliveries written in the transaction of each (an outbox).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 03:51:54.192137
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_destinations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("secret", sa.String(length=100), nullable=True),
        sa.Column("workflow", sa.String(length=100), nullable=True),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alert_destinations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_destinations_tenant"), ["tenant"], unique=False)

    op.create_table(
        "alert_deliveries",
        sa.Column("destination_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["destination_id"], ["alert_destinations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("destination_id", "kind", "subject"),
    )
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_alert_deliveries_due", ["delivered_at", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_deliveries_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_deliveries_run_id"))
        batch_op.drop_index("ix_alert_deliveries_due")

    op.drop_table("alert_deliveries")
    with op.batch_alter_table("alert_destinations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_destinations_tenant"))

    op.drop_table("alert_destinations")
