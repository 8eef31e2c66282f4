"""waitpoints

Waitpoint tokens (longhaul/waitpoints.py): what runs wait on until a person or another system completes them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 03:24:53.000475
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "waitpoints",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("workflow_id", sa.String(length=400), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("timeout_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_by", sa.String(length=100), nullable=True),
        sa.Column("output", sa.JSON(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("waitpoints", schema=None) as batch_op:
        batch_op.create_index("ix_waitpoints_listing", ["tenant", "created_at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_waitpoints_run_id"), ["run_id"], unique=False)
        batch_op.create_index("ix_waitpoints_undelivered", ["status", "delivered_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("waitpoints", schema=None) as batch_op:
        batch_op.drop_index("ix_waitpoints_undelivered")
        batch_op.drop_index(batch_op.f("ix_waitpoints_run_id"))
        batch_op.drop_index("ix_waitpoints_listing")

    op.drop_table("waitpoints")
