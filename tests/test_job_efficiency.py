"""Efficiency of ended jobs from sacct, as seff reports it: parsed without Slurm.

The texts are real `sacct -P -n -j ID --format=<EFFICIENCY_FIELDS>` output of Slurm 22.05
on the test cluster (jobacct_gather/linux sampling every 5 s).
"""
from __future__ import annotations

import pytest

from portal.jobs.efficiency import duration_text, efficiency_facts
from portal.slurm.parsing import efficiency_from_sacct, parse_cpu_time_ms, parse_memory_kib
from portal.slurm.types import JobState
from tests.job_world import FAILED_WITH_STEPS

# Ended within the first sampling interval: no MaxRSS was ever recorded.
TOO_SHORT_TO_SAMPLE = """\
1|COMPLETED|0:0|2|2|2|00:00.796|4||200M|billing=2,cpu=2,mem=200M,node=1|1
1.batch|COMPLETED|0:0|2||2|00:00.630|4|||cpu=2,mem=200M,node=1|1
1.0|COMPLETED|0:0|1||2|00:00.166|2|||cpu=2,mem=200M,node=1|1
"""
GPU_JOB = """\
4|COMPLETED|0:0|2|1|1|00:00.004|2||100M|billing=1,cpu=1,gres/gpu=1,mem=100M,node=1|1
4.batch|COMPLETED|0:0|2||1|00:00.004|2|||cpu=1,gres/gpu=1,mem=100M,node=1|1
"""
ARRAY_JOB = """\
5_0|COMPLETED|0:0|1|1|1|00:00.003|1||100M|billing=1,cpu=1,mem=100M,node=1|1
5_0.batch|COMPLETED|0:0|1||1|00:00.003|1|||cpu=1,mem=100M,node=1|1
5_1|COMPLETED|0:0|3|1|1|00:00.003|3||100M|billing=1,cpu=1,mem=100M,node=1|1
5_1.batch|COMPLETED|0:0|3||1|00:00.003|3|1024K||cpu=1,mem=100M,node=1|1
5_2|COMPLETED|0:0|1|1|1|00:00.003|1||100M|billing=1,cpu=1,mem=100M,node=1|1
5_2.batch|COMPLETED|0:0|1||1|00:00.003|1|||cpu=1,mem=100M,node=1|1
"""
STILL_RUNNING = """\
7|RUNNING|0:0|4|5|2|00:00:00|8||300M|billing=2,cpu=2,mem=300M,node=1|1
7.batch|RUNNING|0:0|4||2|00:00:00|8|||cpu=2,mem=300M,node=1|1
"""
# The allocation is over, but its batch step has not reached accounting as ended yet.
STEP_NOT_IN_YET = """\
8|COMPLETED|0:0|4|5|2|00:00:00|8||300M|billing=2,cpu=2,mem=300M,node=1|1
8.batch|RUNNING|0:0|4||2|00:00:00|8|||cpu=2,mem=300M,node=1|1
"""
CANCELLED_WHILE_PENDING = "9|CANCELLED by 0|0:0|0|5|2|00:00:00|0||300M|billing=2,cpu=2,mem=300M,node=1|1\n"


def test_a_job_with_steps_reads_as_seff_reports_it():
    eff = efficiency_from_sacct(FAILED_WITH_STEPS, "2")
    assert eff is not None
    assert (eff.state, eff.exit_code, eff.tasks) == (JobState.FAILED, "3:0", 1)
    assert (eff.elapsed_seconds, eff.time_limit_minutes, eff.alloc_cpus) == (13, 2, 2)
    # seff: "CPU Efficiency: 25.76% of 00:00:26 core-walltime"; TotalCPU is the steps' sum.
    assert (eff.total_cpu_ms, eff.cpu_time_seconds) == (6538 + 159, 26)
    assert round(eff.cpu_efficiency * 100, 2) == 25.76
    # The high-water mark is the largest step, against the whole request.
    assert (eff.max_rss_kib, eff.requested_mem_kib) == (98516, 300 * 1024)
    assert round(eff.memory_efficiency * 100, 2) == 32.07
    assert (eff.gpus, eff.gpu_seconds) == (0, 0)
    assert eff.time_used == pytest.approx(13 / 120)


def test_memory_never_sampled_is_unknown_not_zero():
    eff = efficiency_from_sacct(TOO_SHORT_TO_SAMPLE, "1")
    assert eff.max_rss_kib is None and eff.memory_efficiency is None
    assert eff.total_cpu_ms == 630 + 166 and eff.cpu_time_seconds == 4


def test_gpu_time_is_gpus_times_elapsed():
    eff = efficiency_from_sacct(GPU_JOB, "4")
    assert (eff.gpus, eff.gpu_seconds, eff.requested_mem_kib) == (1, 2, 100 * 1024)


def test_an_array_job_adds_up_its_tasks():
    eff = efficiency_from_sacct(ARRAY_JOB, "5")
    assert eff.tasks == 3 and eff.elapsed_seconds == 3 and eff.cpu_time_seconds == 5
    assert eff.total_cpu_ms == 9 and eff.max_rss_kib == 1024
    assert efficiency_from_sacct(ARRAY_JOB, "50") is None  # another job's rows are not this job's


def test_nothing_until_accounting_shows_the_job_and_its_steps_ended():
    assert efficiency_from_sacct(STILL_RUNNING, "7") is None
    assert efficiency_from_sacct(STEP_NOT_IN_YET, "8") is None
    assert efficiency_from_sacct("", "8") is None


def test_a_job_cancelled_before_it_ran_has_no_cpu_efficiency():
    eff = efficiency_from_sacct(CANCELLED_WHILE_PENDING, "9")
    assert eff.state is JobState.CANCELLED and eff.cpu_efficiency is None and eff.total_cpu_ms == 0


@pytest.mark.parametrize("text, ms", [("00:06.697", 6697), ("00:00:00", 0), ("01:02:03", 3723000),
                                      ("2-01:02:03", (2 * 86400 + 3723) * 1000), ("12:34.5", 754500), ("", 0)])
def test_cpu_time(text, ms):
    assert parse_cpu_time_ms(text) == ms


@pytest.mark.parametrize("text, kib", [("98516K", 98516), ("300M", 307200), ("2G", 2097152), ("0", 0),
                                       ("2048", 2), ("1.5G", 1572864), ("", None),
                                       ("150Mc", 150 * 1024 * 4), ("4Gn", 4 * 1024 * 1024 * 2)])
def test_memory(text, kib):
    assert parse_memory_kib(text, cpus=4, nodes=2) == kib


def test_the_page_and_the_command_line_say_it_in_words(app):
    eff = efficiency_from_sacct(FAILED_WITH_STEPS, "2")
    with app.test_request_context():
        facts = dict(efficiency_facts(eff))
    assert facts["Ended"] == "FAILED, exit code 3:0"
    assert facts["CPU efficiency"] == "25.76% of 0:00:26 core-walltime (2 CPUs); CPU used 0:00:06.697"
    assert facts["Memory high-water mark"] == "96.21 MiB at most, 32.07% of 300.00 MiB requested"
    assert facts["GPU-time"] == "none (no GPUs allocated)"
    assert facts["Elapsed"] == "0:00:13 of a 0:02:00 time limit (10.83%)"
    assert duration_text(90061) == "1-01:01:01"
