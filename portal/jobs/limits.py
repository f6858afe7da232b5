"""What a job asks for, checked against a partition's limits as last read from Slurm."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from portal.jobs.schema import SBATCH_FEEDS
from portal.jobs.templates import JobTemplate
from portal.sites.models import Partition, ResourceKind


@dataclass(frozen=True)
class Resources:
    time_minutes: int
    nodes: int = 1
    ntasks: int = 1
    cpus_per_task: int = 1
    gpus: int = 0
    mem_mb: int | None = None
    array_tasks: int | None = None  # None: not an array

    @property
    def cpus(self) -> int:
        return self.ntasks * self.cpus_per_task

    def max_cost_minutes(self, kind: ResourceKind) -> int:
        """Core- or GPU-minutes if every task runs to its time limit."""
        per_job = (self.gpus if kind is ResourceKind.GPU else self.cpus) * self.time_minutes
        return per_job * (self.array_tasks or 1)

    def sbatch_header(self, job_name: str, account: str, partition: str, output: str) -> list[tuple[str, str]]:
        """The #SBATCH options in a fixed order; every value is a validated name or number."""
        header = [("--job-name", job_name), ("--account", account), ("--partition", partition),
                  ("--time", str(self.time_minutes)), ("--nodes", str(self.nodes)),
                  ("--ntasks", str(self.ntasks)), ("--cpus-per-task", str(self.cpus_per_task))]
        if self.gpus:
            header.append(("--gpus", str(self.gpus)))
        if self.mem_mb is not None:
            header.append(("--mem", f"{self.mem_mb}M"))
        if self.array_tasks is not None:
            header.append(("--array", f"0-{self.array_tasks - 1}"))
        header.append(("--output", output))
        return header


_FIELDS = {"--time": "time_minutes", "--nodes": "nodes", "--ntasks": "ntasks",
           "--cpus-per-task": "cpus_per_task", "--gpus": "gpus", "--mem": "mem_mb", "--array": "array_tasks"}
assert set(_FIELDS) == set(SBATCH_FEEDS)


def resources_for(template: JobTemplate, values: dict) -> Resources:
    fed = dict(template.fixed)
    fed.update({p.sbatch_option: values[p.name] for p in template.params.values() if p.sbatch_option})
    return Resources(**{_FIELDS[option]: value for option, value in fed.items()})


def limit_problems(template: JobTemplate, partition: Partition, res: Resources) -> dict[str, list[str]]:
    """Messages naming the limit and the value, keyed by the parameter that feeds the option."""
    where = {p.sbatch_option: p.name for p in template.params.values() if p.sbatch_option}
    problems: dict[str, list[str]] = {}

    def refuse(option: str, message) -> None:
        problems.setdefault(where.get(option, "partition"), []).append(str(message))

    name = partition.name
    if partition.state != "UP":
        refuse("partition", _l("partition %(p)s is %(state)s, not UP", p=name, state=partition.state))
    if partition.max_time_minutes is not None and res.time_minutes > partition.max_time_minutes:
        refuse("--time", _l("--time %(v)d min exceeds partition %(p)s's MaxTime of %(l)d min",
                            v=res.time_minutes, p=name, l=partition.max_time_minutes))
    max_nodes = min(n for n in (partition.max_nodes, partition.total_nodes) if n is not None)
    if res.nodes > max_nodes:
        refuse("--nodes", _l("--nodes %(v)d exceeds partition %(p)s's MaxNodes of %(l)d", v=res.nodes, p=name, l=max_nodes))
    if res.ntasks < res.nodes:
        refuse("--ntasks", _l("--ntasks %(v)d is fewer than --nodes %(n)d", v=res.ntasks, n=res.nodes))
    nodes_used = min(res.nodes, max_nodes)
    if res.cpus_per_task > partition.usable_cpus_per_node:
        refuse("--cpus-per-task", _l("--cpus-per-task %(v)d exceeds partition %(p)s's %(l)d CPUs per node",
                                     v=res.cpus_per_task, p=name, l=partition.usable_cpus_per_node))
    elif res.cpus > partition.usable_cpus_per_node * nodes_used:
        refuse("--ntasks", _l("%(v)d CPUs (--ntasks x --cpus-per-task) exceed partition %(p)s's %(l)d CPUs "
                              "on %(n)d node(s)", v=res.cpus, p=name, l=partition.usable_cpus_per_node * nodes_used, n=nodes_used))
    if template.kind == "gpu" and partition.gpus_per_node == 0:
        refuse("partition", _l("partition %(p)s has no GPUs", p=name))
    elif res.gpus > partition.gpus_per_node * nodes_used:
        refuse("--gpus", _l("--gpus %(v)d exceeds partition %(p)s's %(l)d GPUs on %(n)d node(s)",
                            v=res.gpus, p=name, l=partition.gpus_per_node * nodes_used, n=nodes_used))
    if res.mem_mb is not None and partition.mem_per_node_mb is not None and res.mem_mb > partition.mem_per_node_mb:
        refuse("--mem", _l("--mem %(v)d MB exceeds partition %(p)s's %(l)d MB per node",
                           v=res.mem_mb, p=name, l=partition.mem_per_node_mb))
    return problems
