"""job efficiency: how an ended job used its allocation, read once from accounting

Revision ID: c5e9a7d2b3f1
Revises: 8a3e5f61c2d4
Create Date: 2026-12-02 03:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'c5e9a7d2b3f1'
down_revision = '8a3e5f61c2d4'
branch_labels = None
depends_on = None

NOT_NEGATIVE = ("tasks", "elapsed_seconds", "alloc_cpus", "cpu_time_seconds", "total_cpu_ms", "gpus", "gpu_seconds")


def upgrade():
    op.create_table(
        'job_efficiencies',
        sa.Column('job_id', sa.Integer(), nullable=False),
        sa.Column('read_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.Column('state', sa.String(length=32), nullable=False),
        sa.Column('exit_code', sa.String(length=16), nullable=True),
        sa.Column('tasks', sa.Integer(), nullable=False),
        sa.Column('elapsed_seconds', sa.BigInteger(), nullable=False),
        sa.Column('time_limit_minutes', sa.Integer(), nullable=True),
        sa.Column('alloc_cpus', sa.Integer(), nullable=False),
        sa.Column('cpu_time_seconds', sa.BigInteger(), nullable=False),
        sa.Column('total_cpu_ms', sa.BigInteger(), nullable=False),
        sa.Column('max_rss_kib', sa.BigInteger(), nullable=True),
        sa.Column('requested_mem_kib', sa.BigInteger(), nullable=True),
        sa.Column('gpus', sa.Integer(), nullable=False),
        sa.Column('gpu_seconds', sa.BigInteger(), nullable=False),
        *(sa.CheckConstraint(f'{column} >= 0', name=op.f(f'ck_job_efficiencies_{column}_not_negative'))
          for column in NOT_NEGATIVE),
        sa.ForeignKeyConstraint(['job_id'], ['submitted_jobs.id'], name=op.f('fk_job_efficiencies_job_id_submitted_jobs'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('job_id', name=op.f('pk_job_efficiencies')),
    )


def downgrade():
    op.drop_table('job_efficiencies')
