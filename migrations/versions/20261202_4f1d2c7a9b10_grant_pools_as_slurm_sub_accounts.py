"""grant pools as Slurm sub-accounts: partition pools, an allocation's Slurm account

Revision ID: 4f1d2c7a9b10
Revises: ee11a9908af1
Create Date: 2026-12-02 01:20:00

"""
import sqlalchemy as sa
from alembic import op

revision = '4f1d2c7a9b10'
down_revision = 'ee11a9908af1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('partitions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pool', sa.String(length=24), nullable=True))
    with op.batch_alter_table('grant_allocations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('slurm_account', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_grant_allocations_slurm_account'), ['slurm_account'], unique=False)


def downgrade():
    with op.batch_alter_table('grant_allocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grant_allocations_slurm_account'))
        batch_op.drop_column('slurm_account')
    with op.batch_alter_table('partitions', schema=None) as batch_op:
        batch_op.drop_column('pool')
