"""slurm reconciliation runs, site sync state, grant alerts, requests, final reports

Revision ID: 7c8e51ada8f1
Revises: b7c1e5a9d3f2
Create Date: 2026-11-25 15:25:04.957347

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '7c8e51ada8f1'
down_revision = 'b7c1e5a9d3f2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('slurm_site_state',
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('pending', sa.Boolean(), nullable=False),
    sa.Column('pending_since', sa.DateTime(), nullable=True),
    sa.Column('last_run_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('ingested_until', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_slurm_site_state_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('site_id', name=op.f('pk_slurm_site_state'))
    )
    op.create_table('slurm_sync_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('succeeded', sa.Boolean(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('sacctmgr_calls', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_slurm_sync_runs_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slurm_sync_runs'))
    )
    with op.batch_alter_table('slurm_sync_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slurm_sync_runs_site_id'), ['site_id'], unique=False)

    op.create_table('grant_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=False),
    sa.Column('resource_kind', sa.Enum('cpu', 'gpu', name='resource_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('threshold', sa.Integer(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], name=op.f('fk_grant_alerts_grant_id_grants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grant_alerts')),
    sa.UniqueConstraint('grant_id', 'resource_kind', 'threshold', name=op.f('uq_grant_alerts_grant_id'))
    )
    with op.batch_alter_table('grant_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grant_alerts_grant_id'), ['grant_id'], unique=False)

    op.create_table('grant_final_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], name=op.f('fk_grant_final_reports_grant_id_grants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_grant_final_reports_uploaded_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grant_final_reports')),
    sa.UniqueConstraint('grant_id', name=op.f('uq_grant_final_reports_grant_id'))
    )
    op.create_table('grant_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('partition_id', sa.Integer(), nullable=True),
    sa.Column('extra_minutes', sa.BigInteger(), nullable=False),
    sa.Column('new_end_date', sa.Date(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.Enum('open', 'approved', 'refused', name='grant_request_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_grant_requests_decided_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], name=op.f('fk_grant_requests_grant_id_grants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['partition_id'], ['partitions.id'], name=op.f('fk_grant_requests_partition_id_partitions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_grant_requests_requested_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grant_requests'))
    )
    with op.batch_alter_table('grant_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grant_requests_grant_id'), ['grant_id'], unique=False)

    op.create_table('slurm_sync_actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('command', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['slurm_sync_runs.id'], name=op.f('fk_slurm_sync_actions_run_id_slurm_sync_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slurm_sync_actions'))
    )
    with op.batch_alter_table('slurm_sync_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slurm_sync_actions_run_id'), ['run_id'], unique=False)

    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('funding_pool', sa.String(length=32), nullable=True))



def downgrade():
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_column('funding_pool')

    with op.batch_alter_table('slurm_sync_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slurm_sync_actions_run_id'))

    op.drop_table('slurm_sync_actions')
    with op.batch_alter_table('grant_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grant_requests_grant_id'))

    op.drop_table('grant_requests')
    op.drop_table('grant_final_reports')
    with op.batch_alter_table('grant_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grant_alerts_grant_id'))

    op.drop_table('grant_alerts')
    with op.batch_alter_table('slurm_sync_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slurm_sync_runs_site_id'))

    op.drop_table('slurm_sync_runs')
    op.drop_table('slurm_site_state')
