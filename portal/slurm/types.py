"""Scheduler-neutral value objects: what the portal knows about jobs, partitions, accounts.

Times are timezone-aware UTC datetimes; durations are whole seconds or minutes as named.
"""
from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


class JobState(enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    COMPLETING = "COMPLETING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    NODE_FAIL = "NODE_FAIL"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    PREEMPTED = "PREEMPTED"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"
    REQUEUED = "REQUEUED"
    UNDETERMINED = "UNDETERMINED"

    @property
    def is_final(self) -> bool:
        """True once the job will not run again (REQUEUED goes back to PENDING)."""
        return self in _FINAL


_FINAL = frozenset({
    JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT,
    JobState.NODE_FAIL, JobState.OUT_OF_MEMORY, JobState.PREEMPTED, JobState.BOOT_FAIL,
    JobState.DEADLINE,
})

# squeue's compact codes, plus long names that differ from ours.
_ALIASES = {
    "PD": JobState.PENDING, "R": JobState.RUNNING, "S": JobState.SUSPENDED,
    "CG": JobState.COMPLETING, "CD": JobState.COMPLETED, "F": JobState.FAILED,
    "CA": JobState.CANCELLED, "TO": JobState.TIMEOUT, "NF": JobState.NODE_FAIL,
    "OOM": JobState.OUT_OF_MEMORY, "PR": JobState.PREEMPTED, "BF": JobState.BOOT_FAIL,
    "DL": JobState.DEADLINE, "RQ": JobState.REQUEUED, "RF": JobState.REQUEUED,
    "RH": JobState.REQUEUED, "RS": JobState.REQUEUED, "RV": JobState.PENDING,
    "SE": JobState.REQUEUED, "SI": JobState.RUNNING, "SO": JobState.RUNNING,
    "ST": JobState.RUNNING, "RD": JobState.PENDING, "CF": JobState.PENDING,
    "REQUEUE_FED": JobState.REQUEUED, "REQUEUE_HOLD": JobState.REQUEUED,
    "RESV_DEL_HOLD": JobState.PENDING, "CONFIGURING": JobState.PENDING,
    "RESIZING": JobState.RUNNING, "SIGNALING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING, "SPECIAL_EXIT": JobState.REQUEUED,
    "STOPPED": JobState.RUNNING, "REVOKED": JobState.PENDING,
}


def job_state_from_slurm(text: str) -> JobState:
    """Map a Slurm state ('CANCELLED by 0', 'PD', 'RUNNING+', ['FAILED']) to a JobState."""
    if isinstance(text, list | tuple):  # squeue/sacct --json from 23.x give lists
        text = text[0] if text else ""
    word = re.split(r"[\s+,]", str(text).strip().upper(), maxsplit=1)[0]
    if word in JobState.__members__:
        return JobState[word]
    return _ALIASES.get(word, JobState.UNDETERMINED)


@dataclass(frozen=True)
class JobRequest:
    script: str
    account: str
    partition: str
    job_name: str
    workdir: str
    time_limit_minutes: int
    user: str | None = None  # Unix user to run as; root submits on their behalf
    nodes: int = 1
    ntasks: int = 1
    cpus_per_task: int = 1
    gpus: int = 0
    mem_mb: int | None = None
    output: str | None = None
    array: str | None = None
    environment: Mapping[str, str] | None = None


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    name: str
    state: JobState
    reason: str | None
    account: str
    user: str
    partition: str
    submit_time: datetime | None
    start_time: datetime | None
    end_time: datetime | None
    time_limit_minutes: int | None
    exit_code: str | None
    elapsed_seconds: int | None
    alloc_cpus: int | None
    slurm_state: str
    # TRES allocated (running, ended) or requested (pending): {'cpu': 2, 'gres/gpu': 1, ...}
    tres: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PartitionInfo:
    name: str
    is_default: bool
    state: str
    max_time_minutes: int | None  # None = UNLIMITED
    default_time_minutes: int | None
    max_nodes: int | None
    total_nodes: int
    total_cpus: int
    cpus_per_node: int
    gpus_per_node: int
    mem_per_node_mb: int | None
    max_cpus_per_node: int | None


@dataclass(frozen=True)
class AccountInfo:
    name: str
    parent: str | None
    description: str
    organization: str
    grp_tres_mins: Mapping[str, int] = field(default_factory=dict)
    grp_submit_jobs: int | None = None


@dataclass(frozen=True)
class AssociationInfo:
    """An account association (user None) or a user association, optionally per partition."""
    account: str
    user: str | None
    partition: str | None
    grp_tres_mins: Mapping[str, int] = field(default_factory=dict)
    grp_submit_jobs: int | None = None
    grp_jobs: int | None = None
    parent: str | None = None  # account associations only
    cluster: str | None = None


@dataclass(frozen=True)
class AccountUsage:
    """What the controller counts against an account's limits right now (TRES-minutes).

    ``used`` is what finished and running jobs have spent; ``reserved`` is what running jobs
    may still spend before their time limit (Slurm's GrpTRESRunMins), which Slurm's "safe"
    enforcement keeps free for them.
    """
    account: str
    limits: Mapping[str, int]  # GrpTRESMins; a TRES without a limit is absent
    used: Mapping[str, int]
    reserved: Mapping[str, int]
    submit_jobs_limit: int | None = None
    running_jobs_limit: int | None = None

    def left(self, tres: str) -> int | None:
        """Minutes a new job may still use on ``tres``: None when there is no limit."""
        if tres not in self.limits:
            return None
        return self.limits[tres] - self.used.get(tres, 0) - self.reserved.get(tres, 0)


@dataclass(frozen=True)
class UsageRecord:
    job_id: str
    account: str
    user: str
    partition: str
    state: JobState
    submit_time: datetime | None
    start_time: datetime | None
    end_time: datetime | None
    elapsed_seconds: int
    alloc_cpus: int
    cpu_seconds: int  # CPUTimeRAW
    gpu_seconds: int  # gres/gpu count from AllocTRES * elapsed
    alloc_tres: str


@dataclass(frozen=True)
class JobEfficiency:
    """How well an ended job used what it was given, as ``seff`` reports it.

    For an array job the numbers cover all of its tasks: CPU and GPU time add up, the
    elapsed time and the memory high-water mark are the largest of any task.
    """
    job_id: str
    state: JobState
    exit_code: str | None
    tasks: int  # allocations: 1, or an array's tasks
    elapsed_seconds: int
    time_limit_minutes: int | None  # per task; None = unlimited
    alloc_cpus: int
    cpu_time_seconds: int  # CPUTimeRAW: elapsed x allocated CPUs
    total_cpu_ms: int  # TotalCPU over the steps: user + system time the processes used
    max_rss_kib: int | None  # largest MaxRSS of any step; None when never sampled
    requested_mem_kib: int | None  # ReqMem of one task (whole job, all nodes)
    gpus: int
    gpu_seconds: int  # GPUs x elapsed

    @property
    def cpu_efficiency(self) -> float | None:
        """TotalCPU / CPUTime as a fraction (seff's "CPU Efficiency")."""
        return self.total_cpu_ms / 1000 / self.cpu_time_seconds if self.cpu_time_seconds else None

    @property
    def memory_efficiency(self) -> float | None:
        """MaxRSS / requested memory as a fraction (seff's "Memory Efficiency")."""
        if self.max_rss_kib is None or not self.requested_mem_kib:
            return None
        return self.max_rss_kib / self.requested_mem_kib

    @property
    def time_used(self) -> float | None:
        """Elapsed / time limit as a fraction; None without a limit."""
        return self.elapsed_seconds / (self.time_limit_minutes * 60) if self.time_limit_minutes else None


@dataclass(frozen=True)
class QosInfo:
    """A QOS as ``sacctmgr show qos`` lists it; limits the portal checks a job against."""
    name: str
    max_wall_minutes: int | None = None  # MaxWall; None: no limit
    max_tres_per_job: Mapping[str, int] = field(default_factory=dict)  # MaxTRES: {'cpu': 8, 'node': 2}
    max_tres_per_node: Mapping[str, int] = field(default_factory=dict)  # MaxTRESPerNode


@dataclass(frozen=True)
class NodeFeatures:
    """A node and the features a job may ask for with --constraint."""
    node: str
    features: frozenset[str]
