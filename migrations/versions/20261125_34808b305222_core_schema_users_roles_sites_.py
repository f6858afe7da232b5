"""core schema: users, roles, sites, partitions, projects

Revision ID: 34808b305222
Revises:
Create Date: 2026-11-25 14:50:40.666076

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '34808b305222'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('projects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'active', 'suspended', 'closed', name='project_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('slurm_account', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
    sa.UniqueConstraint('code', name=op.f('uq_projects_code')),
    sa.UniqueConstraint('slurm_account', name=op.f('uq_projects_slurm_account'))
    )
    op.create_table('sites',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('slurm_cluster', sa.String(length=64), nullable=False),
    sa.Column('scheduler_adapter', sa.String(length=32), nullable=False),
    sa.Column('slurm_conf', sa.String(length=500), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('last_sync_at', sa.DateTime(), nullable=True),
    sa.Column('last_sync_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sites')),
    sa.UniqueConstraint('name', name=op.f('uq_sites_name')),
    sa.UniqueConstraint('slurm_cluster', name=op.f('uq_sites_slurm_cluster'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('affiliation', sa.String(length=300), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('unix_username', sa.String(length=32), nullable=True),
    sa.Column('password_hash', sa.String(length=256), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email')),
    sa.UniqueConstraint('unix_username', name=op.f('uq_users_unix_username'))
    )
    op.create_table('memberships',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('pi', 'co_pi', 'member', name='project_role', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('joined_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_memberships_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_memberships_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_memberships')),
    sa.UniqueConstraint('project_id', 'user_id', name=op.f('uq_memberships_project_id'))
    )
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_memberships_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_memberships_user_id'), ['user_id'], unique=False)

    op.create_table('partitions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('resource_kind', sa.Enum('cpu', 'gpu', name='resource_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('kind_set_by_staff', sa.Boolean(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('max_time_minutes', sa.Integer(), nullable=True),
    sa.Column('default_time_minutes', sa.Integer(), nullable=True),
    sa.Column('max_nodes', sa.Integer(), nullable=True),
    sa.Column('total_nodes', sa.Integer(), nullable=False),
    sa.Column('cpus_per_node', sa.Integer(), nullable=False),
    sa.Column('gpus_per_node', sa.Integer(), nullable=False),
    sa.Column('mem_per_node_mb', sa.Integer(), nullable=True),
    sa.Column('synced_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint('cpus_per_node >= 0 AND gpus_per_node >= 0 AND total_nodes >= 0', name=op.f('ck_partitions_non_negative_sizes')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_partitions_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partitions')),
    sa.UniqueConstraint('site_id', 'name', name=op.f('uq_partitions_site_id'))
    )
    with op.batch_alter_table('partitions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partitions_site_id'), ['site_id'], unique=False)

    op.create_table('role_grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('pi', 'member', 'reviewer', 'staff', 'admin', name='role', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_role_grants_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_grants')),
    sa.UniqueConstraint('user_id', 'role', name=op.f('uq_role_grants_user_id'))
    )
    with op.batch_alter_table('role_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_role_grants_user_id'), ['user_id'], unique=False)



def downgrade():
    with op.batch_alter_table('role_grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_role_grants_user_id'))

    op.drop_table('role_grants')
    with op.batch_alter_table('partitions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_partitions_site_id'))

    op.drop_table('partitions')
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_memberships_user_id'))
        batch_op.drop_index(batch_op.f('ix_memberships_project_id'))

    op.drop_table('memberships')
    op.drop_table('users')
    op.drop_table('sites')
    op.drop_table('projects')
