"""Pure parsers for Slurm client output; no commands run here, so all of it is unit-tested."""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from portal.slurm.types import AccountUsage, JobEfficiency, JobState, JobStatus, NodeFeatures, PartitionInfo, QosInfo, UsageRecord, job_state_from_slurm

_UNSET = {"", "none", "unknown", "n/a", "(null)", "unlimited", "infinite", "partition_limit"}
_DURATION = re.compile(
    r"(?:(?P<days>\d+)-)?(?P<a>\d+)(?::(?P<b>\d+))?(?::(?P<c>\d+))?")

SACCT_FIELDS = ("JobIDRaw", "JobName", "Account", "User", "Partition", "State", "Reason",
                "Submit", "Start", "End", "ElapsedRaw", "AllocCPUS", "CPUTimeRAW",
                "AllocTRES", "ExitCode", "TimelimitRaw")
# The job's allocations and their steps, as seff reads them.
EFFICIENCY_FIELDS = ("JobID", "State", "ExitCode", "ElapsedRaw", "TimelimitRaw", "AllocCPUS", "TotalCPU",
                     "CPUTimeRAW", "MaxRSS", "ReqMem", "AllocTRES", "NNodes")
_CPU_TIME = re.compile(r"(?:(?P<days>\d+)-)?(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+)(?:\.(?P<frac>\d+))?")
_MEMORY = re.compile(r"(?P<n>\d+(?:\.\d+)?)(?P<unit>[KMGTP]?)(?P<per>[nc]?)", re.I)
_KIB = {"": 1 / 1024, "K": 1, "M": 1024, "G": 1024 ** 2, "T": 1024 ** 3, "P": 1024 ** 4}


def _blank(text: object) -> bool:
    return text is None or str(text).strip().lower() in _UNSET


def parse_int(text: object) -> int | None:
    """An integer, or None for Slurm's empty/UNLIMITED/N/A spellings."""
    if _blank(text):
        return None
    return int(float(str(text).strip()))


