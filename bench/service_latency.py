"""Reconciler service latency: a team change reaches Slurm in the same time at any site size.

For each site size N (projects, each with a PI and 4 members and a grant on the ``cpu``
pool) on a throwaway PostgreSQL database and a fresh throwaway Slurm cluster: full
``reconcile_site(site, full=True)`` runs bring Slurm in line (timed, but only printed; one
run per ``--load-step`` projects, see :func:`bring_in_line`), then the reconciler service
(``ReconcilerService``, as ``flask slurm run`` runs it, in a thread; only its converge duty
repeats) runs while the bench measures

  commit-to-applied  one member with a fresh Unix name added to a random project
                     (``add_member`` + commit in the bench's own app context) until
                     ``sacctmgr show assoc`` lists the association (polled every 50 ms;
                     the clock starts just before the commit);
  web change         ``POST /projects/<id>/members`` by the project's PI (Flask test
                     client), with Slurm healthy and with slurmdbd stopped (SIGSTOP);
  plain page         ``GET /projects/<id>`` by the same PI in the same runs: the reference.

Members' Unix names come from a pool of ``--user-pool`` names reused across projects, so
Slurm's user table stays small (each project still has 5 distinct members and 5
associations); the members added by the bench get fresh names. Each size has its own
database, top account and cluster, destroyed after it (``--keep-cluster``: not the last).
A site larger than ``--load-step`` comes into Slurm with ``--load bulk`` (the default): the
first step through a real full reconcile, the rest written into slurmdbd's tables by
``bench/slurmdb_bulk.py`` and proved by a full reconcile that must find nothing to change;
``--load sacctmgr`` uses full reconciles only (hours at 5,000 projects).

    python bench/service_latency.py [--sizes 100,1000,5000] [--repeat 5] [--load-step 250] [--load bulk]
        [--keep-cluster] [--slurm-dir /var/tmp/bench-svc] [--name benchsvc] [--slurm-database NAME]
        [--database-url postgresql://postgres@127.0.0.1:5432/portal_bench_svc]
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MEMBERS = 5  # PI + 4
POLL = 0.05  # seconds between sacctmgr looks
PASSWORD = "pw"


def tag() -> str:
    return uuid.uuid4().hex[:8]


def user_pool(pool: int, prefix: str) -> list:
    """The ``pool`` people every team is drawn from, all with the same password."""
    from werkzeug.security import generate_password_hash

    from portal.extensions import db
    from portal.identity.providers import create_local_user

    password_hash = generate_password_hash(PASSWORD)  # hashed once
    users = []
    for j in range(pool):
        user = create_local_user(f"{prefix}u{j}@example.org", f"Member {j}", None, unix_username=f"bsu{j}")
        user.password_hash = password_hash
        users.append(user)
    db.session.commit()
    return users


def populate(site, users: list, prefix: str, first: int, stop: int) -> list[int]:
    """Projects ``first`` to ``stop - 1``, each with a PI and 4 members from ``users`` and a
    grant on ``cpu``; returns their ids. Commits in batches to keep the session small."""
    from portal.extensions import db
    from portal.grants.operations import create_grant
    from portal.projects.operations import add_member, create_project

    cpu = next(p for p in site.partitions if p.name == "cpu")
    today = date.today()
    ids = []
    for i in range(first, stop):
        team = [users[(i + k) % len(users)] for k in range(MEMBERS)]
        project = create_project(f"{prefix}-{i}", "Bench", team[0])
        for person in team[1:]:
            add_member(project, person)
        create_grant(project, title="Bench", start_date=today - timedelta(days=1),
                     end_date=today + timedelta(days=365), hours={cpu: 10_000})
        ids.append(project.id)
        if i % 500 == 499:
            db.session.commit()
    db.session.commit()
    return ids


def newcomers(count: int, prefix: str) -> list[tuple[str, str]]:
    """People with a portal account and a fresh Unix name, on no team yet: (e-mail, Unix name)."""
    from portal.extensions import db
    from portal.identity.providers import create_local_user

    people = [(f"{prefix}n{k}@example.org", f"bsn{prefix}{k}") for k in range(count)]
    for email, unix_name in people:
        create_local_user(email, "Newcomer", None, unix_username=unix_name)
    db.session.commit()
    return people


def pool_account(project_id: int) -> str:
    from portal.extensions import db
    from portal.grants.models import Grant, GrantAllocation

    return db.session.scalar(db.select(GrantAllocation.slurm_account).join(GrantAllocation.grant)
                             .where(Grant.project_id == project_id))


def association_shown(env: dict[str, str], account: str, user: str) -> bool:
    output = subprocess.run(["sacctmgr", "-P", "-n", "show", "assoc", f"account={account}", f"user={user}",
                             "format=Account,User,Partition"], env=env, capture_output=True, text=True,
                            timeout=60, check=False).stdout  # not yet there, or slurmdbd busy: look again
    return any(line.split("|")[:2] == [account, user] for line in output.splitlines())


def wait_for_association(env: dict[str, str], account: str, user: str, began: float, limit: float = 120) -> float:
    """Seconds from ``began`` until sacctmgr shows the association (polled every 50 ms)."""
    while not association_shown(env, account, user):
        if time.perf_counter() - began > limit:
            raise SystemExit(f"{user} did not reach {account} within {limit:g} s")
        time.sleep(POLL)
    return time.perf_counter() - began


def wait_for_service_idle(app, runs_before: int, limit: float = 1800) -> float:
    """The service runs every duty once as it starts (a full pass among them): wait for it."""
    from portal.extensions import db
    from portal.grants.models import SyncRun

    began = time.perf_counter()
    while time.perf_counter() - began < limit:
        with app.app_context():
            runs = db.session.scalar(db.select(db.func.count()).select_from(SyncRun))
            db.session.remove()
        if runs > runs_before:
            time.sleep(0.5)  # the loop goes on to its wait
            return time.perf_counter() - began
        time.sleep(0.2)
    raise SystemExit("the service's start-up duties did not finish")


def wait_until_applied(site_id: int, began: float, limit: float = 600) -> None:
    """Until the service has recorded every change as applied (no pending change is left)."""
    from portal.extensions import db
    from portal.grants.reconcile import is_pending

    while is_pending({site_id}):
        db.session.remove()
        if time.perf_counter() - began > limit:
            raise SystemExit(f"changes still pending after {limit:g} s")
        time.sleep(POLL)
    db.session.remove()


def direct_adds(env: dict[str, str], account: str, prefix: str, repeat: int) -> list[float]:
    """Slurm's own time to add one user association at this size: ``sacctmgr add user`` run by
    hand, as the reference for commit-to-applied (slurmdbd 22.05 renumbers its association
    tree on every add, so this grows with the site whatever the portal does). Removed after."""
    seconds, added = [], []
    for k in range(repeat):
        user = f"bsd{prefix}{k}"
        began = time.perf_counter()
        subprocess.run(["sacctmgr", "-i", "add", "user", user, f"account={account}", "partition=cpu"], env=env,
                       capture_output=True, text=True, timeout=120, check=True)
        seconds.append(time.perf_counter() - began)
        added.append(user)
    subprocess.run(["sacctmgr", "-i", "delete", "user", "where", f"name={','.join(added)}", f"account={account}"],
                   env=env, capture_output=True, text=True, timeout=120, check=False)
    return seconds


class WebUser:
    """A signed-in browser; every request runs in a thread with no app context, as in a server."""

    def __init__(self, app, email: str) -> None:
        from tests.conftest import sign_in

        self.app = app
        self.thread = ThreadPoolExecutor(1)
        self.client = app.test_client()
        response = self.call(lambda: sign_in(self.client, email, PASSWORD))
        assert response.status_code == 302, f"sign-in failed: {response.status_code}"

    def call(self, work):
        return self.thread.submit(work).result(timeout=300)

    def page_then_add(self, project_id: int, email: str) -> tuple[float, float]:
        """GET the team page (timed: the plain page), then POST the new member (timed)."""
        from tests.conftest import csrf_token_from

        def work():
            began = time.perf_counter()
            page = self.client.get(f"/projects/{project_id}")
            page_seconds = time.perf_counter() - began
            assert page.status_code == 200, page.status_code
            token = csrf_token_from(page.get_data(as_text=True))
            began = time.perf_counter()
            response = self.client.post(f"/projects/{project_id}/members",
                                        data={"csrf_token": token, "email": email, "role": "member"})
            change_seconds = time.perf_counter() - began
            assert response.status_code == 302, response.status_code
            return page_seconds, change_seconds
        return self.call(work)

    def close(self) -> None:
        self.thread.shutdown()


class Abandoned(Exception):
    """A size the bench gave up on (it says why); the sizes measured before it are reported."""


def bring_in_line(site, cluster, users: list, size: int, step: int, limit: float,
                  prefix: str, bulk: bool = False) -> tuple[list[int], list[float]]:
    """Populate ``size`` projects and bring Slurm in line: one full reconcile per ``step`` projects.

    slurmdbd 22.05 keeps associations as a nested set (lft/rgt), so each one added shifts every
    association to its right: a load costs (associations added) x (associations there), all in
    one transaction, and sacctmgr gives up after 900 s (its DBD message timeout), leaving MariaDB
    to roll that transaction back for hours. Steps keep every load far below that; after a step
    slower than ``limit`` no more projects are added (the next step could reach the 900 s), and
    the size is measured with the projects in Slurm by then.
    """
    from portal.grants.reconcile import reconcile_site
    from portal.slurm import make_scheduler

    scheduler = make_scheduler("cli", slurm_conf=str(cluster.conf_path), timeout=3600)
    ids: list[int] = []
    steps: list[float] = []
    if bulk and size > step:
        return bring_in_bulk(site, cluster, scheduler, users, size, step, prefix)
    for first in range(0, size, step):
        stop = min(first + step, size)
        ids += populate(site, users, prefix, first, stop)
        began = time.perf_counter()
        outcome = reconcile_site(site, scheduler, full=True)
        steps.append(time.perf_counter() - began)
        if not outcome.run.succeeded:
            raise Abandoned(f"full reconcile failed after {steps[-1]:.0f} s: {outcome.run.error}")
        if size > step:
            print(f"#   {stop} projects in Slurm: full reconcile {steps[-1]:.1f} s ({len(outcome.commands)} changes)",
                  flush=True)
        if steps[-1] > limit and stop < size:
            print(f"# {size}: STOPPED ADDING at {stop} projects: a full reconcile of {step} projects took"
                  f" {steps[-1]:.0f} s (--step-limit {limit:g} s); the next could reach sacctmgr's 900 s", flush=True)
            break
    return ids, steps


def bring_in_bulk(site, cluster, scheduler, users: list, size: int, step: int,
                  prefix: str) -> tuple[list[int], list[float]]:
    """The first ``step`` projects through a real full reconcile (``sacctmgr load``), the rest
    written straight into slurmdbd's tables (``slurmdb_bulk``); then a full reconcile, which
    reads every account and association back through sacctmgr, must find nothing to change."""
    from bench.slurmdb_bulk import bulk_load
    from portal.extensions import db
    from portal.grants.reconcile import desired_state, reconcile_site

    ids = populate(site, users, prefix, 0, step)
    began = time.perf_counter()
    outcome = reconcile_site(site, scheduler, full=True)
    first = time.perf_counter() - began
    if not outcome.run.succeeded:
        raise Abandoned(f"full reconcile failed after {first:.0f} s: {outcome.run.error}")
    print(f"#   {step} projects in Slurm through sacctmgr: full reconcile {first:.1f} s"
          f" ({len(outcome.commands)} changes)", flush=True)
    ids += populate(site, users, prefix, step, size)
    began = time.perf_counter()
    desired = desired_state(site)
    db.session.commit()
    added = bulk_load(cluster, desired)
    loaded = time.perf_counter() - began
    began = time.perf_counter()
    check = reconcile_site(site, scheduler, full=True)
    checked = time.perf_counter() - began
    if not check.run.succeeded:
        raise Abandoned(f"after the bulk load a full reconcile failed: {check.run.error}")
    if check.commands:
        raise Abandoned(f"after the bulk load a full reconcile wanted {len(check.commands)} change(s),"
                        f" e.g. {check.commands[0]}: the load did not write what sacctmgr would have")
    print(f"#   {size} projects in Slurm: {added['accounts']} accounts, {added['users']} users and"
          f" {added['associations']} associations written into slurmdbd's tables in {loaded:.1f} s"
          f" (daemons restarted); a full reconcile then read everything back in {checked:.1f} s and found"
          f" 0 changes to make", flush=True)
    return ids, [first, checked]


def measure_size(args, cluster, size: int, rng: random.Random) -> dict:
    from flask_migrate import upgrade

    from portal import create_app
    from portal.extensions import db
    from portal.grants.models import SyncRun
    from portal.grants.service import ReconcilerService, Schedule
    from portal.identity.models import User
    from portal.projects.models import Project
    from portal.projects.operations import add_member
    from portal.sites.models import ResourceKind
    from portal.sites.operations import create_site, set_partition_kind, sync_partitions
    from tests.conftest import recreate_postgres_database

    prefix = f"s{tag()}"
    url = args.database_url
    recreate_postgres_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": tempfile.mkdtemp(prefix="svc-bench-"),
                      "SLURM_TOP_ACCOUNT": f"bsvc{prefix}", "SCHEDULER_TIMEOUT": args.scheduler_timeout,
                      "LOGIN_RATE_LIMIT": "10000/60"})
    env = {**os.environ, **cluster.env}
    result: dict = {"size": size}
    service = worker = web = None
    try:
        with app.app_context():
            upgrade()
            site = create_site("Bench", cluster.cluster_name, slurm_conf=str(cluster.conf_path))
            sync_partitions(site)
            for partition in site.partitions:
                set_partition_kind(partition, ResourceKind.GPU if partition.name == "gpu" else ResourceKind.CPU)
            db.session.commit()
            began = time.perf_counter()
            ids, steps = bring_in_line(site, cluster, user_pool(args.user_pool, prefix), size, args.load_step,
                                       args.step_limit, prefix, bulk=args.load == "bulk")
            result.update(full=sum(steps), steps=len(steps), reached=len(ids))
            print(f"# {size}: {len(ids)} projects x {MEMBERS} members populated and in Slurm in"
                  f" {time.perf_counter() - began:.1f} s, of which full reconcile {result['full']:.1f} s"
                  f" ({len(steps)} step(s))", flush=True)
            runs_before = db.session.scalar(db.select(db.func.count()).select_from(SyncRun))
            people = newcomers(3 * args.repeat, prefix)
            site_id = site.id

            said: list[str] = []
            service = ReconcilerService(app, Schedule(poll=2, job_states=1e9, outbox=1e9, usage=1e9, full=1e9),
                                        echo=said.append)
            worker = threading.Thread(target=service.run, daemon=True)
            worker.start()
            result["startup"] = wait_for_service_idle(app, runs_before)
            print(f"# {size}: service start-up duties (one full pass among them) {result['startup']:.1f} s",
                  flush=True)

            # 1. commit-to-applied, the change made in this app context.
            last_run = db.session.scalar(db.select(db.func.max(SyncRun.id)))
            applied = []
            for email, unix_name in people[:args.repeat]:
                project_id = rng.choice(ids)
                project = db.session.get(Project, project_id)
                user = db.session.scalar(db.select(User).where(User.email == email))
                account = pool_account(project_id)
                add_member(project, user)
                began = time.perf_counter()
                db.session.commit()
                applied.append(wait_for_association(env, account, unix_name, began))
            result["applied"] = applied
            wait_until_applied(site_id, time.perf_counter())  # the last run records itself after its read-back
            result["runs"] = [(run.finished_at - run.started_at).total_seconds() for run in db.session.scalars(
                db.select(SyncRun).where(SyncRun.id > last_run, SyncRun.finished_at.is_not(None)))]

            # 2. the same change over HTTP by the project's PI; the plain page beside it.
            web_project = rng.choice(ids)
            pi_email = db.session.get(Project, web_project).pi.email
            account = pool_account(web_project)
            db.session.remove()
            web = WebUser(app, pi_email)
            pages, changes, clicked = [], [], []
            for email, unix_name in people[args.repeat:2 * args.repeat]:
                page_seconds, change_seconds = web.page_then_add(web_project, email)
                began = time.perf_counter()
                pages.append(page_seconds)
                changes.append(change_seconds)
                clicked.append(change_seconds + wait_for_association(env, account, unix_name, began))
            result.update(page=pages, web=changes, clicked=clicked)

            stopped_pages, stopped_changes = [], []
            slurmdbd = cluster.daemon_pid("slurmdbd")
            os.kill(slurmdbd, signal.SIGSTOP)
            try:
                for email, _ in people[2 * args.repeat:]:
                    page_seconds, change_seconds = web.page_then_add(web_project, email)
                    stopped_pages.append(page_seconds)
                    stopped_changes.append(change_seconds)
            finally:
                os.kill(slurmdbd, signal.SIGCONT)
            resumed = time.perf_counter()
            result.update(stopped_page=stopped_pages, stopped_web=stopped_changes)
            for _, unix_name in people[2 * args.repeat:]:
                wait_for_association(env, account, unix_name, resumed, limit=600)
            wait_until_applied(site_id, resumed)  # the service, alone, caught up after its failed attempts
            result["recovered"] = time.perf_counter() - resumed
            result["failed"] = sum("FAILED" in line for line in said)
            print(f"# {size}: changes made while slurmdbd was stopped reached Slurm {result['recovered']:.1f} s"
                  f" after it resumed", flush=True)
            result["direct"] = direct_adds(env, pool_account(rng.choice(ids)), prefix, args.repeat)
    finally:
        if web is not None:
            web.close()
        if service is not None:
            service.stop()
            worker.join(timeout=120)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if not args.keep_database:
            recreate_postgres_database(url, drop_only=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000", help="site sizes, in projects")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--user-pool", type=int, default=50, help="Unix names the members are drawn from")
    parser.add_argument("--load-step", type=int, default=250,
                        help="projects brought into Slurm per full reconcile (one step up to this size)")
    parser.add_argument("--load", choices=("bulk", "sacctmgr"), default="bulk",
                        help="how a site larger than --load-step gets into Slurm: 'sacctmgr', full reconciles"
                        " of --load-step projects each (hours at 5,000 projects: slurmdbd's nested set), or"
                        " 'bulk', the first step so and the rest written into slurmdbd's tables, then proved"
                        " by a full reconcile that finds nothing to change (see bench/slurmdb_bulk.py)")
    parser.add_argument("--step-limit", type=float, default=300.0,
                        help="give a size up when one step takes longer (sacctmgr itself gives up at 900 s)")
    parser.add_argument("--scheduler-timeout", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--slurm-dir", default="/var/tmp/bench-svc")
    parser.add_argument("--name", default="benchsvc")
    parser.add_argument("--slurm-database", help="slurmdbd's MariaDB database (default slurm_acct_<name>), e.g. when"
                        " an earlier run's is still rolling back")
    parser.add_argument("--keep-cluster", action="store_true", help="leave the last size's Slurm cluster running")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--database-url", default=os.environ.get(
        "PORTAL_BENCH_DATABASE_URL", f"postgresql://postgres@127.0.0.1:5432/portal_bench_svc_{os.getpid()}"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.user_pool < MEMBERS:
        parser.error(f"--user-pool must be at least {MEMBERS}")

    from portal.devcluster.cluster import LocalCluster

    rng = random.Random(args.seed)
    results = []
    for index, size in enumerate(sizes):
        # A fresh cluster per size: each size's Slurm holds that size's associations only.
        cluster = LocalCluster(Path(args.slurm_dir), args.name)
        if args.slurm_database:
            cluster.db_name = args.slurm_database
        began = time.perf_counter()
        cluster.start(timeout=120)
        print(f"# {size}: Slurm cluster {args.name} in {args.slurm_dir} up in {time.perf_counter() - began:.1f} s",
              flush=True)
        try:
            results.append(measure_size(args, cluster, size, rng))
            print("# " + _row(results[-1]).strip() + "\n" + _notes(results[-1]), flush=True)
        except Abandoned as exc:
            print(f"# {size}: ABANDONED: {exc}", flush=True)
            break
        finally:
            if args.keep_cluster and index == len(sizes) - 1:
                print(f"# Slurm cluster {args.name} left running in {args.slurm_dir}")
            else:
                cluster.destroy()
    if results:
        _report(args, results)


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:8.0f} {max(values) * 1000:7.0f}"


def _row(r: dict) -> str:
    size = f"{r['reached']}" if r["reached"] == r["size"] else f"{r['reached']}*"
    return (f"  {size:>8} {r['full']:7.1f} | {_ms(r['applied'])} | {_ms(r['direct'])} | {_ms(r['web'])} |"
            f" {_ms(r['stopped_web'])} | {_ms(r['page'])} | {_ms(r['stopped_page'])}")


def _notes(r: dict) -> str:
    return (f"# {r['reached']}: {r['steps']} full reconcile step(s); the service's converge runs (read, sacctmgr"
            f" load, read back) median {statistics.median(r['runs']):.2f} s over {len(r['runs'])} runs;"
            f" web click to applied in Slurm, median {statistics.median(r['clicked']):.2f} s;"
            f" service start-up {r['startup']:.1f} s; {r['failed']} failed attempt(s) while slurmdbd was stopped,"
            f" caught up {r['recovered']:.1f} s after it resumed")


def _report(args, results: list[dict]) -> None:
    print(f"# reconciler service latency: N projects x {MEMBERS} members ({args.user_pool} Unix names reused),"
          f" grant on cpu; {args.repeat} changes per case, milliseconds as median max;"
          f" SCHEDULER_TIMEOUT {args.scheduler_timeout:g} s; full s: the full reconcile(s) that brought Slurm"
          f" in line, in steps of {args.load_step} projects"
          + (" (larger sites: the first step, then the bulk load's proving full reconcile)"
             if args.load == "bulk" else ""))
    print(f"# {'projects':>8} {'full s':>7} | {'commit-to-applied':>16} | {'sacctmgr add':>16} | {'web change':>16} |"
          f" {'web, dbd stopped':>16} | {'plain page':>16} | {'page, dbd stopped':>17}")
    for r in results:
        print(_row(r))
    for r in results:
        if r["reached"] < r["size"]:
            print(f"# * {r['reached']} of the {r['size']} projects asked for: bringing more into Slurm was stopped"
                  f" (a step took over --step-limit {args.step_limit:g} s)")
    for r in results:
        print(_notes(r))
    first, last = results[0], results[-1]
    ratio = statistics.median(last["applied"]) / statistics.median(first["applied"])
    verdict = "stayed flat" if ratio <= 1.5 else "did NOT stay flat"
    print(f"# commit-to-applied {verdict}: median at {last['reached']} projects is {ratio:.2f}x the median at"
          f" {first['reached']} (flat: at most 1.5x) for a {last['reached'] / first['reached']:.0f}x larger site")

    def portal_share(r: dict) -> float:
        return statistics.median(r["applied"]) - statistics.median(r["direct"])
    share_ratio = portal_share(last) / portal_share(first)
    shares = " / ".join(f"{portal_share(r) * 1000:.0f} ms at {r['reached']}" for r in results)
    print(f"# the portal's share (commit-to-applied minus Slurm's own 'sacctmgr add user' at that size, medians):"
          f" {shares};"
          f" {share_ratio:.2f}x from {first['reached']} to {last['reached']} projects"
          f" ({'flat' if share_ratio <= 1.5 else 'NOT flat'}: at most 1.5x)")


if __name__ == "__main__":
    main()
