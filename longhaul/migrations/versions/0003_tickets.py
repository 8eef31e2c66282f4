"""tickets

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 17:41:33.452970
"""

from __future__ import annotations

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The tickets table it made is the application's now (migrations/versions/0001 in the application)."""


def downgrade() -> None:
    """Nothing of longhaul's to undo."""
