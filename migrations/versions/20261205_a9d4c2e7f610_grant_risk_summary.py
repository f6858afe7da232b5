"""grant risk kept as a summary (how far the worst pool is off a steady pace), indexes for the grants list

Revision ID: a9d4c2e7f610
Revises: c5d1e7f3a9b2
Create Date: 2026-12-05 13:30:00

"""
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

revision = 'a9d4c2e7f610'
down_revision = 'c5d1e7f3a9b2'
branch_labels = None
depends_on = None


def _day(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def upgrade():
    with op.batch_alter_table('grants') as batch:
        batch.add_column(sa.Column('risk_percent', sa.Float(), server_default='0', nullable=False))
        batch.add_column(sa.Column('risk_magnitude', sa.Float(), server_default='0', nullable=False))
        batch.create_index('ix_grants_risk_magnitude_id', ['risk_magnitude', 'id'], unique=False)
    with op.batch_alter_table('grant_allocations') as batch:
        batch.create_index('ix_grant_allocations_kind_totals', ['resource_kind', 'awarded_minutes', 'used_seconds'],
                           unique=False)
    # Fill them from the stored most- and least-used pools, as of today (plain SQL and
    # arithmetic: a migration must not depend on the code of a later release).
    bind = op.get_bind()
    today = datetime.now(UTC).date()
    rows = []
    for grant_id, start, end, high, low in bind.execute(sa.text(
            "SELECT id, start_date, end_date, usage_percent_high, usage_percent_low FROM grants")):
        start, end = _day(start), _day(end)
        length = max((end - start).days, 1)
        pace = 100 * min(max((today - start).days, 0), length) / length
        worst = 0.0
        for percent in (high, low):
            if abs(percent - pace) > abs(worst):
                worst = percent - pace
        rows.append({"id": grant_id, "risk": worst, "magnitude": abs(worst)})
    if rows:
        bind.execute(sa.text("UPDATE grants SET risk_percent = :risk, risk_magnitude = :magnitude WHERE id = :id"),
                     rows)


def downgrade():
    with op.batch_alter_table('grant_allocations') as batch:
        batch.drop_index('ix_grant_allocations_kind_totals')
    with op.batch_alter_table('grants') as batch:
        batch.drop_index('ix_grants_risk_magnitude_id')
        batch.drop_column('risk_magnitude')
        batch.drop_column('risk_percent')
