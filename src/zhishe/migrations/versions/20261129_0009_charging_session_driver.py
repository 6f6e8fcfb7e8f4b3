"""The resident charging a car (billed when it leaves), and a programme's demand-response incentive
per kWh shed.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``energy_charging_sessions.user_id`` (indexed, to users) and
    ``energy_dr_programs.incentive_fen_per_kwh``."""
    with op.batch_alter_table("energy_charging_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_energy_charging_sessions_user_id"), ["user_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_energy_charging_sessions_user_id_users"),
            "users",
            ["user_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("energy_dr_programs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("incentive_fen_per_kwh", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("energy_dr_programs", schema=None) as batch_op:
        batch_op.drop_column("incentive_fen_per_kwh")
    with op.batch_alter_table("energy_charging_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_energy_charging_sessions_user_id_users"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_energy_charging_sessions_user_id"))
        batch_op.drop_column("user_id")
