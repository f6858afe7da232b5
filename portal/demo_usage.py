"""The demo's grants in Slurm and their use: the reconciler syncs them, the demo users run small
real jobs and an acceptance benchmark through Slurm, sacct's accounting is ingested, and the
mail all this queued is handed to SMTP (the demo's sink).

Each step looks for its own result first (jobs of the main project, a stored benchmark run, the
back-dated ledger rows, an open request), so a second seed changes nothing.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from portal.benchmarks.models import BenchmarkRun
from portal.clock import utcnow
from portal.demo import at_midnight, count, jitter, main_project_grant, read_json, wait
from portal.extensions import db
from portal.grants.ingest import ingest_records, ingest_site
from portal.grants.models import GrantRequest, JobUsage
from portal.grants.reconcile import reconcile_site
from portal.grants.requests import ask_for_change
from portal.identity.models import User
from portal.jobs.models import SubmittedJob
from portal.jobs.operations import JobError, job_template, plan_job, refresh_states, submit_job
from portal.sites.models import Partition, Site
from portal.sites.operations import scheduler_for
from portal.slurm.errors import SchedulerError
from portal.slurm.types import JobState, UsageRecord
from portal.transactions import commit, roll_back

#: Ledger rows written back-dated (not from Slurm) start with this job id prefix.
PAST_PREFIX = "demo-past-"
# (who, partition, template, values, name): a few short jobs, well under a minute together.
JOBS = (
    ("pi", "cpu", "serial", {"command": "hostname; sleep 6; echo tokenised $WORK lines", "cpus": "2", "time": "2"},
     "tokenise"),
    ("user", "cpu", "serial", {"command": "hostname; python3 -c 'print(sum(range(10**6)))'; sleep 4", "time": "2"},
     "evaluate"),
    ("user", "gpu", "gpu", {"program": "hostname; echo \"GPUs: ${SLURM_JOB_GPUS:-none}\"; sleep 5", "time": "2"},
     "finetune-smoke"),
)
BENCHMARK = ("pi", "cpu", "benchmark", {"ntasks": "2", "benchmarks": "interconnect", "quick": "true", "time": "3"},
             "acceptance")


def seed_usage(site: Site, cpu: Partition, gpu: Partition, people: dict[str, User], report, *, run_jobs: bool) -> None:
    grant = main_project_grant()
    if grant is None:
        report.problems.append("the demo PI's grant was not found: no jobs")
        return
    outcome = reconcile_site(site, only_pending=True)  # nothing waits on a second seed: no run
    if outcome.run is not None and not outcome.run.succeeded:
        report.problems.append(f"Slurm did not take the grants: {outcome.run.error}")
        return
    if outcome.run is not None:
        report.done.append("grants synced into Slurm by the reconciler (one sub-account per pool)")
    if not count(GrantRequest, GrantRequest.grant_id == grant.id):
        ask_for_change(grant, people["pi"], reason="The 7B runs need a second epoch on the CPU evaluation set.",
                       hours=100, partition=cpu)
        commit()
        report.done.append("a top-up request of 100 core-hours waits for staff")
    if run_jobs and not count(SubmittedJob, SubmittedJob.project_id == grant.project_id):
        _run_jobs(site, grant, people, report)
    _past_usage(site, grant, report)
    _benchmark_history(report, people["staff"])
    from portal.mail import send_pending

    sent = send_pending()
    if sent:
        report.done.append(f"{sent} e-mails handed to SMTP")


def _submit(site: Site, grant, people: dict[str, User], spec) -> SubmittedJob:
    who, partition_name, template, values, name = spec
    user = people[who]
    partition = next(p for p in site.partitions if p.name == partition_name)
    allocation = next(a for a in grant.allocations if a.partition_id == partition.id)
    # The reconciler just added the association; slurmctld learns of it a moment later.
    scheduler_for(site).wait_for_association(allocation.slurm_account, user.unix_username, timeout=30)
    plan = plan_job(user, job_template(template), grant.project, partition, dict(values), name)
    return submit_job(plan, user)


def _run_jobs(site: Site, grant, people: dict[str, User], report) -> None:
    """The demo users' jobs and the acceptance benchmark, run by Slurm; their use ingested."""
    started = utcnow() - timedelta(minutes=5)
    scheduler = scheduler_for(site)
    jobs: list[SubmittedJob] = []
    # The benchmark runs alone after the others: on a small host their processes would share
    # its cores and its latencies would measure that.
    for batch in (JOBS, (BENCHMARK,)):
        try:
            submitted = [_submit(site, grant, people, spec) for spec in batch]
        except (JobError, SchedulerError) as exc:
            roll_back()
            report.problems.append(f"the demo's jobs could not be submitted: {exc}")
            return
        commit()
        jobs += submitted
        if not wait(lambda submitted=submitted: all(scheduler.job(j.slurm_job_id).state.is_final for j in submitted), 90):
            report.problems.append("the demo's jobs did not end in time; the reconciler service follows them")
    refresh_states(jobs)
    commit()
    ids = {j.slurm_job_id for j in jobs}
    # Right after a job ends sacct can still show it PENDING: ingest once every record is final.
    accounts = [a.slurm_account for a in grant.allocations if a.slurm_account]
    wait(lambda: {r.job_id for r in scheduler.usage(started, utcnow() + timedelta(minutes=1), accounts)
                  if r.state.is_final} >= ids, 30)
    result = ingest_site(site, since=started)
    commit()
    states = ", ".join(f"{j.job_name} {j.slurm_job_id} {j.last_state}" for j in jobs)
    report.done.append(f"jobs run by demo_pi and demo_user through Slurm ({states}); "
                       f"{result.charged} charged to the grant from sacct")
    _store_benchmark(jobs[-1], people["staff"], report)


