"""Issue 16: with the rest adapter the portal's process needs no privilege on the cluster.

The portal side runs in a child process as an ordinary Unix user (``setpriv``) holding only a
token file. It is shown unable to act for anyone by itself (no sacctmgr change, no
``sbatch --uid``, no JWT key), yet through slurmrestd it makes a project account, associates a
member and submits that member's job, which runs as the member and is charged to the account.
"""
from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portal.devcluster import restd
from portal.devcluster.pytest_plugin import make_test_scheduler, unique_name, wait_for
from portal.slurm import JobState

pytestmark = pytest.mark.slurm

SERVICE_USER = "portalsvc"  # the unprivileged user the portal runs as
MEMBER = "portaltest1"
REPO = Path(__file__).resolve().parents[1]

# What the portal process does: plain adapter calls, its results printed as JSON.
CHILD = r"""
import json, os, subprocess, sys, time
from portal.slurm import JobRequest, make_scheduler

url, token_file, cluster, conf, key, account, member, jobs_dir = sys.argv[1:9]
env = {"PATH": "/usr/bin:/bin", "SLURM_CONF": conf}
report = {"uid": os.getuid(), "euid": os.geteuid(), "groups": os.getgroups()}
try:
    open(key, "rb")
    report["key_readable"] = True
except PermissionError:
    report["key_readable"] = False
own = subprocess.run(["sacctmgr", "-i", "add", "account", account + "x"], env=env, capture_output=True, text=True)
report["sacctmgr"] = [own.returncode, own.stdout + own.stderr]
as_member = subprocess.run(["sbatch", f"--uid={member}", f"--account={account}", "--wrap=true"], env=env,
                           capture_output=True, text=True)
report["sbatch_uid"] = [as_member.returncode, as_member.stderr]

rest = make_scheduler("rest", url=url, token_file=token_file, cluster=cluster, timeout=15)
rest.add_account(account, description="unprivileged portal", organization="tests", grp_tres_mins={"cpu": 600})
rest.add_user(account, member, partition="cpu")
rest.wait_for_association(account, member)
job_id = None
for attempt in range(20):  # slurmctld hears of the association a moment after slurmdbd has it
    try:
        job_id = rest.submit(JobRequest(
            script="#!/bin/bash\nid -un\necho \"$SLURM_JOB_ACCOUNT\"\nsleep 2\n", account=account, partition="cpu",
            job_name="unprivileged", workdir=jobs_dir, time_limit_minutes=2, cpus_per_task=2, user=member,
            output=f"{jobs_dir}/unprivileged-%j.out"))
        break
    except Exception as exc:
        report.setdefault("retries", []).append(str(exc))
        time.sleep(0.5)
report["job_id"] = job_id
deadline = time.monotonic() + 60
while job_id and not rest.job(job_id).state.is_final and time.monotonic() < deadline:
    time.sleep(0.5)
job = rest.job(job_id)
report["job"] = {"user": job.user, "account": job.account, "state": job.state.value}
print(json.dumps(report))
"""


def test_portal_as_an_unprivileged_user_submits_a_members_job_through_slurmrestd(slurm_cluster):
    from portal.devcluster.cluster import LocalCluster

    LocalCluster.ensure_unix_user(SERVICE_USER)
    member = LocalCluster.ensure_unix_user(MEMBER)
    service = pwd.getpwnam(SERVICE_USER)
    # The portal's token: a file only the service user can read, as a deployment would hold it.
    token_dir = slurm_cluster.root / "portal-service"  # pytest's tmp_path is root's alone
    token_dir.mkdir(exist_ok=True)
    token_file = token_dir / "slurmrestd.token"
    token_file.write_text(slurm_cluster.token("root", 600) + "\n")
    token_file.chmod(0o600)
    for path in (token_dir, token_file):
        os.chown(path, service.pw_uid, service.pw_gid)
    account = unique_name("unpriv")
    began = datetime.now(UTC) - timedelta(minutes=1)

    argv = ["setpriv", f"--reuid={service.pw_uid}", f"--regid={service.pw_gid}", "--clear-groups",
            sys.executable, "-c", CHILD, slurm_cluster.rest_url, str(token_file), slurm_cluster.cluster_name,
            str(slurm_cluster.conf_path), str(restd.key_path(slurm_cluster.root)), account, member,
            str(slurm_cluster.jobs_dir)]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1", "HOME": service.pw_dir}
    cli = make_test_scheduler("cli", slurm_cluster)
    try:
        child = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=150, check=False)
        assert child.returncode == 0, child.stderr
        report = json.loads(child.stdout.strip().splitlines()[-1])
        print(report)
        # The process had no privilege of its own...
        assert report["uid"] == report["euid"] == service.pw_uid != 0 and report["groups"] in ([], [service.pw_gid])
        assert report["key_readable"] is False
        assert report["sacctmgr"][0] != 0 and "ermission denied" in report["sacctmgr"][1]
        assert report["sbatch_uid"][0] != 0
        assert account + "x" not in {a.name for a in cli.accounts()}
        # ...yet through slurmrestd the member's job ran as the member, under the project's account.
        assert report["job"] == {"user": member, "account": account, "state": "COMPLETED"}
        job_id = report["job_id"]
        output = slurm_cluster.jobs_dir / f"unprivileged-{job_id}.out"
        assert output.stat().st_uid == pwd.getpwnam(member).pw_uid
        assert output.read_text().split()[:2] == [member, account]

        def accounted():
            records = [r for r in cli.usage(began, datetime.now(UTC) + timedelta(minutes=1), [account])
                       if r.job_id == job_id and r.state.is_final]
            return records[0] if records else None

        record = wait_for(accounted, timeout=60, what="the job in Slurm's accounting")
        assert (record.user, record.account, record.state) == (member, account, JobState.COMPLETED)
        assert record.cpu_seconds == 2 * record.elapsed_seconds > 0  # charged: 2 CPUs for its run time
        assert {(a.user, a.partition) for a in cli.associations([account])} == {(None, None), (member, "cpu")}
    finally:
        cli.remove_account(account)
