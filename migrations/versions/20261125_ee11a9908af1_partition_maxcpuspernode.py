"""partition MaxCPUsPerNode

Revision ID: ee11a9908af1
Revises: cd60699918d9
Create Date: 2026-11-25 16:32:27.054550

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'ee11a9908af1'
down_revision = 'cd60699918d9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('partitions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_cpus_per_node', sa.Integer(), nullable=True))



def downgrade():
    with op.batch_alter_table('partitions', schema=None) as batch_op:
        batch_op.drop_column('max_cpus_per_node')

