"""Pure converters of slurmrestd documents (OpenAPI v0.0.38, Slurm 22.05) into the portal's
value objects; no request is made here, so all of it is unit-tested.

Slurm prints "unset" and "unlimited" as sentinels (0xFFFFFFFE, -1, null) and TRES as lists of
``{"type", "name", "count"}``; these become None and ``{'cpu': 2, 'gres/gpu': 1}`` as the
command-line parsers (:mod:`portal.slurm.parsing`) give them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from portal.slurm import names
from portal.slurm.parsing import EFFICIENCY_FIELDS, parse_gres_gpus, parse_tres
from portal.slurm.types import AccountUsage, AssociationInfo, JobState, JobStatus, PartitionInfo, QosInfo, UsageRecord, job_state_from_slurm

# Slurm's NO_VAL/INFINITE sentinels as the 22.05 parsers print them.
_NO_VALUE = {0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFE, 0xFFFFFFFFFFFFFFFF}


def number(value: Any) -> int | None:
    """An integer, or None for null, negative and Slurm's 'unset'/'infinite' values."""
    if value is None or isinstance(value, bool):
        return None
    try:
        whole = int(value)
    except (TypeError, ValueError):
        return None
    return None if whole < 0 or whole in _NO_VALUE else whole


def _tres_key(item: Mapping[str, Any]) -> str:
    return f"{item['type']}/{item['name']}" if item.get("name") else str(item["type"])


def tres_dict(items: Sequence[Mapping[str, Any]] | None) -> dict[str, int]:
    return {_tres_key(i): int(i["count"]) for i in items or () if number(i.get("count")) is not None}


def tres_list(tres: Mapping[str, int]) -> list[dict[str, Any]]:
    out = []
    for key, value in tres.items():
        names.validate_tres_name(key)
        names.validate_count(value, f"GrpTRESMins {key}", minimum=-1)
        kind, _, name = key.partition("/")
        out.append({"type": kind, "name": name or None, "count": value})
    return out


def tres_text(tres: Mapping[str, int]) -> str:
    """sacct's AllocTRES spelling ('cpu=2,mem=100M,gres/gpu=1') of a TRES dict."""
    return ",".join(f"{k}={v}M" if k == "mem" else f"{k}={v}" for k, v in tres.items())


