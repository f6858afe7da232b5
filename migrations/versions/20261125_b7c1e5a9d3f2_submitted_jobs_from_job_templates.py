"""submitted jobs from job templates

Revision ID: b7c1e5a9d3f2
Revises: a227236c2c5d
Create Date: 2026-11-25 15:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b7c1e5a9d3f2'
down_revision = 'a227236c2c5d'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('submitted_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('partition_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('slurm_job_id', sa.String(length=32), nullable=False),
    sa.Column('template', sa.String(length=40), nullable=False),
    sa.Column('job_name', sa.String(length=128), nullable=False),
    sa.Column('unix_user', sa.String(length=32), nullable=False),
    sa.Column('account', sa.String(length=32), nullable=False),
    sa.Column('workdir', sa.String(length=1000), nullable=False),
    sa.Column('script', sa.Text(), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('max_cost_minutes', sa.BigInteger(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('last_state', sa.String(length=32), nullable=False),
    sa.Column('last_reason', sa.String(length=200), nullable=True),
    sa.Column('state_seen_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['partition_id'], ['partitions.id'], name=op.f('fk_submitted_jobs_partition_id_partitions'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_submitted_jobs_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_submitted_jobs_site_id_sites'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_submitted_jobs_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_submitted_jobs')),
    sa.UniqueConstraint('site_id', 'slurm_job_id', name=op.f('uq_submitted_jobs_site_id'))
    )
    with op.batch_alter_table('submitted_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submitted_jobs_partition_id'), ['partition_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_submitted_jobs_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_submitted_jobs_site_id'), ['site_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_submitted_jobs_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('submitted_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submitted_jobs_user_id'))
        batch_op.drop_index(batch_op.f('ix_submitted_jobs_site_id'))
        batch_op.drop_index(batch_op.f('ix_submitted_jobs_project_id'))
        batch_op.drop_index(batch_op.f('ix_submitted_jobs_partition_id'))

    op.drop_table('submitted_jobs')
