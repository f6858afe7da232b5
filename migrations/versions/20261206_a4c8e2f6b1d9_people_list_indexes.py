"""indexes for the people list: its orders (name, newest) and the countries in its filter menu

Revision ID: a4c8e2f6b1d9
Revises: f3a7c9e1b5d2
Create Date: 2026-12-06 03:00:00

"""
from alembic import op

revision = 'a4c8e2f6b1d9'
down_revision = 'f3a7c9e1b5d2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_users_name_id', 'users', ['name', 'id'], unique=False)
    op.create_index('ix_users_created_at_id', 'users', ['created_at', 'id'], unique=False)
    op.create_index('ix_users_country', 'users', ['country'], unique=False)


def downgrade():
    op.drop_index('ix_users_country', table_name='users')
    op.drop_index('ix_users_created_at_id', table_name='users')
    op.drop_index('ix_users_name_id', table_name='users')
