"""runs updated index

What changed lately, read by one poller per API process for all its open streams (longhaul/api/changes.py):
an index on (updated_at, id) answers "which runs changed since" without reading the runs.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 14:20:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_updated", "runs", ["updated_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_runs_updated", table_name="runs")
