"""A proposal, the time it asks for, its team invitations, its evidence file and its history."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.calls.models import Call, Track
from portal.clock import utcnow
from portal.extensions import db
from portal.grants.models import Grant
from portal.identity.models import User, enum_column
from portal.projects.models import Project, ProjectRole
from portal.sites.models import HoursOf, Partition


class ProposalState(enum.Enum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    ADMISSIBLE = "admissible"
    INADMISSIBLE = "inadmissible"
    TECHNICALLY_ASSESSED = "technically_assessed"
    IN_REVIEW = "in_review"
    REVIEWED = "reviewed"  # reviews released to the PI; the right-to-reply window is open
    REPLIED = "replied"
    AWARDED = "awarded"
    REJECTED = "rejected"

    @property
    def label(self):
        return {
            ProposalState.DRAFT: _l("Draft"), ProposalState.SUBMITTED: _l("Submitted"),
            ProposalState.ADMISSIBLE: _l("Admissible"), ProposalState.INADMISSIBLE: _l("Not admissible"),
            ProposalState.TECHNICALLY_ASSESSED: _l("Technically assessed"),
            ProposalState.IN_REVIEW: _l("In peer review"), ProposalState.REVIEWED: _l("Reviews released"),
            ProposalState.REPLIED: _l("Replied to reviews"), ProposalState.AWARDED: _l("Awarded"),
            ProposalState.REJECTED: _l("Rejected"),
        }[self]


#: States in which staff may decide (award or reject).
DECIDABLE = {ProposalState.TECHNICALLY_ASSESSED, ProposalState.IN_REVIEW, ProposalState.REVIEWED,
             ProposalState.REPLIED}
FINAL = {ProposalState.INADMISSIBLE, ProposalState.AWARDED, ProposalState.REJECTED}


class Proposal(db.Model):
    __tablename__ = "proposals"
    __table_args__ = (CheckConstraint("storage_gib >= 0", name="storage_not_negative"),
                      # The staff work queues pick proposals by state; at a facility most are
                      # decided, and the few waiting are found without reading the rest.
                      Index("ix_proposals_state", "state"))

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="RESTRICT"), index=True)
    pi_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    state: Mapped[ProposalState] = mapped_column(enum_column(ProposalState, "proposal_state"),
                                                 default=ProposalState.DRAFT)
    title: Mapped[str] = mapped_column(String(300), default="")
    abstract: Mapped[str] = mapped_column(Text, default="")
    field_of_science: Mapped[str] = mapped_column(String(200), default="")
    track: Mapped[str] = mapped_column(String(32), default="")  # a Track value of the call
    justification: Mapped[str] = mapped_column(Text, default="")
    code_description: Mapped[str] = mapped_column(Text, default="")  # technical readiness: the code
    scaling_evidence: Mapped[str] = mapped_column(Text, default="")  # numbers, or see the evidence file
    # Integer GiB: exact like the minutes of the request; forms take and show TiB.
    storage_gib: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None]
    admissibility_comment: Mapped[str] = mapped_column(Text, default="")
    technical_feasible: Mapped[bool | None]
    technical_comment: Mapped[str] = mapped_column(Text, default="")
    reply_deadline: Mapped[datetime | None]  # end of the right-to-reply window
    reply: Mapped[str] = mapped_column(Text, default="")
    decision_feedback: Mapped[str] = mapped_column(Text, default="")
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"), index=True)
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grants.id", ondelete="SET NULL"), index=True)

    call: Mapped[Call] = relationship(lazy="joined")
    pi: Mapped[User] = relationship(lazy="joined")
    requests: Mapped[list[ProposalRequest]] = relationship(
        back_populates="proposal", cascade="all, delete-orphan", lazy="selectin", order_by="ProposalRequest.id")
    invitations: Mapped[list[Invitation]] = relationship(
        back_populates="proposal", cascade="all, delete-orphan", lazy="selectin", order_by="Invitation.id")
    evidence: Mapped[EvidenceFile | None] = relationship(back_populates="proposal", cascade="all, delete-orphan")
    project: Mapped[Project | None] = relationship()
    grant: Mapped[Grant | None] = relationship()

    def team_role_of(self, user: User) -> ProjectRole | None:
        if user.id == self.pi_id:
            return ProjectRole.PI
        return next((i.role for i in self.invitations if i.accepted_by_id == user.id), None)

    def can_view(self, user: User) -> bool:
        """Staff and the team; reviewers read proposals through their review assignment."""
        return user.is_staff or self.team_role_of(user) is not None

    def is_applicant(self, user: User) -> bool:
        return self.team_role_of(user) in (ProjectRole.PI, ProjectRole.CO_PI)

    def is_locked(self, now: datetime) -> bool:
        """Drafts stay editable; a submitted proposal until the cut-off; later states never."""
        if self.state is ProposalState.DRAFT:
            return False
        if self.state is ProposalState.SUBMITTED:
            return not self.call.accepts_submissions(now)
        return True

    def can_edit(self, user: User, now: datetime) -> bool:
        return self.is_applicant(user) and not self.is_locked(now)

    def request_for(self, partition_id: int) -> ProposalRequest | None:
        return next((r for r in self.requests if r.partition_id == partition_id), None)

    @property
    def track_label(self):
        return Track(self.track).label if self.track in {t.value for t in Track} else self.track

    @property
    def storage_tib(self) -> float:
        return self.storage_gib / 1024


class ProposalRequest(db.Model):
    """Time asked for on one partition of the call, and what the technical assessment recommends."""

    __tablename__ = "proposal_requests"
    __table_args__ = (
        UniqueConstraint("proposal_id", "partition_id"),
        CheckConstraint("requested_minutes > 0", name="requested_positive"),
        CheckConstraint("recommended_minutes IS NULL OR recommended_minutes >= 0", name="recommended_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id", ondelete="CASCADE"), index=True)
    partition_id: Mapped[int] = mapped_column(ForeignKey("partitions.id", ondelete="RESTRICT"), index=True)
    requested_minutes: Mapped[int] = mapped_column(BigInteger)
    recommended_minutes: Mapped[int | None] = mapped_column(BigInteger)

    proposal: Mapped[Proposal] = relationship(back_populates="requests")
    partition: Mapped[Partition] = relationship(lazy="joined")

    requested_hours = HoursOf("requested_minutes")
    recommended_hours = HoursOf("recommended_minutes")


class Invitation(db.Model):
    """A co-PI or member invited by e-mail; accepted by the person with that address signing in."""

    __tablename__ = "proposal_invitations"
    __table_args__ = (UniqueConstraint("proposal_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[ProjectRole] = mapped_column(enum_column(ProjectRole, "project_role"))
    nonce: Mapped[str] = mapped_column(String(64), unique=True)  # part of the signed link; single use
    invited_at: Mapped[datetime] = mapped_column(default=utcnow)
    accepted_at: Mapped[datetime | None]
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)

    proposal: Mapped[Proposal] = relationship(back_populates="invitations")
    accepted_by: Mapped[User | None] = relationship(lazy="joined")


class EvidenceFile(db.Model):
    """The uploaded scaling evidence (one per proposal), kept in the database with the proposal."""

    __tablename__ = "proposal_evidence_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id", ondelete="CASCADE"), unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    proposal: Mapped[Proposal] = relationship(back_populates="evidence")


#: What the history shows for each recorded action (the action itself is stored in English).
EVENT_LABELS = {
    "created": _l("created"), "edited": _l("edited"), "evidence uploaded": _l("evidence uploaded"),
    "invited": _l("invited"), "invitation accepted": _l("invitation accepted"), "submitted": _l("submitted"),
    "admissibility checked": _l("admissibility checked"), "technically assessed": _l("technically assessed"),
    "reviewer assigned": _l("reviewer assigned"), "conflict of interest declared": _l("conflict of interest declared"),
    "review submitted": _l("review submitted"), "reviews released": _l("reviews released"),
    "replied to reviews": _l("replied to reviews"), "awarded": _l("awarded"), "rejected": _l("rejected"),
    "over-award confirmed": _l("over-award confirmed"),
}


class ProposalEvent(db.Model):
    """Append-only history of a proposal: who changed what, when.

    ``staff_only`` events (reviewer assignments) are hidden from the applicants, so a PI never
    learns who reviews their proposal.
    """

    __tablename__ = "proposal_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    staff_only: Mapped[bool] = mapped_column(default=False)

    actor: Mapped[User | None] = relationship(lazy="joined")

    @property
    def label(self):
        return EVENT_LABELS.get(self.action, self.action)
