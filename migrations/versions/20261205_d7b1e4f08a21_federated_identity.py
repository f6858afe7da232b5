"""federated identity: verified e-mail, profile (organisation, country, ORCID), disabled accounts,
roles granted by a provider's claims, the provider behind each identity link

Revision ID: d7b1e4f08a21
Revises: c5e9a7d2b3f1
Create Date: 2026-12-05 08:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'd7b1e4f08a21'
down_revision = 'c5e9a7d2b3f1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('email_verified', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch.add_column(sa.Column('orcid', sa.String(length=19), nullable=True))
        batch.add_column(sa.Column('profile_source', sa.String(length=64), server_default='', nullable=False))
        batch.add_column(sa.Column('profile_verified_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('profile_verified_by_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('disabled_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('disabled_reason', sa.String(length=500), server_default='', nullable=False))
        batch.create_foreign_key(batch.f('fk_users_profile_verified_by_id_users'), 'users',
                                 ['profile_verified_by_id'], ['id'], ondelete='SET NULL')
    with op.batch_alter_table('role_grants') as batch:
        batch.add_column(sa.Column('source', sa.String(length=64), server_default='', nullable=False))
    with op.batch_alter_table('identity_links') as batch:
        batch.add_column(sa.Column('provider', sa.String(length=32), server_default='', nullable=False))


def downgrade():
    with op.batch_alter_table('identity_links') as batch:
        batch.drop_column('provider')
    with op.batch_alter_table('role_grants') as batch:
        batch.drop_column('source')
    with op.batch_alter_table('users') as batch:
        batch.drop_constraint(batch.f('fk_users_profile_verified_by_id_users'), type_='foreignkey')
        for column in ('disabled_reason', 'disabled_at', 'profile_verified_by_id', 'profile_verified_at',
                       'profile_source', 'orcid', 'email_verified'):
            batch.drop_column(column)
