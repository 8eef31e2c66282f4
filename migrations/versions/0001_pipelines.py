"""the shipped pipelines' tables: videos, video digests, products, reservations, notifications, tickets

Until the engine and the application had a history each, longhaul's history made these tables. A database
made then has them already: they are kept as they are (with their rows) and only missing ones are made.

Revision ID: 0001
Revises:
Create Date: 2026-12-03 17:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = ("video_digests", "videos", "tickets", "reservations", "products", "notifications")


def upgrade() -> None:
    # Rendered as SQL (`longhaul db upgrade --sql`) there is no database to look at: every table is made.
    existing = set() if context.is_offline_mode() else set(sa.inspect(op.get_bind()).get_table_names())
    if "notifications" not in existing:
        op.create_table(
            "notifications",
            sa.Column("tenant", sa.String(length=64), nullable=False),
            sa.Column("order_id", sa.String(length=100), nullable=False),
            sa.Column("outcome", sa.String(length=16), nullable=False),
            sa.Column("payload", sa.JSON(), nullable=False),
            sa.Column("state", sa.String(length=16), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("tenant", "order_id", "outcome"),
        )

    if "products" not in existing:
        op.create_table(
            "products",
            sa.Column("tenant", sa.String(length=64), nullable=False),
            sa.Column("product_id", sa.String(length=100), nullable=False),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("price_cents", sa.Integer(), nullable=False),
            sa.Column("stock", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("tenant", "product_id"),
        )

    if "reservations" not in existing:
        op.create_table(
            "reservations",
            sa.Column("op_id", sa.String(length=400), nullable=False),
            sa.Column("tenant", sa.String(length=64), nullable=False),
            sa.Column("order_id", sa.String(length=100), nullable=False),
            sa.Column("lines", sa.JSON(), nullable=False),
            sa.Column("state", sa.String(length=16), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("op_id"),
        )
        with op.batch_alter_table("reservations", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_reservations_order_id"), ["order_id"], unique=False)

    if "videos" not in existing:
        op.create_table(
            "videos",
            sa.Column("tenant", sa.String(length=64), nullable=False),
            sa.Column("video_id", sa.String(length=100), nullable=False),
            sa.Column("user_id", sa.String(length=100), nullable=False),
            sa.Column("run_id", sa.String(length=40), nullable=False),
            sa.Column("result", sa.JSON(), nullable=False),
            sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("tenant", "video_id"),
        )
        with op.batch_alter_table("videos", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_videos_processed_at"), ["processed_at"], unique=False)

    if "tickets" not in existing:
        op.create_table(
            "tickets",
            sa.Column("tenant", sa.String(length=100), nullable=False),
            sa.Column("ticket_id", sa.String(length=100), nullable=False),
            sa.Column("run_id", sa.String(length=64), nullable=False),
            sa.Column("summary", sa.String(length=300), nullable=False),
            sa.Column("words", sa.JSON(), nullable=False),
            sa.Column("category", sa.String(length=20), nullable=False),
            sa.Column("urgency", sa.String(length=20), nullable=False),
            sa.Column("team", sa.String(length=50), nullable=False),
            sa.Column("result", sa.JSON(), nullable=False),
            sa.Column("duplicate_of", sa.String(length=100), nullable=True),
            sa.Column("similarity", sa.Float(), nullable=True),
            sa.Column("status", sa.String(length=20), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("tenant", "ticket_id"),
        )
        with op.batch_alter_table("tickets", schema=None) as batch_op:
            batch_op.create_index("ix_tickets_open", ["tenant", "status", "created_at"], unique=False)

    if "video_digests" not in existing:
        op.create_table(
            "video_digests",
            sa.Column("run_id", sa.String(length=64), nullable=False),
            sa.Column("tenant", sa.String(length=64), nullable=False),
            sa.Column("user_id", sa.String(length=100), nullable=False),
            sa.Column("videos", sa.JSON(), nullable=False),
            sa.Column("message", sa.Text(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("run_id"),
        )
        with op.batch_alter_table("video_digests", schema=None) as batch_op:
            batch_op.create_index("ix_video_digests_user", ["tenant", "user_id", "created_at"], unique=False)


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