def _cpu_time(microseconds: int) -> str:
    seconds, micro = divmod(max(microseconds, 0), 1_000_000)
    hours, rest = divmod(seconds, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}.{micro // 1000:03d}"




def partitions_from_rest(parts: Sequence[Mapping[str, Any]], nodes: Sequence[Mapping[str, Any]]) -> list[PartitionInfo]:
    """``/slurm/v0.0.38/partitions`` and ``/nodes`` as scontrol's parser reads them."""
    result = []
    for part in parts:
        members = [n for n in nodes if part["name"] in (n.get("partitions") or [])]
        result.append(PartitionInfo(
            name=part["name"], is_default="default" in (part.get("flags") or []),
            state=str(part.get("state", "UNKNOWN")).upper(),
            max_time_minutes=number(part.get("max_time_limit")),
            default_time_minutes=number(part.get("default_time_limit")),
            max_nodes=number(part.get("maximum_nodes_per_job")),
            total_nodes=number(part.get("total_nodes")) or 0,
            total_cpus=number(part.get("total_cpus")) or 0,
            # Heterogeneous partitions: the smallest node is what a job can count on.
            cpus_per_node=min((number(n.get("cpus")) or 0 for n in members), default=0),
            gpus_per_node=min((parse_gres_gpus(n.get("gres")) for n in members), default=0),
            mem_per_node_mb=min((m for n in members if (m := number(n.get("real_memory"))) is not None), default=None),
            max_cpus_per_node=number(part.get("maximum_cpus_per_node"))))
    return result


def qos_from_rest(rows: Sequence[Mapping[str, Any]]) -> list[QosInfo]:
    found = []
    for qos in rows:
        limits = (qos.get("limits") or {}).get("max") or {}
        per = (limits.get("tres") or {}).get("per") or {}
        found.append(QosInfo(name=qos["name"],
                             max_wall_minutes=number(((limits.get("wall_clock") or {}).get("per") or {}).get("job")),
                             max_tres_per_job=tres_dict(per.get("job")), max_tres_per_node=tres_dict(per.get("node"))))
    return found


def account_usage_from_records(limits: Mapping[str, AssociationInfo], records: Sequence[Mapping[str, Any]],
                               now: float) -> dict[str, AccountUsage]:
    """What Slurm would count against each account, added up from its job records.

    slurmrestd 22.05 has no live association usage; with PriorityDecayHalfLife=0 (a grant is a
    hard budget) the controller's counter is the sum of TRES x minutes of every job, which is
    what this adds up. Running jobs also reserve what they may still use (GrpTRESRunMins).
    """
    used: dict[str, dict[str, float]] = {a: {} for a in limits}
    reserved: dict[str, dict[str, float]] = {a: {} for a in limits}
    for record in records:
        account = record.get("account")
        if account not in used:
            continue
        times = record.get("time") or {}
        tres = tres_dict((record.get("tres") or {}).get("allocated"))
        state = job_state_from_slurm((record.get("state") or {}).get("current", ""))
        start = number(times.get("start")) or 0
        elapsed = number(times.get("elapsed")) or 0
        if state is JobState.RUNNING and start:
            elapsed = max(elapsed, int(now - start))
            left = max(0, (number(times.get("limit")) or 0) * 60 - elapsed)
            for key, count in tres.items():
                reserved[account][key] = reserved[account].get(key, 0) + count * left / 60
        for key, count in tres.items():
            used[account][key] = used[account].get(key, 0) + count * elapsed / 60
    return {name: AccountUsage(
        account=name, limits=dict(assoc.grp_tres_mins),
        used={k: int(v) for k, v in used[name].items() if int(v)},
        reserved={k: int(v) for k, v in reserved[name].items() if int(v)},
        submit_jobs_limit=assoc.grp_submit_jobs, running_jobs_limit=assoc.grp_jobs)
        for name, assoc in limits.items()}


def record_id(record: Mapping[str, Any]) -> str:
    array = record.get("array") or {}
    task = array.get("task_id")
    if number(array.get("job_id")) and task is not None and number(task) is not None:
        return f"{array['job_id']}_{task}"
    return str(record.get("job_id"))


def association_info(row: Mapping[str, Any]) -> AssociationInfo:
    limits = row.get("max") or {}
    per = ((limits.get("jobs") or {}).get("per")) or {}
    return AssociationInfo(
        account=row["account"], user=row.get("user") or None, partition=row.get("partition") or None,
        grp_tres_mins=tres_dict(((limits.get("tres") or {}).get("group") or {}).get("minutes")),
        # slurmrestd 22.05 prints GrpSubmitJobs as max/jobs/per/submitted, GrpJobs as .../count.
        grp_submit_jobs=number(per.get("submitted")), grp_jobs=number(per.get("count")),
        parent=row.get("parent_account") or None, cluster=row.get("cluster") or None)


def _time(value: Any) -> datetime | None:
    seconds = number(value)
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


def usage_record(record: Mapping[str, Any]) -> UsageRecord:
    times = record.get("time") or {}
    elapsed = number(times.get("elapsed")) or 0
    tres = tres_dict((record.get("tres") or {}).get("allocated"))
    return UsageRecord(
        job_id=record_id(record), account=record.get("account") or "", user=record.get("user") or "",
        partition=record.get("partition") or "",
        state=job_state_from_slurm((record.get("state") or {}).get("current", "")),
        submit_time=_time(times.get("submission")), start_time=_time(times.get("start")),
        end_time=_time(times.get("end")), elapsed_seconds=elapsed, alloc_cpus=tres.get("cpu", 0),
        cpu_seconds=tres.get("cpu", 0) * elapsed, gpu_seconds=tres.get("gres/gpu", 0) * elapsed,
        alloc_tres=tres_text(tres))


def status_from_db(record: Mapping[str, Any]) -> JobStatus:
    usage = usage_record(record)
    exit_code = record.get("exit_code") or {}
    reason = (record.get("state") or {}).get("reason")
    return JobStatus(
        job_id=usage.job_id, name=record.get("name") or "", state=usage.state,
        reason=None if reason in (None, "", "None") else reason, account=usage.account, user=usage.user,
        partition=usage.partition, submit_time=usage.submit_time, start_time=usage.start_time,
        end_time=usage.end_time, time_limit_minutes=number((record.get("time") or {}).get("limit")),
        exit_code=f"{exit_code.get('return_code', 0)}:0" if exit_code else None,
        elapsed_seconds=usage.elapsed_seconds, alloc_cpus=usage.alloc_cpus,
        slurm_state=str((record.get("state") or {}).get("current", "")), tres=parse_tres(usage.alloc_tres))


def efficiency_rows(record: Mapping[str, Any]) -> str:
    """A job's allocation and its steps as the `sacct -P` rows efficiency_from_sacct reads."""
    usage = usage_record(record)
    times = record.get("time") or {}
    required = record.get("required") or {}
    nodes = number(record.get("allocation_nodes")) or 1
    # The allocated memory is the job's whole request; required/memory may be per CPU and
    # 22.05 does not say which.
    memory = parse_tres(usage.alloc_tres).get("mem") or number(required.get("memory"))
    rows = [dict(JobID=usage.job_id, State=usage.state.value, ExitCode="0:0", ElapsedRaw=usage.elapsed_seconds,
                 TimelimitRaw=number(times.get("limit")) or "", AllocCPUS=usage.alloc_cpus, TotalCPU="",
                 CPUTimeRAW=usage.cpu_seconds, MaxRSS="", ReqMem=f"{memory}M" if memory else "",
                 AllocTRES=usage.alloc_tres, NNodes=nodes)]
    for step in record.get("steps") or ():
        stime = step.get("time") or {}
        total = stime.get("total") or {}
        micro = (number(total.get("seconds")) or 0) * 1_000_000 + (number(total.get("microseconds")) or 0)
        rss = tres_dict(((step.get("tres") or {}).get("requested") or {}).get("max"))
        step_id = (step.get("step") or {}).get("id", "")
        rows.append(dict(JobID=f"{usage.job_id}.{step_id}", State=str(step.get("state", "")), ExitCode="0:0",
                         ElapsedRaw=number(stime.get("elapsed")) or 0, TimelimitRaw="", AllocCPUS="",
                         TotalCPU=_cpu_time(micro), CPUTimeRAW="",
                         MaxRSS=f"{rss['mem'] // 1024}K" if "mem" in rss else "", ReqMem="", AllocTRES="", NNodes=""))
    return "\n".join("|".join(str(row[f]) for f in EFFICIENCY_FIELDS) for row in rows)
