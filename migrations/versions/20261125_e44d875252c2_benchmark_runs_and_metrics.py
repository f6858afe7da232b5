"""benchmark runs and metrics

Revision ID: e44d875252c2
Revises: 34808b305222
Create Date: 2026-11-25 14:58:54.587112

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e44d875252c2'
down_revision = '34808b305222'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('benchmark_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('system', sa.String(length=64), nullable=False),
    sa.Column('partition', sa.String(length=64), nullable=False),
    sa.Column('measured_at', sa.DateTime(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
    sa.Column('array', sa.String(length=200), nullable=False),
    sa.Column('nodes', sa.Integer(), nullable=False),
    sa.Column('ranks', sa.Integer(), nullable=False),
    sa.Column('verdict', sa.Enum('passed', 'failed', 'no_reference', name='benchmark_verdict', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('reference_key', sa.String(length=140), nullable=True),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_benchmark_runs_uploaded_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_benchmark_runs'))
    )
    with op.batch_alter_table('benchmark_runs', schema=None) as batch_op:
        batch_op.create_index('ix_benchmark_runs_system_partition_measured', ['system', 'partition', 'measured_at'], unique=False)

    op.create_table('benchmark_metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=140), nullable=False),
    sa.Column('benchmark', sa.String(length=64), nullable=False),
    sa.Column('metric', sa.String(length=64), nullable=False),
    sa.Column('unit', sa.String(length=16), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('precision', sa.String(length=16), nullable=True),
    sa.Column('mean', sa.Float(), nullable=True),
    sa.Column('stdev', sa.Float(), nullable=True),
    sa.Column('samples', sa.Integer(), nullable=True),
    sa.Column('reference', sa.Float(), nullable=True),
    sa.Column('lower', sa.Float(), nullable=True),
    sa.Column('upper', sa.Float(), nullable=True),
    sa.Column('margin', sa.Float(), nullable=True),
    sa.Column('status', sa.Enum('pass', 'fail', 'missing', 'unreferenced', name='benchmark_metric_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('message', sa.String(length=300), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['benchmark_runs.id'], name=op.f('fk_benchmark_metrics_run_id_benchmark_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_benchmark_metrics'))
    )
    with op.batch_alter_table('benchmark_metrics', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_benchmark_metrics_key'), ['key'], unique=False)
        batch_op.create_index(batch_op.f('ix_benchmark_metrics_run_id'), ['run_id'], unique=False)



def downgrade():
    with op.batch_alter_table('benchmark_metrics', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_benchmark_metrics_run_id'))
        batch_op.drop_index(batch_op.f('ix_benchmark_metrics_key'))

    op.drop_table('benchmark_metrics')
    with op.batch_alter_table('benchmark_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_benchmark_runs_system_partition_measured')

    op.drop_table('benchmark_runs')
