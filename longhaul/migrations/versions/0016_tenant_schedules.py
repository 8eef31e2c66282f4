"""tenant schedules

A tenant's schedules made at run time (longhaul/tenant_schedules.py): one row per tenant and the tenant's
own id (a repeated create returns the first), each backed by a Temporal Schedule.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 22:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_schedules",
        sa.Column("tenant", sa.String(length=64), primary_key=True),
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("schedule_id", sa.String(length=200), nullable=False, unique=True),
        sa.Column("event", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=True),
        sa.Column("interval_seconds", sa.Float(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("overlap", sa.String(length=16), nullable=False),
        sa.Column("catchup_window_seconds", sa.Float(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tenant_schedules")
