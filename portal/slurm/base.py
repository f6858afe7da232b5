"""The scheduler port: the one interface the portal codes against."""
from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from portal.slurm.types import AccountInfo, AccountUsage, AssociationInfo, JobEfficiency, JobRequest, JobStatus, NodeFeatures, PartitionInfo, QosInfo, UsageRecord

if TYPE_CHECKING:
    from portal.slurm.accounting import Plan


def select_jobs(fetch: Callable[[], Sequence[JobStatus]], *, user: str | None = None, account: str | None = None,
                job_ids: Sequence[str] | None = None) -> list[JobStatus]:
    """The jobs ``fetch()`` returns that match every filter; filters are validated before
    anything is fetched.

    Slurm 22.05 filters neither `squeue --json` nor slurmrestd's job list: adapters do it here.
    """
    from portal.slurm import names

    if user is not None:
        names.validate_user_name(user)
    if account is not None:
        names.validate_account_name(account)
    wanted = {names.validate_job_id(j) for j in job_ids} if job_ids is not None else None
    return [job for job in fetch() if (user is None or job.user == user)
            and (account is None or job.account == account) and (wanted is None or job.job_id in wanted)]


class Scheduler(abc.ABC):
    """A batch scheduler plus its accounting database.

    Every method raises :class:`~portal.slurm.errors.SchedulerUnreachable` when the
    scheduler cannot be reached, :class:`~portal.slurm.errors.InvalidName` before running
    anything when a name is unsafe, and :class:`~portal.slurm.errors.SchedulerCommandFailed`
    when the scheduler refuses. Adding what exists and removing what is gone succeed.
    """

    # Keys of what this adapter only approximates or cannot do (portal.grants.status words
    # them for staff); see portal.slurm.rest for the rest adapter's.
    limitations: Sequence[str] = ()

    @abc.abstractmethod
    def cluster_name(self) -> str: ...

    @abc.abstractmethod
    def ping(self) -> None:
        """Return if the controller answers, else raise SchedulerUnreachable."""

    @abc.abstractmethod
    def partitions(self) -> list[PartitionInfo]: ...

    def qos(self) -> list[QosInfo]:
        """Every QOS with the limits a job is checked against before it is submitted."""
        raise NotImplementedError

    def node_features(self, partition: str) -> list[NodeFeatures]:
        """The nodes of a partition with the features --constraint may name."""
        raise NotImplementedError

    @abc.abstractmethod
    def submit(self, request: JobRequest) -> str:
        """Submit a batch job and return its id."""

    @abc.abstractmethod
    def jobs(self, *, user: str | None = None, account: str | None = None,
             job_ids: Sequence[str] | None = None) -> list[JobStatus]:
        """Jobs in the queue (pending, running, and recently finished)."""

    @abc.abstractmethod
    def job(self, job_id: str) -> JobStatus:
        """One job from the queue, or from accounting once it has left the queue."""

    @abc.abstractmethod
    def cancel(self, job_id: str) -> None: ...

    @abc.abstractmethod
    def job_efficiency(self, job_id: str) -> JobEfficiency | None:
        """How an ended job used its allocation (all tasks of an array job); None while
        accounting does not yet show the job and all its steps as ended."""

    @abc.abstractmethod
    def accounts(self) -> list[AccountInfo]: ...

    @abc.abstractmethod
    def associations(self, accounts: Sequence[str] | None = None, *,
                     cluster: str | None = None) -> list[AssociationInfo]:
        """Account and user associations (partition-level ones included) with their limits:
        of every account, or of the named ones only (not their sub-accounts)."""

    @abc.abstractmethod
    def apply_accounting(self, plan: Plan) -> int:
        """Make the changes of an accounting plan; return the number of calls it took.

        Additions and limit changes first (new accounts with their limits), then moves and
        removals. A change the scheduler refuses does not stop the others: callers read the
        associations back to see what took effect. Raises SchedulerUnreachable.
        """

    @abc.abstractmethod
    def account_usage(self, accounts: Sequence[str]) -> dict[str, AccountUsage]:
        """Live limits and usage of accounts as the controller enforces them (no accounting
        database involved); accounts the controller does not know are absent."""

    @abc.abstractmethod
    def add_account(self, name: str, *, parent: str | None = None, description: str = "",
                    organization: str = "", grp_tres_mins: Mapping[str, int] | None = None,
                    grp_submit_jobs: int | None = None) -> None: ...

    @abc.abstractmethod
    def modify_account(self, name: str, *, grp_tres_mins: Mapping[str, int] | None = None,
                       grp_submit_jobs: int | None = None) -> None:
        """Change limits; a TRES value of -1 or grp_submit_jobs=-1 clears that limit."""

    @abc.abstractmethod
    def remove_account(self, name: str) -> None: ...

    @abc.abstractmethod
    def add_user(self, account: str, user: str, *, partition: str | None = None) -> None: ...

    @abc.abstractmethod
    def remove_user(self, account: str, user: str) -> None: ...

    def association_ready(self, account: str, user: str) -> bool:
        """Whether the controller would accept jobs for (account, user) now."""
        return True

    def wait_for_association(self, account: str, user: str, timeout: float = 30) -> None:  # noqa: B027 (optional)
        """Block until the controller will accept jobs for (account, user).

        Accounting changes reach the controller a moment after they are stored; adapters
        whose changes are synchronous need not override this.
        """

    @abc.abstractmethod
    def usage(self, start: datetime, end: datetime,
              accounts: Sequence[str] | None = None) -> list[UsageRecord]:
        """Jobs (allocations, not steps) that ran between start and end, all users."""