def _store_benchmark(job: SubmittedJob, staff: User, report) -> None:
    from portal.benchmarks.operations import BenchmarkError, ingest_result

    document = read_json(Path(job.workdir) / f"benchmark-{job.slurm_job_id}.json")
    if document is None:
        report.problems.append(f"the acceptance benchmark job {job.slurm_job_id} wrote no result; see its output")
        return
    try:
        run = ingest_result(document, staff)
    except BenchmarkError as exc:
        roll_back()
        report.problems.append(f"the benchmark result was refused: {exc}")
        return
    commit()
    report.done.append(f"acceptance benchmark run under Slurm (job {job.slurm_job_id}) stored: "
                       f"{run.system}/{run.partition} {run.verdict.value}")


def _benchmark_history(report, staff: User) -> None:
    """Earlier results for the history chart: the real run's numbers shifted a little, one a week
    for the four weeks before it (labelled: these runs did not happen)."""
    from portal.benchmarks.operations import BenchmarkError, ingest_result

    runs = list(db.session.scalars(select(BenchmarkRun).order_by(BenchmarkRun.measured_at)))
    if len(runs) != 1:
        return  # none to copy, or the history is there already
    real = runs[0]
    rng = jitter("benchmark-history")
    for weeks in range(4, 0, -1):
        document = dict(real.document)
        document["timestamp"] = (real.measured_at - timedelta(weeks=weeks)).isoformat() + "+00:00"
        document["slurm_job_id"] = None
        document["metrics"] = [{**m, "mean": m["mean"] * rng.uniform(0.9, 1.1)} if isinstance(m.get("mean"), float)
                               else m for m in document["metrics"]]
        try:
            ingest_result(document, staff)
        except BenchmarkError as exc:
            roll_back()
            report.problems.append(f"an earlier benchmark result was refused: {exc}")
            return
    commit()
    report.labelled.append("4 earlier benchmark runs (one a week before the real one): the real run's numbers "
                           "shifted by up to 10 %, to draw a history")


def _past_usage(site: Site, grant, report) -> None:
    """Weeks of use before today, so the burn-down and forecast have a past (labelled: these jobs
    did not run; today's real jobs are in the ledger beside them)."""
    if count(JobUsage, JobUsage.job_id.like(PAST_PREFIX + "%")):
        return
    rng = jitter("past-usage")
    pools = {a.partition.name: a for a in grant.allocations}
    records, today = [], utcnow().date()
    for days_ago in range((today - grant.start_date).days, 0, -1):
        day = today - timedelta(days=days_ago)
        for name, user in (("cpu", "demo_pi"), ("cpu", "demo_user"), ("gpu", "demo_user")):
            if name not in pools or rng.random() < 0.35 or not pools[name].slurm_account:
                continue
            start = at_midnight(day) + timedelta(hours=rng.randint(8, 18))
            # About a third of the award by now, a little ahead of a steady pace: the forecast
            # runs out before the end, which is what the waiting top-up request is about.
            hours = rng.uniform(0.2, 0.6)
            cpus = rng.choice((2, 4))
            gpus = 1 if name == "gpu" else 0
            seconds = int(hours * 3600)
            records.append(UsageRecord(
                job_id=f"{PAST_PREFIX}{len(records) + 1}", account=pools[name].slurm_account, user=user,
                partition=name, state=JobState.COMPLETED, submit_time=start, start_time=start,
                end_time=start + timedelta(seconds=seconds), elapsed_seconds=seconds, alloc_cpus=cpus,
                cpu_seconds=cpus * seconds, gpu_seconds=gpus * seconds,
                alloc_tres=f"cpu={cpus}" + (f",gres/gpu={gpus}" if gpus else "")))
    ingest_records(site, records)
    commit()
    report.labelled.append(f"{len(records)} back-dated usage rows (job ids {PAST_PREFIX}N) over the "
                           f"{(today - grant.start_date).days} days since the grant began: not run in Slurm")

