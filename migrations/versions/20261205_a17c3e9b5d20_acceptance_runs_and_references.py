"""acceptance runs started from the portal, adopted benchmark references, result provenance

Revision ID: a17c3e9b5d20
Revises: b3f7a9c1d2e4
Create Date: 2026-12-05 13:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'a17c3e9b5d20'
down_revision = 'b3f7a9c1d2e4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('benchmark_references',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('system', sa.String(length=64), nullable=False),
    sa.Column('partition', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('table', sa.JSON(), nullable=False),
    sa.Column('method', sa.String(length=200), nullable=False),
    sa.Column('source_run_ids', sa.JSON(), nullable=False),
    sa.Column('adopted_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('adopted_by_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['adopted_by_id'], ['users.id'], name=op.f('fk_benchmark_references_adopted_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_benchmark_references')),
    sa.UniqueConstraint('system', 'partition', 'version', name=op.f('uq_benchmark_references_system'))
    )
    with op.batch_alter_table('benchmark_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reference_origin', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('reference_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('portal_version', sa.String(length=40), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_benchmark_runs_reference_id_benchmark_references'),
                                    'benchmark_references', ['reference_id'], ['id'], ondelete='SET NULL')

    op.create_table('acceptance_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('partition_id', sa.Integer(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('requested_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('benchmarks', sa.String(length=40), nullable=False),
    sa.Column('size', sa.String(length=16), nullable=False),
    sa.Column('ntasks', sa.Integer(), nullable=False),
    sa.Column('time_minutes', sa.Integer(), nullable=False),
    sa.Column('unix_user', sa.String(length=32), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('workdir', sa.String(length=1000), nullable=False),
    sa.Column('script', sa.Text(), nullable=False),
    sa.Column('state', sa.Enum('queued', 'running', 'reported', 'failed', name='acceptance_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('slurm_job_id', sa.String(length=32), nullable=True),
    sa.Column('slurm_state', sa.String(length=32), nullable=True),
    sa.Column('reason', sa.String(length=300), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('token_expires_at', sa.DateTime(), nullable=False),
    sa.Column('token_used_at', sa.DateTime(), nullable=True),
    sa.Column('result_id', sa.Integer(), nullable=True),
    sa.Column('portal_version', sa.String(length=40), nullable=False),
    sa.CheckConstraint('ntasks >= 2 AND time_minutes >= 1', name=op.f('ck_acceptance_runs_sane_request')),
    sa.ForeignKeyConstraint(['partition_id'], ['partitions.id'], name=op.f('fk_acceptance_runs_partition_id_partitions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_acceptance_runs_requested_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['result_id'], ['benchmark_runs.id'], name=op.f('fk_acceptance_runs_result_id_benchmark_runs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_acceptance_runs_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_acceptance_runs')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_acceptance_runs_token_hash'))
    )
    with op.batch_alter_table('acceptance_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_acceptance_runs_partition_id'), ['partition_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_acceptance_runs_site_id'), ['site_id'], unique=False)


def downgrade():
    with op.batch_alter_table('acceptance_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_acceptance_runs_site_id'))
        batch_op.drop_index(batch_op.f('ix_acceptance_runs_partition_id'))
    op.drop_table('acceptance_runs')
    with op.batch_alter_table('benchmark_runs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_benchmark_runs_reference_id_benchmark_references'), type_='foreignkey')
        batch_op.drop_column('portal_version')
        batch_op.drop_column('reference_id')
        batch_op.drop_column('reference_origin')
    op.drop_table('benchmark_references')
