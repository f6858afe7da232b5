"""What a job asks for, checked against a partition's limits and what Slurm says live.

:class:`Resources` holds every validated value the portal writes into the ``#SBATCH``
header; :func:`limit_problems` checks it against the partition as last read from Slurm and
:func:`live_problems` against the QOS and node features Slurm reports now.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from portal.jobs.schema import SBATCH_FEEDS
from portal.jobs.templates import JobTemplate
from portal.sites.models import Partition, ResourceKind
from portal.slurm.base import Scheduler

# Feature names joined by & (all on one node) or | (any of them), as --constraint takes them.
CONSTRAINT = re.compile(r"[A-Za-z0-9_.-]{1,64}([&|][A-Za-z0-9_.-]{1,64}){0,15}")
DEPENDENCY = re.compile(r"[0-9]{1,12}([:,][0-9]{1,12}){0,31}")


@dataclass(frozen=True)
class Resources:
    time_minutes: int
    nodes: int = 1
    ntasks: int | None = None  # None: --ntasks-per-node x --nodes, or 1
    cpus_per_task: int = 1
    gpus: int = 0
    mem_mb: int | None = None
    array_tasks: int | None = None  # None: not an array
    gpus_per_node: int | None = None
    ntasks_per_node: int | None = None
    exclusive: bool = False
    constraint: str | None = None
    qos: str | None = None
    dependency: str | None = None  # job ids joined by ':' or ','
    mail_type: str | None = None
    array_throttle: int | None = None
    chdir: str | None = None  # relative to the user's job folder
    output: str | None = None  # folder relative to the user's job folder

    @property
    def tasks(self) -> int:
        if self.ntasks is not None:
            return self.ntasks
        return self.nodes * self.ntasks_per_node if self.ntasks_per_node else 1

    @property
    def cpus(self) -> int:
        return self.tasks * self.cpus_per_task

    @property
    def total_gpus(self) -> int:
        return self.gpus + (self.gpus_per_node or 0) * self.nodes

    @property
    def dependency_ids(self) -> list[str]:
        return re.split(r"[:,]", self.dependency) if self.dependency else []

    def max_cost_minutes(self, kind: ResourceKind, cpus_per_node: int = 0) -> int:
        """Core- or GPU-minutes if every task runs to its time limit (whole nodes if exclusive)."""
        cpus = max(self.cpus, self.nodes * cpus_per_node) if self.exclusive else self.cpus
        per_job = (self.total_gpus if kind is ResourceKind.GPU else cpus) * self.time_minutes
        return per_job * (self.array_tasks or 1)

    def array_spec(self) -> str | None:
        if self.array_tasks is None:
            return None
        return f"0-{self.array_tasks - 1}" + (f"%{self.array_throttle}" if self.array_throttle else "")

    def sbatch_header(self, job_name: str, account: str, partition: str, output: str, *,
                      mail_user: str | None = None) -> list[tuple[str, str | None]]:
        """The #SBATCH options in a fixed order; every value is a validated name or number
        (None: an option without a value)."""
        header: list[tuple[str, str | None]] = [
            ("--job-name", job_name), ("--account", account), ("--partition", partition),
            ("--time", str(self.time_minutes)), ("--nodes", str(self.nodes)), ("--ntasks", str(self.tasks)),
            ("--cpus-per-task", str(self.cpus_per_task))]
        optional = [("--ntasks-per-node", self.ntasks_per_node), ("--gpus", self.gpus or None),
                    ("--gpus-per-node", self.gpus_per_node), ("--mem", self.mem_mb and f"{self.mem_mb}M"),
                    ("--array", self.array_spec()), ("--constraint", self.constraint), ("--qos", self.qos),
                    ("--dependency", self.dependency and "afterok:" + ":".join(self.dependency_ids))]
        header += [(option, str(value)) for option, value in optional if value is not None]
        if self.exclusive:
            header.append(("--exclusive", None))
        if self.mail_type and self.mail_type != "NONE" and mail_user:
            header += [("--mail-type", self.mail_type), ("--mail-user", mail_user)]
        header.append(("--output", output))
        return header


_FIELDS = {"--time": "time_minutes", "--nodes": "nodes", "--ntasks": "ntasks",
           "--cpus-per-task": "cpus_per_task", "--gpus": "gpus", "--mem": "mem_mb", "--array": "array_tasks",
           "--gpus-per-node": "gpus_per_node", "--ntasks-per-node": "ntasks_per_node", "--exclusive": "exclusive",
           "--constraint": "constraint", "--qos": "qos", "--dependency": "dependency", "--mail-type": "mail_type",
           "--array-throttle": "array_throttle", "--chdir": "chdir", "--output": "output"}
assert set(_FIELDS) == set(SBATCH_FEEDS)


def resources_for(template: JobTemplate, values: dict) -> Resources:
    fed = dict(template.fixed)
    fed.update({p.sbatch_option: values[p.name] for p in template.params.values() if p.sbatch_option})
    return Resources(**{_FIELDS[option]: value for option, value in fed.items()})


class _Refusals:
    """Messages keyed by the parameter that feeds the option they are about."""

    def __init__(self, template: JobTemplate):
        self.where = {p.sbatch_option: p.name for p in template.params.values() if p.sbatch_option}
        self.problems: dict[str, list[str]] = {}

    def __call__(self, option: str, message) -> None:
        self.problems.setdefault(self.where.get(option, "partition"), []).append(str(message))


def limit_problems(template: JobTemplate, partition: Partition, res: Resources) -> dict[str, list[str]]:
    """Messages naming the limit and the value, keyed by the parameter that feeds the option."""
    refuse = _Refusals(template)
    name = partition.name
    if partition.state != "UP":
        refuse("partition", _l("partition %(p)s is %(state)s, not UP", p=name, state=partition.state))
    if partition.max_time_minutes is not None and res.time_minutes > partition.max_time_minutes:
        refuse("--time", _l("--time %(v)d min exceeds partition %(p)s's MaxTime of %(l)d min",
                            v=res.time_minutes, p=name, l=partition.max_time_minutes))
    max_nodes = min(n for n in (partition.max_nodes, partition.total_nodes) if n is not None)
    if res.nodes > max_nodes:
        refuse("--nodes", _l("--nodes %(v)d exceeds partition %(p)s's MaxNodes of %(l)d", v=res.nodes, p=name, l=max_nodes))
    if res.tasks < res.nodes:
        refuse("--ntasks", _l("--ntasks %(v)d is fewer than --nodes %(n)d", v=res.tasks, n=res.nodes))
    nodes_used = min(res.nodes, max_nodes)
    _cpu_problems(refuse, partition, res, nodes_used)
    _gpu_problems(refuse, template, partition, res, nodes_used)
    if res.mem_mb is not None and partition.mem_per_node_mb is not None and res.mem_mb > partition.mem_per_node_mb:
        refuse("--mem", _l("--mem %(v)d MB exceeds partition %(p)s's %(l)d MB per node",
                           v=res.mem_mb, p=name, l=partition.mem_per_node_mb))
    if res.array_throttle is not None and res.array_tasks is None:
        refuse("--array-throttle", _l("an array throttle needs an array (--array)"))
    if res.constraint is not None and not CONSTRAINT.fullmatch(res.constraint):
        refuse("--constraint", _l("--constraint %(v)s: give node features joined by & (all) or | (any)",
                                  v=res.constraint))
    if res.dependency is not None and not DEPENDENCY.fullmatch(res.dependency):
        refuse("--dependency", _l("--dependency %(v)s: give job ids separated by : or ,", v=res.dependency))
    return refuse.problems


def _cpu_problems(refuse, partition: Partition, res: Resources, nodes_used: int) -> None:
    name, per_node = partition.name, partition.usable_cpus_per_node
    if res.cpus_per_task > per_node:
        refuse("--cpus-per-task", _l("--cpus-per-task %(v)d exceeds partition %(p)s's %(l)d CPUs per node",
                                     v=res.cpus_per_task, p=name, l=per_node))
    elif res.ntasks_per_node and res.ntasks_per_node * res.cpus_per_task > per_node:
        refuse("--ntasks-per-node", _l("--ntasks-per-node %(v)d x --cpus-per-task %(c)d exceed partition %(p)s's "
                                       "%(l)d CPUs per node", v=res.ntasks_per_node, c=res.cpus_per_task, p=name,
                                       l=per_node))
    elif res.cpus > per_node * nodes_used:
        refuse("--ntasks", _l("%(v)d CPUs (--ntasks x --cpus-per-task) exceed partition %(p)s's %(l)d CPUs "
                              "on %(n)d node(s)", v=res.cpus, p=name, l=per_node * nodes_used, n=nodes_used))
    if res.ntasks is not None and res.ntasks_per_node and res.ntasks > res.ntasks_per_node * res.nodes:
        refuse("--ntasks", _l("--ntasks %(v)d exceeds --ntasks-per-node %(t)d x --nodes %(n)d",
                              v=res.ntasks, t=res.ntasks_per_node, n=res.nodes))


def _gpu_problems(refuse, template: JobTemplate, partition: Partition, res: Resources, nodes_used: int) -> None:
    name = partition.name
    if template.kind == "gpu" and partition.gpus_per_node == 0:
        refuse("partition", _l("partition %(p)s has no GPUs", p=name))
    elif res.gpus_per_node is not None and res.gpus_per_node > partition.gpus_per_node:
        refuse("--gpus-per-node", _l("--gpus-per-node %(v)d exceeds partition %(p)s's %(l)d GPUs per node",
                                     v=res.gpus_per_node, p=name, l=partition.gpus_per_node))
    elif res.total_gpus > partition.gpus_per_node * nodes_used:
        refuse("--gpus", _l("--gpus %(v)d exceeds partition %(p)s's %(l)d GPUs on %(n)d node(s)",
                            v=res.total_gpus, p=name, l=partition.gpus_per_node * nodes_used, n=nodes_used))


def live_problems(template: JobTemplate, partition: Partition, res: Resources,
                  scheduler: Scheduler) -> dict[str, list[str]]:
    """--qos and --constraint against the QOS list and node features Slurm reports now.

    Raises SchedulerError when Slurm does not answer (callers refuse: nothing was checked).
    """
    refuse = _Refusals(template)
    if res.qos is not None:
        found = {q.name: q for q in scheduler.qos()}
        qos = found.get(res.qos)
        if qos is None:
            refuse("--qos", _l("--qos %(v)s: Slurm has no such QOS (it has: %(names)s)",
                               v=res.qos, names=", ".join(sorted(found)) or "-"))
        else:
            _qos_limit_problems(refuse, res, qos)
    if res.constraint is not None and CONSTRAINT.fullmatch(res.constraint):
        nodes = scheduler.node_features(partition.name)
        _constraint_problems(refuse, res.constraint, partition.name, [n.features for n in nodes])
    return refuse.problems


def _qos_limit_problems(refuse, res: Resources, qos) -> None:
    if qos.max_wall_minutes is not None and res.time_minutes > qos.max_wall_minutes:
        refuse("--time", _l("--time %(v)d min exceeds QOS %(q)s's MaxWall of %(l)d min",
                            v=res.time_minutes, q=qos.name, l=qos.max_wall_minutes))
    asked = {"cpu": res.cpus, "node": res.nodes, "gres/gpu": res.total_gpus}
    for tres, value in asked.items():
        limit = qos.max_tres_per_job.get(tres)
        if limit is not None and value > limit:
            refuse("--qos", _l("%(tres)s %(v)d exceeds QOS %(q)s's MaxTRES of %(tres)s=%(l)d",
                               tres=tres, v=value, q=qos.name, l=limit))


def _constraint_problems(refuse, constraint: str, partition: str, nodes: list[frozenset[str]]) -> None:
    every = frozenset().union(*nodes) if nodes else frozenset()
    for alternative in constraint.split("|"):
        wanted = set(alternative.split("&"))
        missing = sorted(wanted - every)
        if missing:
            refuse("--constraint", _l("--constraint %(v)s: no node of partition %(p)s has feature %(f)s"
                                      " (features there: %(all)s)", v=constraint, p=partition,
                                      f=", ".join(missing), all=", ".join(sorted(every)) or "-"))
        elif not any(wanted <= features for features in nodes):
            refuse("--constraint", _l("--constraint %(v)s: no single node of partition %(p)s has all of %(f)s",
                                      v=constraint, p=partition, f=", ".join(sorted(wanted))))
