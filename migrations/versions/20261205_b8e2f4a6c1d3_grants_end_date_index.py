"""indexes: grants by end date (the search page stops after a page of matches), proposals by state (staff queues)

Revision ID: b8e2f4a6c1d3
Revises: a9d4c2e7f610
Create Date: 2026-12-05 17:30:00

"""
from alembic import op

revision = 'b8e2f4a6c1d3'
down_revision = 'a9d4c2e7f610'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_grants_end_date_id', 'grants', ['end_date', 'id'], unique=False)
    op.create_index('ix_proposals_state', 'proposals', ['state'], unique=False)


def downgrade():
    op.drop_index('ix_proposals_state', table_name='proposals')
    op.drop_index('ix_grants_end_date_id', table_name='grants')
