"""The ledger is append-only: database triggers refuse any UPDATE or DELETE of entries and postings.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from zhishe.finance.ledger import APPEND_ONLY_DDL, APPEND_ONLY_DROP

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the triggers of this database's dialect."""
    for statement in APPEND_ONLY_DDL.get(op.get_bind().dialect.name, ()):
        op.execute(statement)


def downgrade() -> None:
    """Drop them again."""
    for statement in APPEND_ONLY_DROP.get(op.get_bind().dialect.name, ()):
        op.execute(statement)
