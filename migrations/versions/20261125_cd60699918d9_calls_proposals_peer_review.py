"""calls proposals peer review

Revision ID: cd60699918d9
Revises: 7c8e51ada8f1
Create Date: 2026-11-25 15:26:55.259921

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'cd60699918d9'
down_revision = '7c8e51ada8f1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('access_modes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('review_workflow', sa.Enum('technical', 'full', name='review_workflow', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('typical_months', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_modes')),
    sa.UniqueConstraint('name', name=op.f('uq_access_modes_name'))
    )
    op.create_table('calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('access_mode_id', sa.Integer(), nullable=False),
    sa.Column('review_workflow', sa.Enum('technical', 'full', name='review_workflow', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('tracks', sa.String(length=200), nullable=False),
    sa.Column('eligible_countries', sa.String(length=500), nullable=False),
    sa.Column('opens_at', sa.DateTime(), nullable=False),
    sa.Column('closes_at', sa.DateTime(), nullable=True),
    sa.Column('allocation_start', sa.Date(), nullable=False),
    sa.Column('allocation_end', sa.Date(), nullable=False),
    sa.Column('min_reviewers', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint('allocation_end > allocation_start', name=op.f('ck_calls_allocation_ends_after_start')),
    sa.CheckConstraint('closes_at IS NULL OR closes_at > opens_at', name=op.f('ck_calls_closes_after_opening')),
    sa.CheckConstraint('min_reviewers >= 0', name=op.f('ck_calls_min_reviewers_not_negative')),
    sa.ForeignKeyConstraint(['access_mode_id'], ['access_modes.id'], name=op.f('fk_calls_access_mode_id_access_modes'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calls')),
    sa.UniqueConstraint('code', name=op.f('uq_calls_code'))
    )
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calls_access_mode_id'), ['access_mode_id'], unique=False)

    op.create_table('call_partitions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('partition_id', sa.Integer(), nullable=False),
    sa.Column('offered_minutes', sa.BigInteger(), nullable=False),
    sa.Column('max_request_minutes', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('offered_minutes > 0 AND max_request_minutes > 0', name=op.f('ck_call_partitions_positive_amounts')),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_call_partitions_call_id_calls'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['partition_id'], ['partitions.id'], name=op.f('fk_call_partitions_partition_id_partitions'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_partitions')),
    sa.UniqueConstraint('call_id', 'partition_id', name=op.f('uq_call_partitions_call_id'))
    )
    with op.batch_alter_table('call_partitions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_partitions_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_partitions_partition_id'), ['partition_id'], unique=False)

    op.create_table('proposals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('pi_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.Enum('draft', 'submitted', 'admissible', 'inadmissible', 'technically_assessed', 'in_review', 'reviewed', 'replied', 'awarded', 'rejected', name='proposal_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('abstract', sa.Text(), nullable=False),
    sa.Column('field_of_science', sa.String(length=200), nullable=False),
    sa.Column('track', sa.String(length=32), nullable=False),
    sa.Column('justification', sa.Text(), nullable=False),
    sa.Column('code_description', sa.Text(), nullable=False),
    sa.Column('scaling_evidence', sa.Text(), nullable=False),
    sa.Column('storage_gib', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(), nullable=True),
    sa.Column('admissibility_comment', sa.Text(), nullable=False),
    sa.Column('technical_feasible', sa.Boolean(), nullable=True),
    sa.Column('technical_comment', sa.Text(), nullable=False),
    sa.Column('reply_deadline', sa.DateTime(), nullable=True),
    sa.Column('reply', sa.Text(), nullable=False),
    sa.Column('decision_feedback', sa.Text(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('grant_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('storage_gib >= 0', name=op.f('ck_proposals_storage_not_negative')),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_proposals_call_id_calls'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], name=op.f('fk_proposals_grant_id_grants'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['pi_id'], ['users.id'], name=op.f('fk_proposals_pi_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_proposals_project_id_projects'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proposals'))
    )
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_proposals_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_proposals_grant_id'), ['grant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_proposals_pi_id'), ['pi_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_proposals_project_id'), ['project_id'], unique=False)

    op.create_table('proposal_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.Column('staff_only', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_proposal_events_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'], name=op.f('fk_proposal_events_proposal_id_proposals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proposal_events'))
    )
    with op.batch_alter_table('proposal_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_proposal_events_proposal_id'), ['proposal_id'], unique=False)

    op.create_table('proposal_evidence_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'], name=op.f('fk_proposal_evidence_files_proposal_id_proposals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proposal_evidence_files')),
    sa.UniqueConstraint('proposal_id', name=op.f('uq_proposal_evidence_files_proposal_id'))
    )
    op.create_table('proposal_invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('role', sa.Enum('pi', 'co_pi', 'member', name='project_role', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('invited_at', sa.DateTime(), nullable=False),
    sa.Column('accepted_at', sa.DateTime(), nullable=True),
    sa.Column('accepted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['accepted_by_id'], ['users.id'], name=op.f('fk_proposal_invitations_accepted_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'], name=op.f('fk_proposal_invitations_proposal_id_proposals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proposal_invitations')),
    sa.UniqueConstraint('nonce', name=op.f('uq_proposal_invitations_nonce')),
    sa.UniqueConstraint('proposal_id', 'email', name=op.f('uq_proposal_invitations_proposal_id'))
    )
    with op.batch_alter_table('proposal_invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_proposal_invitations_accepted_by_id'), ['accepted_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_proposal_invitations_proposal_id'), ['proposal_id'], unique=False)

    op.create_table('proposal_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('partition_id', sa.Integer(), nullable=False),
    sa.Column('requested_minutes', sa.BigInteger(), nullable=False),
    sa.Column('recommended_minutes', sa.BigInteger(), nullable=True),
    sa.CheckConstraint('recommended_minutes IS NULL OR recommended_minutes >= 0', name=op.f('ck_proposal_requests_recommended_not_negative')),
    sa.CheckConstraint('requested_minutes > 0', name=op.f('ck_proposal_requests_requested_positive')),
    sa.ForeignKeyConstraint(['partition_id'], ['partitions.id'], name=op.f('fk_proposal_requests_partition_id_partitions'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'], name=op.f('fk_proposal_requests_proposal_id_proposals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proposal_requests')),
    sa.UniqueConstraint('proposal_id', 'partition_id', name=op.f('uq_proposal_requests_proposal_id'))
    )
    with op.batch_alter_table('proposal_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_proposal_requests_partition_id'), ['partition_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_proposal_requests_proposal_id'), ['proposal_id'], unique=False)

    op.create_table('review_assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=False),
    sa.Column('assigned_at', sa.DateTime(), nullable=False),
    sa.Column('has_conflict', sa.Boolean(), nullable=True),
    sa.Column('declared_at', sa.DateTime(), nullable=True),
    sa.Column('score_excellence', sa.Integer(), nullable=True),
    sa.Column('score_impact', sa.Integer(), nullable=True),
    sa.Column('score_implementation', sa.Integer(), nullable=True),
    sa.Column('comment_applicant', sa.Text(), nullable=False),
    sa.Column('comment_committee', sa.Text(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint('score_excellence IS NULL OR score_excellence BETWEEN 1 AND 5', name=op.f('ck_review_assignments_score_excellence_1_to_5')),
    sa.CheckConstraint('score_impact IS NULL OR score_impact BETWEEN 1 AND 5', name=op.f('ck_review_assignments_score_impact_1_to_5')),
    sa.CheckConstraint('score_implementation IS NULL OR score_implementation BETWEEN 1 AND 5', name=op.f('ck_review_assignments_score_implementation_1_to_5')),
    sa.CheckConstraint('submitted_at IS NULL OR has_conflict = false', name=op.f('ck_review_assignments_no_review_with_conflict')),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'], name=op.f('fk_review_assignments_proposal_id_proposals'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reviewer_id'], ['users.id'], name=op.f('fk_review_assignments_reviewer_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_assignments')),
    sa.UniqueConstraint('proposal_id', 'reviewer_id', name=op.f('uq_review_assignments_proposal_id'))
    )
    with op.batch_alter_table('review_assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_assignments_proposal_id'), ['proposal_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_assignments_reviewer_id'), ['reviewer_id'], unique=False)
    # The access modes of DOMAIN.md, so a fresh installation can open calls at once
    # (portal.calls.operations.seed_access_modes adds any that are missing later).
    modes = sa.table('access_modes', sa.column('name', sa.String), sa.column('review_workflow', sa.String),
                     sa.column('typical_months', sa.Integer), sa.column('description', sa.Text))
    op.bulk_insert(modes, [
        {'name': 'Benchmark', 'review_workflow': 'technical', 'typical_months': 3, 'description': 'Small; evidence for larger calls.'},
        {'name': 'Development', 'review_workflow': 'technical', 'typical_months': 12, 'description': 'Code development and porting.'},
        {'name': 'Regular', 'review_workflow': 'full', 'typical_months': 12, 'description': 'Renewable; cut-off dates.'},
        {'name': 'Extreme Scale', 'review_workflow': 'full', 'typical_months': 12, 'description': 'The largest awards.'},
        {'name': 'AI Factory Playground', 'review_workflow': 'technical', 'typical_months': 3, 'description': 'Onboarding; first come, first served.'},
        {'name': 'AI Factory Fast Lane', 'review_workflow': 'technical', 'typical_months': 6, 'description': 'Fast technical and light scientific review.'},
        {'name': 'AI Factory Large Scale', 'review_workflow': 'full', 'typical_months': 12, 'description': 'Very large GPU-hour requests; full review.'},
    ])



def downgrade():
    with op.batch_alter_table('review_assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_assignments_reviewer_id'))
        batch_op.drop_index(batch_op.f('ix_review_assignments_proposal_id'))

    op.drop_table('review_assignments')
    with op.batch_alter_table('proposal_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_proposal_requests_proposal_id'))
        batch_op.drop_index(batch_op.f('ix_proposal_requests_partition_id'))

    op.drop_table('proposal_requests')
    with op.batch_alter_table('proposal_invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_proposal_invitations_proposal_id'))
        batch_op.drop_index(batch_op.f('ix_proposal_invitations_accepted_by_id'))

    op.drop_table('proposal_invitations')
    op.drop_table('proposal_evidence_files')
    with op.batch_alter_table('proposal_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_proposal_events_proposal_id'))

    op.drop_table('proposal_events')
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_proposals_project_id'))
        batch_op.drop_index(batch_op.f('ix_proposals_pi_id'))
        batch_op.drop_index(batch_op.f('ix_proposals_grant_id'))
        batch_op.drop_index(batch_op.f('ix_proposals_call_id'))

    op.drop_table('proposals')
    with op.batch_alter_table('call_partitions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_partitions_partition_id'))
        batch_op.drop_index(batch_op.f('ix_call_partitions_call_id'))

    op.drop_table('call_partitions')
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calls_access_mode_id'))

    op.drop_table('calls')
    op.drop_table('access_modes')
