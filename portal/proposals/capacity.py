"""What a call offers per partition, what its awards already took, and what an award would exceed.

"Awarded" counts every grant made from the call's proposals, top-ups included: the capacity
staff offered in the call is the capacity those grants share.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import func, select

from portal.calls.models import Call
from portal.extensions import db
from portal.formatting import format_number
from portal.grants.models import GrantAllocation
from portal.grants.summary import UNITS
from portal.proposals.models import Proposal
from portal.sites.models import Partition


def lock_call(call: Call) -> None:
    """Hold the call's row until the transaction ends: awards in one call happen one at a time,
    so two cannot both fit under the offer by reading the same "already awarded".

    PostgreSQL: ``SELECT ... FOR UPDATE``; a second award waits here, then reads what the first
    committed. SQLite ignores FOR UPDATE but lets one writer at a time in anyway. The lock also
    numbers the call's new projects one at a time (their codes count the projects made so far).
    Only the id is selected: the call's joined eager loads cannot be locked with it.
    """
    db.session.execute(select(Call.id).where(Call.id == call.id).with_for_update())


def awarded_in_call(call: Call) -> dict[int, int]:
    """Partition id -> minutes awarded so far on grants made from the call's proposals."""
    rows = db.session.execute(
        select(GrantAllocation.partition_id, func.sum(GrantAllocation.awarded_minutes))
        .join(Proposal, Proposal.grant_id == GrantAllocation.grant_id)
        .where(Proposal.call_id == call.id)
        .group_by(GrantAllocation.partition_id))
    return {partition_id: int(minutes) for partition_id, minutes in rows}


@dataclass(frozen=True)
class OverOffer:
    """An award that would take a partition past what the call offered on it."""

    partition: Partition
    offered_minutes: int
    awarded_minutes: int  # already, before this award
    asked_minutes: int

    @property
    def over_minutes(self) -> int:
        return self.awarded_minutes + self.asked_minutes - self.offered_minutes

    def message(self) -> str:
        hours = {name: format_number(getattr(self, f"{name}_minutes") / 60)
                 for name in ("offered", "awarded", "asked", "over")}
        return _("%(partition)s: %(offered)s %(unit)s offered, %(awarded)s already awarded, %(asked)s asked: "
                 "%(over)s over", partition=self.partition.label, unit=UNITS[self.partition.resource_kind], **hours)

    def record(self) -> dict[str, float]:
        """For the proposal's history and the audit log, in hours."""
        return {"offered": self.offered_minutes / 60, "already_awarded": self.awarded_minutes / 60,
                "asked": self.asked_minutes / 60, "over": self.over_minutes / 60}


def beyond_offer(call: Call, asked: dict[int, int]) -> list[OverOffer]:
    """The partitions on which ``asked`` (partition id -> minutes) plus what is awarded exceeds the offer.

    Call :func:`lock_call` first, in the same transaction, for the answer to hold until the commit.
    """
    awarded = awarded_in_call(call)
    excess = []
    for partition_id, minutes in asked.items():
        offer = call.offer_for(partition_id)
        if offer is not None and awarded.get(partition_id, 0) + minutes > offer.offered_minutes:
            excess.append(OverOffer(offer.partition, offer.offered_minutes, awarded.get(partition_id, 0), minutes))
    return excess
