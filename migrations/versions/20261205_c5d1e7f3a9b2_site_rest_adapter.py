"""sites: slurmrestd URL, token file path and OpenAPI version for the rest scheduler adapter

Revision ID: c5d1e7f3a9b2
Revises: a17c3e9b5d20
Create Date: 2026-12-05 14:05:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'c5d1e7f3a9b2'
down_revision = 'a17c3e9b5d20'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sites') as batch_op:
        batch_op.add_column(sa.Column('rest_url', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('rest_token_file', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('rest_api_version', sa.String(length=16), server_default='v0.0.38',
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('sites') as batch_op:
        batch_op.drop_column('rest_api_version')
        batch_op.drop_column('rest_token_file')
        batch_op.drop_column('rest_url')