def parse_slurm_duration(text: str) -> int | None:
    """A Slurm time limit in whole minutes (seconds round up); None means unlimited.

    Formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S (as sbatch --time documents them).
    """
    if _blank(text):
        return None
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not a Slurm duration: {text!r}")
    days = int(match["days"] or 0)
    parts = [int(p) for p in (match["a"], match["b"], match["c"]) if p is not None]
    if match["days"] is not None:  # D-H[:M[:S]]
        hours, minutes, seconds = (parts + [0, 0])[:3]
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    elif len(parts) == 2:
        hours, (minutes, seconds) = 0, parts
    else:
        hours, minutes, seconds = 0, parts[0], 0
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    return -(-total // 60)


def parse_slurm_time(text: object) -> datetime | None:
    """An ISO timestamp printed with TZ=UTC (or epoch seconds from --json), as UTC."""
    if isinstance(text, int | float):
        return datetime.fromtimestamp(text, UTC) if text > 0 else None
    if _blank(text):
        return None
    return datetime.fromisoformat(str(text).strip()).replace(tzinfo=UTC)


def parse_tres(text: str | None) -> dict[str, int]:
    """'cpu=2,mem=100M,gres/gpu=1' -> {'cpu': 2, 'mem': 100, 'gres/gpu': 1}."""
    result: dict[str, int] = {}
    for item in (text or "").split(","):
        key, sep, value = item.strip().partition("=")
        number = re.match(r"-?\d+(\.\d+)?", value.strip())
        if sep and key and number:
            result[key] = int(float(number.group()))
    return result


def format_tres(tres: Mapping[str, int]) -> str:
    return ",".join(f"{key}={value}" for key, value in tres.items())


def parse_gres_gpus(gres: str | None) -> int:
    """GPUs in a node's Gres string: 'gpu:2', 'gpu:a100:4(S:0-1),shard:8' -> 2, 4."""
    total = 0
    for item in re.split(r",(?![^(]*\))", gres or ""):
        fields = re.sub(r"\(.*\)", "", item).split(":")
        if fields[0] == "gpu" and fields[-1].isdigit() and len(fields) > 1:
            total += int(fields[-1])
    return total


def parse_key_values(line: str) -> dict[str, str]:
    """One record of `scontrol show ... --oneliner`; values may contain spaces."""
    keys = list(re.finditer(r"(?:^|\s)([A-Za-z][\w/:.]*)=", line))
    return {m.group(1): line[m.end():keys[i + 1].start() if i + 1 < len(keys) else None].strip()
            for i, m in enumerate(keys)}


def parse_pipe_rows(text: str, fields: Sequence[str]) -> Iterator[dict[str, str]]:
    """Rows of `-P -n` output as dicts keyed by the requested fields."""
    for line in text.splitlines():
        if line.strip():
            values = line.split("|")
            yield dict(zip(fields, (v.strip() for v in values)))


def partitions_from_scontrol(partition_text: str, node_text: str) -> list[PartitionInfo]:
    nodes = [parse_key_values(line) for line in node_text.splitlines() if "NodeName=" in line]
    result = []
    for line in partition_text.splitlines():
        if "PartitionName=" not in line:
            continue
        part = parse_key_values(line)
        members = [n for n in nodes if part["PartitionName"] in n.get("Partitions", "").split(",")]
        total_nodes = parse_int(part.get("TotalNodes")) or 0
        result.append(PartitionInfo(
            name=part["PartitionName"],
            is_default=part.get("Default") == "YES",
            state=part.get("State", "UNKNOWN"),
            max_time_minutes=parse_slurm_duration(part.get("MaxTime", "UNLIMITED")),
            default_time_minutes=parse_slurm_duration(part.get("DefaultTime", "NONE")),
            max_nodes=parse_int(part.get("MaxNodes")),
            total_nodes=total_nodes,
            total_cpus=parse_int(part.get("TotalCPUs")) or 0,
            # Heterogeneous partitions: the smallest node is what a job can count on.
            cpus_per_node=min((parse_int(n.get("CPUTot")) or 0 for n in members), default=0),
            gpus_per_node=min((parse_gres_gpus(n.get("Gres")) for n in members), default=0),
            mem_per_node_mb=min((m for n in members
                                 if (m := parse_int(n.get("RealMemory"))) is not None),
                                default=None),
            max_cpus_per_node=parse_int(part.get("MaxCPUsPerNode")),
        ))
    return result


def jobs_from_squeue_json(document: Mapping[str, Any],
                          now: datetime | None = None) -> list[JobStatus]:
    """Jobs from the parsed output of `squeue --json` (OpenAPI v0.0.38)."""
    now = now or datetime.now(UTC)
    jobs = []
    for raw in document.get("jobs", []):
        state = job_state_from_slurm(raw.get("job_state", ""))
        start, end = parse_slurm_time(raw.get("start_time")), parse_slurm_time(raw.get("end_time"))
        running = state not in (JobState.PENDING, JobState.REQUEUED) and start is not None
        elapsed = None
        if running and start is not None and start <= now:
            stop = end if state.is_final and end else now
            elapsed = max(0, int((min(stop, now) - start).total_seconds()))
        task = raw.get("array_task_id")
        job_id = (f"{raw['array_job_id']}_{task}" if raw.get("array_job_id") and task is not None
                  else str(raw["job_id"]))
        reason = raw.get("state_reason")
        jobs.append(JobStatus(
            job_id=job_id, name=raw.get("name", ""), state=state,
            reason=None if _blank(reason) else reason,
            account=raw.get("account", ""), user=raw.get("user_name", ""),
            partition=raw.get("partition", ""),
            submit_time=parse_slurm_time(raw.get("submit_time")),
            start_time=start if running else None, end_time=end if state.is_final else None,
            time_limit_minutes=parse_int(raw.get("time_limit")),
            exit_code=None if raw.get("exit_code") is None else str(raw["exit_code"]),
            elapsed_seconds=elapsed, alloc_cpus=parse_int(raw.get("cpus")),
            slurm_state=str(raw.get("job_state", "")),
            tres=parse_tres(raw.get("tres_alloc_str") or raw.get("tres_req_str")),
        ))
    return jobs


def jobs_from_sacct(text: str) -> list[JobStatus]:
    return [JobStatus(
        job_id=row["JobIDRaw"], name=row["JobName"], state=job_state_from_slurm(row["State"]),
        reason=None if _blank(row["Reason"]) else row["Reason"], account=row["Account"],
        user=row["User"], partition=row["Partition"],
        submit_time=parse_slurm_time(row["Submit"]), start_time=parse_slurm_time(row["Start"]),
        end_time=parse_slurm_time(row["End"]),
        time_limit_minutes=parse_int(row["TimelimitRaw"]), exit_code=row["ExitCode"] or None,
        elapsed_seconds=parse_int(row["ElapsedRaw"]), alloc_cpus=parse_int(row["AllocCPUS"]),
        slurm_state=row["State"], tres=parse_tres(row["AllocTRES"]),
    ) for row in parse_pipe_rows(text, SACCT_FIELDS)]


def usage_from_sacct(text: str) -> list[UsageRecord]:
    records = []
    for row in parse_pipe_rows(text, SACCT_FIELDS):
        elapsed = parse_int(row["ElapsedRaw"]) or 0
        records.append(UsageRecord(
            job_id=row["JobIDRaw"], account=row["Account"], user=row["User"],
            partition=row["Partition"], state=job_state_from_slurm(row["State"]),
            submit_time=parse_slurm_time(row["Submit"]),
            start_time=parse_slurm_time(row["Start"]), end_time=parse_slurm_time(row["End"]),
            elapsed_seconds=elapsed, alloc_cpus=parse_int(row["AllocCPUS"]) or 0,
            cpu_seconds=parse_int(row["CPUTimeRAW"]) or 0,
            gpu_seconds=parse_tres(row["AllocTRES"]).get("gres/gpu", 0) * elapsed,
            alloc_tres=row["AllocTRES"],
        ))
    return records


def _limit_and_use(text: str) -> tuple[int | None, int]:
    """'100(7)' -> (100, 7); 'N(7)' -> (None, 7): scontrol's LIMIT(USED) notation."""
    match = re.fullmatch(r"(\S+?)\((\d+(?:\.\d+)?)\)", text.strip())
    if not match:
        return parse_int(text if text.strip() != "N" else None), 0
    limit = None if match.group(1) == "N" else parse_int(match.group(1))
    return limit, int(float(match.group(2)))


def _tres_limits_and_use(text: str) -> tuple[dict[str, int], dict[str, int]]:
    limits: dict[str, int] = {}
    used: dict[str, int] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            continue
        limit, use = _limit_and_use(value)
        if limit is not None:
            limits[key] = limit
        if use:
            used[key] = use
    return limits, used


def account_usage_from_assoc_mgr(text: str) -> list[AccountUsage]:
    """Account associations from `scontrol show assoc_mgr flags=assoc`, with live use."""
    result = []
    for record in re.split(r"^(?=ClusterName=)", text, flags=re.M):
        head = parse_key_values(record.splitlines()[0]) if record.strip() else {}
        if not head.get("Account") or head.get("UserName") or head.get("Partition"):
            continue
        fields = {m.group(1): m.group(2) for m in re.finditer(r"\b(GrpTRESMins|GrpTRESRunMins|GrpJobs|GrpSubmitJobs)=(\S+)",
                                                               record)}
        limits, used = _tres_limits_and_use(fields.get("GrpTRESMins", ""))
        _, reserved = _tres_limits_and_use(fields.get("GrpTRESRunMins", ""))
        result.append(AccountUsage(
            account=head["Account"], limits=limits, used=used, reserved=reserved,
            submit_jobs_limit=_limit_and_use(fields.get("GrpSubmitJobs", "N(0)"))[0],
            running_jobs_limit=_limit_and_use(fields.get("GrpJobs", "N(0)"))[0]))
    return result


def parse_cpu_time_ms(text: str) -> int:
    """sacct's TotalCPU ('00:06.697', '01:02:03', '2-01:02:03') in milliseconds."""
    match = _CPU_TIME.fullmatch(text.strip())
    if not match:
        if _blank(text):
            return 0
        raise ValueError(f"not a CPU time: {text!r}")
    seconds = ((int(match["days"] or 0) * 24 + int(match["h"] or 0)) * 60 + int(match["m"])) * 60 + int(match["s"])
    return seconds * 1000 + int(((match["frac"] or "") + "000")[:3])


def parse_memory_kib(text: str, cpus: int = 1, nodes: int = 1) -> int | None:
    """sacct memory ('98516K', '300M', '2G'; older '150Mc' per CPU, '4Gn' per node) in KiB."""
    match = _MEMORY.fullmatch(text.strip())
    if not match:
        return None
    per = {"c": cpus, "n": nodes}.get(match["per"].lower(), 1)
    return round(float(match["n"]) * _KIB[match["unit"].upper()] * per)


def efficiency_from_sacct(text: str, job_id: str) -> JobEfficiency | None:
    """A job's efficiency from `sacct -P -n -j ID --format=EFFICIENCY_FIELDS` (allocation and
    step rows); None while accounting does not show the job and all its steps as ended."""
    rows = [row for row in parse_pipe_rows(text, EFFICIENCY_FIELDS)
            if row["JobID"].split(".")[0] == job_id or row["JobID"].startswith(job_id + "_")]
    allocations = [row for row in rows if "." not in row["JobID"]]
    steps = [row for row in rows if "." in row["JobID"]]
    if not allocations or not all(job_state_from_slurm(row["State"]).is_final for row in rows):
        return None
    states = [job_state_from_slurm(row["State"]) for row in allocations]
    failed = [i for i, state in enumerate(states) if state is not JobState.COMPLETED]
    first = allocations[failed[0] if failed else 0]
    elapsed = [parse_int(row["ElapsedRaw"]) or 0 for row in allocations]
    gpus = [parse_tres(row["AllocTRES"]).get("gres/gpu", 0) for row in allocations]
    rss = [kib for row in steps if (kib := parse_memory_kib(row["MaxRSS"])) is not None]
    requested = [kib for row in allocations if (kib := parse_memory_kib(
        row["ReqMem"], parse_int(row["AllocCPUS"]) or 1, parse_int(row["NNodes"]) or 1)) is not None]
    return JobEfficiency(
        job_id=job_id, state=job_state_from_slurm(first["State"]), exit_code=first["ExitCode"] or None,
        tasks=len(allocations), elapsed_seconds=max(elapsed),
        time_limit_minutes=parse_int(first["TimelimitRaw"]),
        alloc_cpus=max(parse_int(row["AllocCPUS"]) or 0 for row in allocations),
        cpu_time_seconds=sum(parse_int(row["CPUTimeRAW"]) or 0 for row in allocations),
        # seff adds up the steps; an allocation that never started a step used nothing.
        total_cpu_ms=sum(parse_cpu_time_ms(row["TotalCPU"]) for row in steps),
        max_rss_kib=max(rss, default=None), requested_mem_kib=max(requested, default=None),
        gpus=max(gpus), gpu_seconds=sum(g * e for g, e in zip(gpus, elapsed)))


QOS_FIELDS = ("Name", "MaxWall", "MaxTRES", "MaxTRESPerNode")


def qos_from_sacctmgr(text: str) -> list[QosInfo]:
    """``sacctmgr show qos -P -n format=Name,MaxWall,MaxTRES,MaxTRESPerNode`` rows."""
    return [QosInfo(name=row["Name"], max_wall_minutes=parse_slurm_duration(row["MaxWall"] or "UNLIMITED"),
                    max_tres_per_job=parse_tres(row["MaxTRES"]), max_tres_per_node=parse_tres(row["MaxTRESPerNode"]))
            for row in parse_pipe_rows(text, QOS_FIELDS) if row["Name"]]


def node_features_from_sinfo(text: str) -> list[NodeFeatures]:
    """``sinfo -h -N -o '%N|%f'`` lines: one node each, features comma-separated or (null)."""
    found = []
    for line in text.splitlines():
        node, sep, features = line.strip().partition("|")
        if sep and node:
            found.append(NodeFeatures(node, frozenset(f for f in features.split(",") if not _blank(f))))
    return found
