"""A reviewer's assignment to a proposal: conflict declaration first, then scores and comments."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.clock import utcnow
from portal.extensions import db
from portal.identity.models import Role, User
from portal.proposals.models import Proposal

CRITERIA = ("excellence", "impact", "implementation")


class ReviewAssignment(db.Model):
    __tablename__ = "review_assignments"
    __table_args__ = (
        UniqueConstraint("proposal_id", "reviewer_id"),
        *(CheckConstraint(f"score_{c} IS NULL OR score_{c} BETWEEN 1 AND 5", name=f"score_{c}_1_to_5")
          for c in CRITERIA),
        CheckConstraint("submitted_at IS NULL OR has_conflict = false", name="no_review_with_conflict"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)
    has_conflict: Mapped[bool | None]  # None: not declared yet
    declared_at: Mapped[datetime | None]
    score_excellence: Mapped[int | None]
    score_impact: Mapped[int | None]
    score_implementation: Mapped[int | None]
    comment_applicant: Mapped[str] = mapped_column(Text, default="")
    comment_committee: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime | None]

    proposal: Mapped[Proposal] = relationship(lazy="joined")
    reviewer: Mapped[User] = relationship(lazy="joined")

    def can_access(self, user: User) -> bool:
        """Only the assigned reviewer, and only until they declare a conflict."""
        return user.id == self.reviewer_id and self.has_conflict is not True and user.has_role(Role.REVIEWER)

    @property
    def scores(self) -> dict[str, int | None]:
        return {c: getattr(self, f"score_{c}") for c in CRITERIA}

    @property
    def mean_score(self) -> float | None:
        if self.submitted_at is None:
            return None
        values = list(self.scores.values())
        return sum(values) / len(values)  # type: ignore[arg-type]
