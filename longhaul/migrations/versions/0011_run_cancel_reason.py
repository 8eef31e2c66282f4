"""run cancel reason

Who asked to cancel a started run, and why, kept until the dispatcher has passed it to Temporal with the
cancellation (the workflow's record then says it): cancel_on events, a singleton's successor, a cancel
that came while the run was being started.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 14:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("cancel_reason", sa.String(length=600), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("cancel_reason")
