"""user locale: the interface and e-mail language each person chose

Revision ID: b3f7a9c1d2e4
Revises: e2c4a6b8d0f1
Create Date: 2026-12-05 13:10:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'b3f7a9c1d2e4'
down_revision = 'e2c4a6b8d0f1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('locale', sa.String(length=8), nullable=True))


def downgrade():
    with op.batch_alter_table('users') as batch:
        batch.drop_column('locale')
