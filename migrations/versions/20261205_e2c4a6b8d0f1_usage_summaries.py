"""usage summaries: used seconds per allocation, most- and least-used pool per grant

Revision ID: e2c4a6b8d0f1
Revises: d7b1e4f08a21
Create Date: 2026-12-05 08:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'e2c4a6b8d0f1'
down_revision = 'd7b1e4f08a21'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('grant_allocations') as batch:
        batch.add_column(sa.Column('used_seconds', sa.BigInteger(), server_default='0', nullable=False))
    with op.batch_alter_table('grants') as batch:
        batch.add_column(sa.Column('usage_percent_high', sa.Float(), server_default='0', nullable=False))
        batch.add_column(sa.Column('usage_percent_low', sa.Float(), server_default='0', nullable=False))
    # Fill them from the ledger, as every ingestion will from now on (plain SQL: a migration must
    # not depend on the models of a later release).
    bind = op.get_bind()
    bind.execute(sa.text(
        "UPDATE grant_allocations SET used_seconds = COALESCE((SELECT SUM(CASE WHEN grant_allocations.resource_kind = 'gpu'"
        " THEN job_usage.gpu_seconds ELSE job_usage.cpu_seconds END) FROM job_usage"
        " WHERE job_usage.allocation_id = grant_allocations.id), 0)"))
    pools = {}
    for grant_id, pool, kind, awarded, used in bind.execute(sa.text(
            "SELECT a.grant_id, COALESCE(a.slurm_account, p.pool, p.name), a.resource_kind, a.awarded_minutes,"
            " a.used_seconds FROM grant_allocations a JOIN partitions p ON p.id = a.partition_id")):
        totals = pools.setdefault(grant_id, {}).setdefault((pool, kind), [0, 0])
        totals[0] += awarded
        totals[1] += used
    rows = []
    for grant_id, by_pool in pools.items():
        percents = [100 * used / 60 / awarded if awarded else 0.0 for awarded, used in by_pool.values()]
        rows.append({"id": grant_id, "high": max(percents), "low": min(percents)})
    if rows:
        bind.execute(sa.text("UPDATE grants SET usage_percent_high = :high, usage_percent_low = :low WHERE id = :id"),
                     rows)


def downgrade():
    with op.batch_alter_table('grants') as batch:
        batch.drop_column('usage_percent_low')
        batch.drop_column('usage_percent_high')
    with op.batch_alter_table('grant_allocations') as batch:
        batch.drop_column('used_seconds')
