"""Import every model so that Alembic and ``db.create_all`` see the whole schema."""
from portal.audit.models import AuditEvent  # noqa: F401
from portal.benchmarks.models import BenchmarkMetric, BenchmarkRun  # noqa: F401
from portal.calls.models import AccessMode, Call, CallPartition  # noqa: F401
from portal.grants.models import FinalReport, Grant, GrantAlert, GrantAllocation, GrantRequest, JobUsage, PendingChange, SiteSyncState, SyncAction, SyncRun  # noqa: F401  # noqa: F401
from portal.identity.models import ApiToken, IdentityLink, RateLimitCounter, RoleGrant, User  # noqa: F401
from portal.jobs.models import SubmittedJob  # noqa: F401
from portal.mail.outbox import OutgoingMail  # noqa: F401
from portal.projects.models import Membership, Project  # noqa: F401
from portal.proposals.models import EvidenceFile, Invitation, Proposal, ProposalEvent, ProposalRequest  # noqa: F401
from portal.reviews.models import ReviewAssignment  # noqa: F401
from portal.sites.models import Partition, Site  # noqa: F401
