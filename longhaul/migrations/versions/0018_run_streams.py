"""run streams

Durable data streams: the chunks a run's activities write (longhaul/streams.py), in order per run and
stream, each once per writer and index.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 01:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_stream_chunks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "run_id", sa.String(length=40), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("stream", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("writer", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_id", "stream", "seq", name="uq_run_stream_chunks_seq"),
        sa.UniqueConstraint("run_id", "stream", "writer", "index", name="uq_run_stream_chunks_writer"),
    )
    op.create_index("ix_run_stream_chunks_created", "run_stream_chunks", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_run_stream_chunks_created", table_name="run_stream_chunks")
    op.drop_table("run_stream_chunks")
