"""reconciler service: pending changes per project, retries with backoff, drift found

Revision ID: 8a3e5f61c2d4
Revises: 4f1d2c7a9b10
Create Date: 2026-12-02 02:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '8a3e5f61c2d4'
down_revision = '4f1d2c7a9b10'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'slurm_pending_changes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=True),
        sa.Column('marked_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_slurm_pending_changes_project_id_projects'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_slurm_pending_changes_site_id_sites'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_slurm_pending_changes')),
    )
    with op.batch_alter_table('slurm_pending_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slurm_pending_changes_site_id'), ['site_id'], unique=False)
    # Sites that were waiting for Slurm wait on as whole-site changes.
    op.execute("INSERT INTO slurm_pending_changes (site_id, project_id, marked_at)"
               " SELECT site_id, NULL, COALESCE(pending_since, CURRENT_TIMESTAMP) FROM slurm_site_state WHERE pending")
    with op.batch_alter_table('slurm_site_state', schema=None) as batch_op:
        batch_op.drop_column('pending')
        batch_op.drop_column('pending_since')
        batch_op.add_column(sa.Column('last_success_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_full_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('drift_found', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('slurm_site_state', schema=None) as batch_op:
        batch_op.drop_column('drift_found')
        batch_op.drop_column('last_full_at')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('attempts')
        batch_op.drop_column('last_success_at')
        batch_op.add_column(sa.Column('pending_since', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('pending', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE slurm_site_state SET pending = TRUE WHERE site_id IN (SELECT site_id FROM slurm_pending_changes)")
    with op.batch_alter_table('slurm_pending_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slurm_pending_changes_site_id'))
    op.drop_table('slurm_pending_changes')
