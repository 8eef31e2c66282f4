"""idempotency key generations, rate periods in 64 bits

A run's event id may expire (``idempotency_key_ttl``): the same id sent after that makes the next
generation of the run, so the event's unique key gains the generation. SQLite cannot drop a constraint:
the table is rebuilt (Alembic's batch mode), with foreign keys off for the upgrade's transaction
(:func:`longhaul.migrations.upgrade`) so the rebuild's drop of the old table cascades to nothing.
A rate slot's period in milliseconds outgrew PostgreSQL's 32-bit integer past 24.8 days.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 00:06:25.208691
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Offline (``longhaul db upgrade --sql``) batch mode cannot reflect the table it rebuilds on SQLite.
    copy_from = _runs_at_0004() if context.is_offline_mode() else None
    with op.batch_alter_table("runs", schema=None, copy_from=copy_from) as batch_op:
        batch_op.add_column(sa.Column("generation", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(
            sa.Column("idempotency_key_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.drop_constraint("uq_runs_event", type_="unique")
        batch_op.create_unique_constraint(
            "uq_runs_event", ["tenant", "event", "event_id", "workflow", "generation"]
        )
    if context.get_context().dialect.name == "postgresql":  # SQLite's INTEGER has 64 bits already
        op.alter_column(
            "run_slots",
            "period_ms",
            existing_type=sa.Integer(),
            type_=sa.BigInteger(),
            existing_nullable=True,
        )


def downgrade() -> None:
    if context.get_context().dialect.name == "postgresql":
        op.alter_column(
            "run_slots",
            "period_ms",
            existing_type=sa.BigInteger(),
            type_=sa.Integer(),
            existing_nullable=True,
        )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_constraint("uq_runs_event", type_="unique")
        batch_op.create_unique_constraint("uq_runs_event", ["tenant", "event", "event_id", "workflow"])
        batch_op.drop_column("idempotency_key_expires_at")
        batch_op.drop_column("generation")


def _runs_at_0004() -> sa.Table:
    """The runs table as revision 0004 left it."""
    time = sa.DateTime(timezone=True)
    return sa.Table(
        "runs",
        sa.MetaData(),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("workflow", sa.String(100), nullable=False),
        sa.Column("workflow_id", sa.String(400), nullable=False),
        sa.Column("event", sa.String(100), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("business_key", sa.String(200)),
        sa.Column("replay_of", sa.String(40)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(200)),
        sa.Column("input", sa.JSON(), nullable=False),
        sa.Column("output", sa.JSON()),
        sa.Column("error", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", time, nullable=False),
        sa.Column("started_at", time),
        sa.Column("finished_at", time),
        sa.Column("updated_at", time, nullable=False),
        sa.Column("queue", sa.String(100)),
        sa.Column("priority", sa.Integer(), server_default="3", nullable=False),
        sa.Column("not_before", time),
        sa.Column("expires_at", time),
        sa.Column("gate", sa.String(300)),
        sa.Column("claimed_at", time),
        sa.Column("dispatched_at", time),
        sa.Column("cancel_requested_at", time),
        sa.Column("traceparent", sa.String(100)),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "event", "event_id", "workflow", name="uq_runs_event"),
        sa.UniqueConstraint("workflow_id"),
        sa.Index("ix_runs_key", "tenant", "workflow", "business_key"),
        sa.Index("ix_runs_listing", "tenant", "created_at", "id"),
        sa.Index("ix_runs_replay_of", "replay_of"),
        sa.Index("ix_runs_status", "status"),
        sa.Index("ix_runs_queue", "status", "priority", "created_at"),
        sa.Index("uq_runs_gate", "gate", unique=True),
    )
