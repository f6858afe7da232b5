"""Unit tests for the state map and the parsers of Slurm client output."""
from datetime import UTC, datetime

import pytest

from portal.slurm import JobState, job_state_from_slurm
from portal.slurm.parsing import SACCT_FIELDS, jobs_from_sacct, jobs_from_squeue_json, parse_gres_gpus, parse_key_values, parse_slurm_duration, parse_tres, partitions_from_scontrol, usage_from_sacct


@pytest.mark.parametrize("text, state", [
    ("CANCELLED by 0", JobState.CANCELLED), ("PD", JobState.PENDING), ("R", JobState.RUNNING),
    ("COMPLETED", JobState.COMPLETED), ("OUT_OF_MEMORY", JobState.OUT_OF_MEMORY),
    ("OOM", JobState.OUT_OF_MEMORY), ("RUNNING+", JobState.RUNNING), ("timeout", JobState.TIMEOUT),
    (["FAILED"], JobState.FAILED), ("SOMETHING_NEW", JobState.UNDETERMINED), ("", JobState.UNDETERMINED),
])
def test_state_map(text, state):
    assert job_state_from_slurm(text) is state


def test_final_states():
    assert JobState.COMPLETED.is_final and JobState.CANCELLED.is_final
    assert not JobState.PENDING.is_final and not JobState.REQUEUED.is_final


@pytest.mark.parametrize("text, minutes", [
    ("UNLIMITED", None), ("NONE", None), ("60", 60), ("01:00:00", 60), ("1:00:00", 60),
    ("10:00", 10), ("00:10:30", 11), ("1-00:00:00", 1440), ("2-03", 51 * 60), ("1-00:30", 1470),
])
def test_parse_slurm_duration(text, minutes):
    assert parse_slurm_duration(text) == minutes


def test_parse_slurm_duration_rejects_garbage():
    with pytest.raises(ValueError):
        parse_slurm_duration("an hour")


def test_tres_and_gres():
    assert parse_tres("billing=2,cpu=2,gres/gpu=1,mem=100M,node=1") == {
        "billing": 2, "cpu": 2, "gres/gpu": 1, "mem": 100, "node": 1}
    assert parse_tres("") == {}
    assert parse_gres_gpus("gpu:2") == 2
    assert parse_gres_gpus("gpu:a100:4(S:0-1),shard:8") == 4
    assert parse_gres_gpus("(null)") == 0


def test_key_values_keep_spaces():
    record = parse_key_values("NodeName=n1 OS=Linux 6.1 #1 SMP  RealMemory=1000 Gres=gpu:2")
    assert record == {"NodeName": "n1", "OS": "Linux 6.1 #1 SMP", "RealMemory": "1000",
                      "Gres": "gpu:2"}


def test_partitions_from_scontrol():
    parts = ("PartitionName=cpu Default=YES DefaultTime=00:10:00 MaxNodes=1 MaxTime=01:00:00"
             " MaxCPUsPerNode=UNLIMITED Nodes=n[1-2] State=UP TotalCPUs=8 TotalNodes=2\n"
             "PartitionName=gpu Default=NO DefaultTime=NONE MaxNodes=UNLIMITED MaxTime=UNLIMITED"
             " MaxCPUsPerNode=2 Nodes=n2 State=DOWN TotalCPUs=4 TotalNodes=1\n")
    nodes = ("NodeName=n1 CPUTot=4 RealMemory=1000 Gres=(null) Partitions=cpu\n"
             "NodeName=n2 CPUTot=4 RealMemory=2000 Gres=gpu:2 Partitions=cpu,gpu\n")
    cpu, gpu = partitions_from_scontrol(parts, nodes)
    assert (cpu.is_default, cpu.max_time_minutes, cpu.default_time_minutes, cpu.max_nodes,
            cpu.cpus_per_node, cpu.gpus_per_node, cpu.mem_per_node_mb) == (
        True, 60, 10, 1, 4, 0, 1000)
    assert (gpu.max_time_minutes, gpu.max_nodes, gpu.gpus_per_node, gpu.max_cpus_per_node,
            gpu.state) == (None, None, 2, 2, "DOWN")


SACCT_LINE = ("7|train|proj_a|alice|gpu|COMPLETED|None|2026-01-02T03:04:05|2026-01-02T03:04:06"
              "|2026-01-02T03:05:06|60|2|120|billing=2,cpu=2,gres/gpu=1,mem=200M,node=1|0:0|10\n")


def test_usage_from_sacct():
    assert len(SACCT_LINE.split("|")) == len(SACCT_FIELDS)
    (record,) = usage_from_sacct(SACCT_LINE)
    assert (record.job_id, record.account, record.user, record.state) == (
        "7", "proj_a", "alice", JobState.COMPLETED)
    assert (record.elapsed_seconds, record.cpu_seconds, record.gpu_seconds) == (60, 120, 60)
    assert record.start_time == datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC)


def test_jobs_from_sacct_unknown_times():
    line = "8|x|proj_a|bob|cpu|PENDING|AssocGrpCPUMinutesLimit|2026-01-02T03:04:05|Unknown|Unknown|0|0|0||0:0|10\n"
    (job,) = jobs_from_sacct(line)
    assert job.state is JobState.PENDING and job.reason == "AssocGrpCPUMinutesLimit"
    assert job.start_time is None and job.time_limit_minutes == 10


def test_jobs_from_squeue_json():
    raw = {"jobs": [
        {"job_id": 5, "name": "a", "job_state": "RUNNING", "state_reason": "None",
         "account": "p", "user_name": "u", "partition": "cpu", "submit_time": 100,
         "start_time": 110, "end_time": 710, "time_limit": 10, "exit_code": 0, "cpus": 2},
        {"job_id": 9, "array_job_id": 8, "array_task_id": 1, "name": "b", "job_state": "PENDING",
         "state_reason": "AssocGrpCPUMinutesLimit", "account": "p", "user_name": "u",
         "partition": "cpu", "submit_time": 100, "start_time": 0, "end_time": 0,
         "time_limit": 10, "cpus": 1},
    ]}
    now = datetime.fromtimestamp(140, UTC)
    running, pending = jobs_from_squeue_json(raw, now=now)
    assert (running.job_id, running.state, running.reason, running.elapsed_seconds) == (
        "5", JobState.RUNNING, None, 30)
    assert running.end_time is None  # a running job's end_time is only its deadline
    assert (pending.job_id, pending.reason, pending.start_time) == (
        "8_1", "AssocGrpCPUMinutesLimit", None)
