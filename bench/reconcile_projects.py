"""Reconcile N projects x M members against the local Slurm cluster: batched vs one call each.

Each project gets what the portal makes for a grant on the ``cpu`` pool: a project account,
under it the pool's sub-account carrying the award as ``GrpTRESMins``, and one association
per member and partition of the pool (``(sub-account, user, partition)``). Batched is the
portal's reconciler (desired state from a database, one ``sacctmgr show``, one ``sacctmgr
load`` for all additions and limits, grouped deletes, one read-back). Naive is what hooks in
views typically do: one ``sacctmgr add`` process per account and per user association. The
naive run costs about half a second per association on this machine (each sacctmgr command
is its own slurmdbd commit), so by default it runs on a sample of the
projects and the per-association time is also shown scaled to the full size; the batched
run is measured on the same sample too, so the ratio compares like with like.
Everything the bench adds to Slurm is removed at the end.

    python bench/reconcile_projects.py [--projects 1000] [--members 5] [--naive-projects 20]
        [--slurm-dir /var/tmp/slurm-bench] [--name bench]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portal.slurm.commandline import CliScheduler
from portal.slurm.runner import CommandRunner

AWARD_SIZES = (1_000, 5_000, 10_000, 50_000, 100_000)  # core-hours; awards come in a few sizes


class CountingRunner(CommandRunner):
    processes = 0

    def run(self, argv, **kwargs):
        if os.path.basename(argv[0]) == "sacctmgr":
            CountingRunner.processes += 1
        return super().run(argv, **kwargs)


def counting_scheduler(env: dict[str, str]) -> CliScheduler:
    scheduler = CliScheduler(env=env, timeout=120)
    scheduler.runner = CountingRunner(bin_dir=None, timeout=120, env=scheduler.runner.env)
    return scheduler


def tag() -> str:
    return uuid.uuid4().hex[:8]


def populate(site, projects: int, members: int, prefix: str):
    from portal.extensions import db
    from portal.grants.operations import create_grant
    from portal.identity.providers import create_local_user
    from portal.projects.operations import add_member, create_project

    cpu = next(p for p in site.partitions if p.name == "cpu")
    today = date.today()
    for i in range(projects):
        people = [create_local_user(f"{prefix}{i}m{j}@example.org", f"Member {j}", None,
                                    unix_username=f"{prefix}{i}m{j}") for j in range(members)]
        project = create_project(f"{prefix}-{i}", "Bench", people[0])
        for person in people[1:]:
            add_member(project, person)
        create_grant(project, title="Bench", start_date=today - timedelta(days=1), end_date=today + timedelta(days=365),
                     hours={cpu: AWARD_SIZES[i % len(AWARD_SIZES)]})
    db.session.commit()


def pool_partitions(site) -> list:
    """The live partitions of the ``cpu`` partition's pool: where the grants' time may be spent."""
    from portal.sites.operations import ABSENT

    cpu = next(p for p in site.partitions if p.name == "cpu")
    return sorted((p for p in site.partitions if p.pool_name == cpu.pool_name and p.state != ABSENT),
                  key=lambda p: p.name)


def associations_per_project(site, members: int) -> int:
    """1 project account + 1 pool sub-account (one pool granted) + 1 per member per partition."""
    return 1 + 1 + members * len(pool_partitions(site))


def clean_up(site, scheduler) -> None:
    from portal.grants.reconcile import top_account

    _remove_subtree(scheduler, site.slurm_cluster, top_account())


def measure(label: str, action, rows: list) -> None:
    before = CountingRunner.processes
    began = time.perf_counter()
    associations = action()
    seconds = time.perf_counter() - began
    rows.append((label, associations, seconds, CountingRunner.processes - before))


def naive(site, scheduler, projects: int, members: int, top: str) -> int:
    """One sacctmgr process per account and per user association, as view hooks would do.

    The same shape the reconciler makes: project account, pool sub-account with the award,
    one association per member per partition of the pool.
    """
    partitions = [p.name for p in pool_partitions(site)]
    pool = next(p for p in site.partitions if p.name == "cpu").pool_name
    scheduler.add_account(top, parent="root")
    for i in range(projects):
        account = f"{top}p{i}"
        sub_account = f"{account}_{pool}"
        scheduler.add_account(account, parent=top)
        scheduler.add_account(sub_account, parent=account,
                              grp_tres_mins={"cpu": AWARD_SIZES[i % len(AWARD_SIZES)] * 60})
        for j in range(members):
            for partition in partitions:
                scheduler.add_user(sub_account, f"{top}p{i}m{j}", partition=partition)
    return projects * associations_per_project(site, members)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--naive-projects", type=int, default=20, help="sample size for the naive run")
    parser.add_argument("--slurm-dir", default=os.environ.get("PORTAL_TEST_SLURM_DIR", "/var/tmp/slurm-bench"))
    parser.add_argument("--name", default=os.environ.get("PORTAL_TEST_SLURM_NAME", "bench"))
    args = parser.parse_args()

    from flask_migrate import upgrade

    from portal import create_app
    from portal.devcluster.cluster import LocalCluster
    from portal.extensions import db
    from portal.grants.reconcile import reconcile_site
    from portal.sites.models import ResourceKind
    from portal.sites.operations import create_site, set_partition_kind, sync_partitions

    cluster = LocalCluster(args.slurm_dir, args.name)
    was_running = cluster.is_running()
    cluster.start(timeout=120)
    workdir = tempfile.mkdtemp(prefix="reconcile-bench-")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir}/bench.sqlite3", "INSTANCE_PATH": workdir,
                      "SLURM_TOP_ACCOUNT": f"bench{tag()}"})
    rows: list = []
    with app.app_context():
        upgrade()
        scheduler = counting_scheduler(cluster.env)
        site = create_site("Bench", cluster.cluster_name, slurm_conf=str(cluster.conf_path))
        sync_partitions(site, scheduler)
        for partition in site.partitions:
            set_partition_kind(partition, ResourceKind.GPU if partition.name == "gpu" else ResourceKind.CPU)
        db.session.commit()
        try:
            # Like with like first: the naive sample, then the batched run on the same sample size.
            naive_top = f"naive{tag()}"
            measure("naive, one sacctmgr per association", lambda: naive(site, scheduler, args.naive_projects,
                                                                          args.members, naive_top), rows)
            populate(site, args.naive_projects, args.members, f"s{tag()}")
            per_project = associations_per_project(site, args.members)
            measure("batched (reconciler), same sample",
                    lambda: (_checked(reconcile_site(site, scheduler)), args.naive_projects * per_project)[1], rows)
            clean_up(site, scheduler)
            _remove_naive(scheduler, cluster.cluster_name, naive_top)
            from portal.grants.models import Grant

            for grant in db.session.scalars(db.select(Grant)):
                db.session.delete(grant)  # the ORM cascades to allocations on every database
            db.session.commit()
            populate(site, args.projects, args.members, f"b{tag()}")
            total = args.projects * per_project
            measure("batched (reconciler), full size", lambda: (_checked(reconcile_site(site, scheduler)), total)[1],
                    rows)
            measure("batched, second run (no changes)", lambda: (_checked(reconcile_site(site, scheduler)), 0)[1], rows)
            _report(rows, args, per_project)
        finally:
            began = time.perf_counter()
            clean_up(site, scheduler)
            print(f"# clean-up (removing everything the bench added): {time.perf_counter() - began:.1f} s")
    if not was_running:
        cluster.stop()


def _checked(outcome):
    if not outcome.run.succeeded:
        raise SystemExit(f"reconciliation failed: {outcome.run.error}")
    return outcome


def _remove_naive(scheduler: CliScheduler, cluster: str, top: str) -> None:
    _remove_subtree(scheduler, cluster, top)


def _remove_subtree(scheduler: CliScheduler, cluster: str, top: str) -> None:
    """Remove ``top`` and everything under it (accounts, associations, users left with none)."""
    from portal.slurm.accounting import SlurmState, actual_state, plan

    actual = actual_state(scheduler.associations(cluster=cluster), cluster, top)
    scheduler.apply_accounting(plan(SlurmState(), actual, cluster, remove_drift=True))


def _report(rows: list, args, per_project: int) -> None:
    print(f"# reconcile {args.projects} projects x {args.members} members on {args.name}: {per_project} associations"
          f" per project (project account + pool sub-account + members x pool partitions);"
          f" naive sample {args.naive_projects} projects")
    print(f"# {'run':38} {'associations':>12} {'seconds':>9} {'sacctmgr':>9} {'assoc/s':>9}")
    for label, associations, seconds, processes in rows:
        rate = associations / seconds if associations else 0
        print(f"  {label:38} {associations:12d} {seconds:9.2f} {processes:9d} {rate:9.1f}")
    naive_row, sample_row, full_row = rows[0], rows[1], rows[2]
    per_assoc = naive_row[2] / naive_row[1]
    full_assoc = full_row[1]
    print(f"# naive scaled to the full size: {per_assoc * full_assoc:.0f} s and {full_assoc} sacctmgr processes"
          f" (measured {per_assoc * 1000:.0f} ms per association)")
    print(f"# same sample: batched is {naive_row[2] / sample_row[2]:.1f}x faster with"
          f" {naive_row[3]} -> {sample_row[3]} sacctmgr processes")
    print(f"# full size: batched is {per_assoc * full_assoc / full_row[2]:.1f}x faster than naive scaled,"
          f" {full_assoc} -> {full_row[3]} sacctmgr processes")


if __name__ == "__main__":
    main()
