"""runs overview index

A covering index for the dashboard's overview (longhaul/api/ui/overview.py): a tenant's runs of the last day
counted per status, bucket and workflow, with their durations, read from the index alone.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 07:25:36.279248
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = ["tenant", "created_at", "status", "workflow", "started_at", "finished_at"]


def upgrade() -> None:
    op.create_index("ix_runs_overview", "runs", COLUMNS, unique=False)


def downgrade() -> None:
    op.drop_index("ix_runs_overview", table_name="runs")
