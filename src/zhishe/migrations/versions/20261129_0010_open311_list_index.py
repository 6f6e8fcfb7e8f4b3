"""An index that covers Open311's public lists (newest first, top-level reports, by state and
category), so that an offset page skips its predecessors without reading table rows.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``ix_participation_requests_public_time``."""
    op.create_index(
        "ix_participation_requests_public_time",
        "participation_requests",
        ["requested_at", "id", "parent_id", "state", "category_id"],
        unique=False,
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_participation_requests_public_time", table_name="participation_requests")
