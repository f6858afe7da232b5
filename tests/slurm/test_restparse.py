"""slurmrestd v0.0.38 documents (shapes as Slurm 22.05.8 printed them here) into value objects."""
from datetime import UTC, datetime

from portal.slurm.parsing import efficiency_from_sacct
from portal.slurm.restparse import account_usage_from_records, association_info, efficiency_rows, number, partitions_from_rest, qos_from_rest, record_id, status_from_db, tres_list, usage_record
from portal.slurm.types import JobState

INFINITE = 4294967295


def _job(**changes):
    job = {"account": "proj", "user": "alice", "partition": "gpu", "name": "train", "job_id": 41,
           "array": {"job_id": 0, "task_id": None}, "state": {"current": "COMPLETED", "reason": "None"},
           "exit_code": {"status": "SUCCESS", "return_code": 0}, "allocation_nodes": 1, "required": {"CPUs": 2, "memory": 100},
           "time": {"elapsed": 90, "start": 1796475900, "end": 1796475990, "submission": 1796475890, "limit": 5},
           "tres": {"allocated": [{"type": "cpu", "name": None, "id": 1, "count": 2},
                                  {"type": "mem", "name": None, "id": 2, "count": 200},
                                  {"type": "energy", "name": None, "id": 3, "count": None},
                                  {"type": "gres", "name": "gpu", "id": 1001, "count": 1}]},
           "steps": [{"step": {"id": "batch"}, "state": "COMPLETED",
                      "time": {"elapsed": 90, "total": {"seconds": 61, "microseconds": 500000}},
                      "tres": {"requested": {"max": [{"type": "mem", "name": None, "count": 52428800}]}}}]}
    job.update(changes)
    return job


def test_sentinels_are_none_and_tres_lists_are_dicts():
    assert [number(v) for v in (None, -1, INFINITE, 0xFFFFFFFE, "12", True, 7)] == [None, None, None, None, 12, None, 7]
    assert tres_list({"cpu": 600, "gres/gpu": -1}) == [{"type": "cpu", "name": None, "count": 600},
                                                       {"type": "gres", "name": "gpu", "count": -1}]


def test_association_limits_where_2205_files_them():
    row = {"account": "proj", "user": None, "partition": None, "parent_account": "top", "cluster": "c",
           "max": {"jobs": {"per": {"count": 2, "submitted": 0}, "active": 5, "total": 6},
                   "tres": {"group": {"minutes": [{"type": "cpu", "name": None, "count": 600},
                                                  {"type": "gres", "name": "gpu", "count": 7}]}}}}
    info = association_info(row)
    # GrpJobs is max/jobs/per/count and GrpSubmitJobs max/jobs/per/submitted (MaxJobs, MaxSubmitJobs are
    # active/total): read the other way round, a suspended grant (GrpSubmitJobs=0) would look open.
    assert (info.grp_jobs, info.grp_submit_jobs) == (2, 0)
    assert (info.grp_tres_mins, info.parent, info.user, info.partition) == ({"cpu": 600, "gres/gpu": 7}, "top", None, None)


def test_partitions_with_unlimited_values_and_their_smallest_node():
    parts = [{"name": "cpu", "flags": ["default"], "state": "UP", "max_time_limit": INFINITE, "default_time_limit": None,
              "maximum_nodes_per_job": INFINITE, "total_nodes": 2, "total_cpus": 6, "maximum_cpus_per_node": -1},
             {"name": "debug", "flags": [], "state": "UP", "max_time_limit": 10, "default_time_limit": 5,
              "maximum_nodes_per_job": 1, "total_nodes": 1, "total_cpus": 2, "maximum_cpus_per_node": 1}]
    nodes = [{"name": "n1", "cpus": 4, "gres": "gpu:2", "real_memory": 8000, "partitions": ["cpu"]},
             {"name": "n2", "cpus": 2, "gres": "", "real_memory": 4000, "partitions": ["cpu", "debug"]}]
    cpu, debug = partitions_from_rest(parts, nodes)
    assert (cpu.is_default, cpu.max_time_minutes, cpu.max_nodes, cpu.max_cpus_per_node) == (True, None, None, None)
    assert (cpu.cpus_per_node, cpu.gpus_per_node, cpu.mem_per_node_mb) == (2, 0, 4000)
    assert (debug.max_time_minutes, debug.default_time_minutes, debug.max_cpus_per_node) == (10, 5, 1)


def test_qos_limits():
    (qos,) = qos_from_rest([{"name": "short", "limits": {"max": {"wall_clock": {"per": {"job": 3}},
                                                                  "tres": {"per": {"job": [{"type": "cpu", "count": 1}],
                                                                                   "node": []}}}}}])
    assert (qos.name, qos.max_wall_minutes, qos.max_tres_per_job, qos.max_tres_per_node) == ("short", 3, {"cpu": 1}, {})


def test_an_accounting_record_as_sacct_would_show_it():
    record = usage_record(_job())
    assert (record.job_id, record.account, record.user, record.state) == ("41", "proj", "alice", JobState.COMPLETED)
    assert (record.cpu_seconds, record.gpu_seconds, record.alloc_cpus) == (180, 90, 2)
    assert record.alloc_tres == "cpu=2,mem=200M,gres/gpu=1"
    assert record.start_time == datetime.fromtimestamp(1796475900, UTC)
    status = status_from_db(_job(state={"current": "PENDING", "reason": "AssocGrpCPUMinutesLimit"}))
    assert (status.state, status.reason, status.exit_code) == (JobState.PENDING, "AssocGrpCPUMinutesLimit", "0:0")
    assert record_id(_job(array={"job_id": 40, "task_id": 3})) == "40_3"


def test_efficiency_from_a_record_and_its_steps():
    efficiency = efficiency_from_sacct(efficiency_rows(_job()), "41")
    assert (efficiency.elapsed_seconds, efficiency.cpu_time_seconds, efficiency.total_cpu_ms) == (90, 180, 61500)
    assert (efficiency.max_rss_kib, efficiency.requested_mem_kib, efficiency.gpus) == (51200, 200 * 1024, 1)
    assert efficiency.cpu_efficiency == 61.5 / 180


def test_account_usage_adds_up_ended_and_running_jobs():
    limits = {"proj": association_info({"account": "proj", "max": {"tres": {"group": {"minutes": [
        {"type": "cpu", "count": 600}]}}, "jobs": {"per": {"submitted": 0}}}})}
    running = _job(job_id=42, state={"current": "RUNNING"}, time={"start": 1000, "elapsed": 0, "limit": 10})
    usage = account_usage_from_records(limits, [_job(), running, _job(account="other")], now=1000 + 120)
    # ended: 2 CPUs x 1.5 min = 3; running 2 min so far: 2 x 2 = 4; it may use 8 more minutes: 2 x 8 = 16.
    assert usage["proj"].used == {"cpu": 7, "mem": 700, "gres/gpu": 3}
    assert usage["proj"].reserved == {"cpu": 16, "mem": 1600, "gres/gpu": 8}
    assert (usage["proj"].limits, usage["proj"].submit_jobs_limit, usage["proj"].left("cpu")) == ({"cpu": 600}, 0, 577)
    assert set(usage) == {"proj"}
