"""grants, allocations, job usage ledger, mail outbox

Revision ID: a227236c2c5d
Revises: 60c18d63b393
Create Date: 2026-11-25 15:18:35.642038

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'a227236c2c5d'
down_revision = '60c18d63b393'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('outgoing_mail',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('to_addresses', sa.Text(), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outgoing_mail'))
    )
    op.create_table('grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('status', sa.Enum('active', 'suspended', 'expired', 'closed', name='grant_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint('end_date > start_date', name=op.f('ck_grants_ends_after_start')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_grants_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grants'))
    )
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grants_project_id'), ['project_id'], unique=False)

    op.create_table('grant_allocations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=False),
    sa.Column('partition_id', sa.Integer(), nullable=False),
    sa.Column('resource_kind', sa.Enum('cpu', 'gpu', name='resource_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('awarded_minutes', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('awarded_minutes >= 0', name=op.f('ck_grant_allocations_awarded_not_negative')),
    sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], name=op.f('fk_grant_allocations_grant_id_grants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['partition_id'], ['partitions.id'], name=op.f('fk_grant_allocations_partition_id_partitions'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grant_allocations')),
    sa.UniqueConstraint('grant_id', 'partition_id', name=op.f('uq_grant_allocations_grant_id'))
    )
    with op.batch_alter_table('grant_allocations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grant_allocations_grant_id'), ['grant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_grant_allocations_partition_id'), ['partition_id'], unique=False)

    op.create_table('job_usage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=False),
    sa.Column('account', sa.String(length=32), nullable=False),
    sa.Column('user', sa.String(length=32), nullable=False),
    sa.Column('partition', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('submit_time', sa.DateTime(), nullable=True),
    sa.Column('start_time', sa.DateTime(), nullable=True),
    sa.Column('end_time', sa.DateTime(), nullable=True),
    sa.Column('elapsed_seconds', sa.BigInteger(), nullable=False),
    sa.Column('alloc_cpus', sa.Integer(), nullable=False),
    sa.Column('cpu_seconds', sa.BigInteger(), nullable=False),
    sa.Column('gpu_seconds', sa.BigInteger(), nullable=False),
    sa.Column('allocation_id', sa.Integer(), nullable=True),
    sa.Column('ingested_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['allocation_id'], ['grant_allocations.id'], name=op.f('fk_job_usage_allocation_id_grant_allocations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_job_usage_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_usage')),
    sa.UniqueConstraint('site_id', 'job_id', name=op.f('uq_job_usage_site_id'))
    )
    with op.batch_alter_table('job_usage', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_usage_account'), ['account'], unique=False)
        batch_op.create_index(batch_op.f('ix_job_usage_allocation_id'), ['allocation_id'], unique=False)



def downgrade():
    with op.batch_alter_table('job_usage', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_usage_allocation_id'))
        batch_op.drop_index(batch_op.f('ix_job_usage_account'))

    op.drop_table('job_usage')
    with op.batch_alter_table('grant_allocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grant_allocations_partition_id'))
        batch_op.drop_index(batch_op.f('ix_grant_allocations_grant_id'))

    op.drop_table('grant_allocations')
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grants_project_id'))

    op.drop_table('grants')
    op.drop_table('outgoing_mail')
