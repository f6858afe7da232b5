"""Render-plus-validate time per job template, against a bare ``str.format`` of the same script.

Partition limits are the cached database rows (as on the Jobs page); nothing talks to Slurm.
For each shipped template, with its default values on a fitting partition, it times:

* ``render+validate``: cleaning every parameter, the partition-limit checks, the #SBATCH
  header and the sandboxed Jinja rendering (what a preview costs beyond loading rows);
* ``plan_job``: the same plus membership and the grant lookup (one SQLite query) and the
  remaining-hours check given the ledger total;
* ``str.format``: formatting the same finished script from a format string (the floor).

Medians of ``--repeat`` rounds of ``--number`` calls, in microseconds per call.

    .venv/bin/python bench/render_validate.py [--number 2000] [--repeat 7]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import timeit
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portal import create_app


def per_call_us(func, number: int, repeat: int) -> float:
    func()  # warm caches (Jinja, SQLAlchemy statement cache)
    return statistics.median(timeit.repeat(func, number=number, repeat=repeat)) / number * 1e6


def build_world():
    from portal.extensions import db
    from portal.grants.operations import create_grant
    from portal.grants.reconcile import name_pool_accounts
    from portal.identity.models import Role
    from portal.identity.providers import create_local_user
    from portal.projects.operations import create_project
    from portal.sites.models import Partition, ResourceKind
    from portal.sites.operations import create_site

    db.create_all()
    user = create_local_user("bench@example.org", "Bench", "x" * 12, roles=[Role.MEMBER], unix_username="bench")
    site = create_site("Bench", "bench")
    for name, kind in (("cpu", ResourceKind.CPU), ("gpu", ResourceKind.GPU)):
        site.partitions.append(Partition(name=name, resource_kind=kind, state="UP", max_time_minutes=60,
                                         max_nodes=4, total_nodes=4, cpus_per_node=64, gpus_per_node=4,
                                         mem_per_node_mb=256000))
    project = create_project("bench-1", "Bench", user)
    project.slurm_account = "bench1"
    create_grant(project, title="g", start_date=date.today() - timedelta(days=1),
                 end_date=date.today() + timedelta(days=9), hours={p: 1000.0 for p in site.partitions})
    name_pool_accounts(site)  # the pool sub-accounts (bench1_cpu, bench1_gpu) jobs are charged to
    db.session.commit()
    return user, project, {p.name: p for p in site.partitions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.sqlite3", "INSTANCE_PATH": tmp,
                          "JOB_WORKDIR_ROOT": f"{tmp}/jobs"})
        with app.app_context():
            run(args, *build_world())


def run(args, user, project, partitions) -> None:
    from portal.jobs.limits import limit_problems, resources_for
    from portal.jobs.operations import MPI_REFERENCES, job_python, job_templates, plan_job
    from portal.jobs.templates import render_script

    templates, problems = job_templates()
    assert not problems, problems
    print(f"# render+validate per template, us per call (median of {args.repeat} x {args.number});"
          " ratio = render+validate / str.format")
    print(f"{'template':10} {'render+validate':>16} {'plan_job':>10} {'str.format':>11} {'ratio':>7}")
    for name, template in sorted(templates.items()):
        partition = partitions[template.kind]
        plan = plan_job(user, template, project, partition, {}, remaining=60000)
        workdir, account = plan.workdir, plan.account  # the grant's pool sub-account
        assert account and account == plan.allocation.slurm_account, account
        output = f"{workdir}/slurm-%A_%a.out" if "--array" in plan.script else f"{workdir}/slurm-%j.out"
        context = {"python": job_python(), "workdir": workdir, "mpi_references": str(MPI_REFERENCES)}

        def render_validate():
            values = {n: p.clean(None) for n, p in template.params.items()}
            res = resources_for(template, values)
            limit_problems(template, partition, res)
            header = res.sbatch_header(name, account, partition.name, output)
            return render_script(template, header, values, context)

        script = render_validate()
        assert plan.ok and plan.script == script, plan.errors
        # The floor: the finished script as a format string with its header values as fields.
        lines = script.replace("{", "{{").replace("}", "}}").splitlines(keepends=True)
        fields = {}
        for i, line in enumerate(lines):
            if line.startswith("#SBATCH "):
                option, value = line[8:].rstrip("\n").split("=", 1)
                key = f"f{i}"
                fields[key] = value
                lines[i] = f"#SBATCH {option}={{{key}}}\n"
        fmt = "".join(lines)
        assert fmt.format(**fields) == script

        rv = per_call_us(render_validate, args.number, args.repeat)
        full = per_call_us(lambda: plan_job(user, template, project, partition, {}, remaining=60000),
                           max(1, args.number // 10), args.repeat)
        ref = per_call_us(lambda: fmt.format(**fields), args.number, args.repeat)
        print(f"{name:10} {rv:16.1f} {full:10.1f} {ref:11.2f} {rv / ref:7.0f}x")


if __name__ == "__main__":
    main()
