"""The default adapter: drives Slurm through its command-line clients."""
from __future__ import annotations

import dataclasses
import json
import os
import pwd
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from portal.slurm import names
from portal.slurm.accounting import Plan, limit_args
from portal.slurm.base import Scheduler, select_jobs
from portal.slurm.errors import SchedulerCommandFailed, SchedulerError, SchedulerUnreachable
from portal.slurm.parsing import (
    EFFICIENCY_FIELDS,
    QOS_FIELDS,
    SACCT_FIELDS,
    account_usage_from_assoc_mgr,
    efficiency_from_sacct,
    jobs_from_sacct,
    jobs_from_squeue_json,
    node_features_from_sinfo,
    parse_int,
    parse_pipe_rows,
    parse_tres,
    partitions_from_scontrol,
    qos_from_sacctmgr,
    usage_from_sacct,
)
from portal.slurm.runner import CommandRunner
from portal.slurm.types import AccountInfo, AccountUsage, AssociationInfo, JobEfficiency, JobRequest, JobStatus, NodeFeatures, PartitionInfo, QosInfo, UsageRecord

# sacctmgr reports "nothing to do" on stdout with a non-zero status; for us that is success.
IDEMPOTENT = ("Nothing new added", "Nothing deleted", "Nothing modified")
_ASSOC_FIELDS = ("Cluster", "Account", "ParentName", "User", "Partition", "GrpTRESMins", "GrpSubmit", "GrpJobs")
_JOB_PATH = "/usr/local/bin:/usr/bin:/bin"


def _sacct_time(moment: datetime) -> str:
    # Clients run with TZ=UTC, so aware datetimes are converted and naive ones taken as UTC.
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


class CliScheduler(Scheduler):
    """Slurm through sbatch/squeue/sacct/sacctmgr/scontrol.

    ``slurm_conf`` selects the cluster (exported as SLURM_CONF), ``bin_dir`` where the
    clients live, ``env`` extra variables for them. Jobs get a minimal environment (PATH,
    HOME, USER, SLURM_CONF plus the request's ``environment``), never the portal's own.
    """

    def __init__(self, slurm_conf: str | None = None, bin_dir: str | None = None,
                 timeout: float = 15, env: Mapping[str, str] | None = None,
                 cluster: str | None = None) -> None:
        client_env = dict(env or {})
        if slurm_conf:
            client_env["SLURM_CONF"] = slurm_conf
        self.runner = CommandRunner(bin_dir=bin_dir, timeout=timeout, env=client_env)
        self.cluster = names.validate_account_name(cluster) if cluster else None

    # ---- cluster ------------------------------------------------------------------------
    def cluster_name(self) -> str:
        match = re.search(r"^ClusterName\s*=\s*(\S+)",
                          self.runner.run(["scontrol", "show", "config"]), re.M)
        if not match:
            raise SchedulerError("scontrol show config printed no ClusterName")
        return match.group(1)

    def ping(self) -> None:
        output = self.runner.run(["scontrol", "ping"], ok_patterns=("is DOWN",))
        if "is UP" not in output:
            raise SchedulerUnreachable(f"slurmctld is not answering: {output.strip()}")

    def partitions(self) -> list[PartitionInfo]:
        return partitions_from_scontrol(
            self.runner.run(["scontrol", "show", "partition", "--oneliner"]),
            self.runner.run(["scontrol", "show", "node", "--oneliner"]))

    def qos(self) -> list[QosInfo]:
        return qos_from_sacctmgr(self.sacctmgr(["-P", "-n", "show", "qos", f"format={','.join(QOS_FIELDS)}"]))

    def node_features(self, partition: str) -> list[NodeFeatures]:
        return node_features_from_sinfo(self.runner.run(
            ["sinfo", "-h", "-N", f"--partition={names.validate_partition_name(partition)}", "-o", "%N|%f"]))

    # ---- jobs ---------------------------------------------------------------------------
    def submit(self, request: JobRequest) -> str:
        argv, env = self._sbatch_command(request)
        output = self.runner.run(argv, stdin=request.script, extra_env=env)
        job_id = output.strip().split(";")[0]
        return names.validate_job_id(job_id)

    def _sbatch_command(self, req: JobRequest) -> tuple[list[str], dict[str, str]]:
        """Validate a request and turn it into sbatch argv and the job's environment."""
        if not req.script.startswith("#!") or "\0" in req.script:
            raise names.InvalidName("job script must start with #! and contain no NUL bytes")
        argv = ["sbatch", "--parsable", "--export=ALL",
                f"--account={names.validate_account_name(req.account)}",
                f"--partition={names.validate_partition_name(req.partition)}",
                f"--job-name={names.validate_job_name(req.job_name)}",
                f"--time={names.validate_count(req.time_limit_minutes, 'time limit', 1)}",
                f"--nodes={names.validate_count(req.nodes, 'nodes', 1)}",
                f"--ntasks={names.validate_count(req.ntasks, 'ntasks', 1)}",
                f"--cpus-per-task={names.validate_count(req.cpus_per_task, 'cpus per task', 1)}",
                f"--chdir={names.validate_path(req.workdir, 'workdir')}"]
        if names.validate_count(req.gpus, "gpus"):
            argv.append(f"--gpus={req.gpus}")
        if req.mem_mb is not None:
            argv.append(f"--mem={names.validate_count(req.mem_mb, 'memory (MB)', 1)}M")
        if req.output is not None:
            argv.append(f"--output={names.validate_path(req.output, 'output')}")
        if req.array is not None:
            argv.append(f"--array={names.validate_array_spec(req.array)}")
        env = {"PATH": _JOB_PATH}
        for key, value in (req.environment or {}).items():
            names.validate_env_key(key)
            env[key] = names.validate_text(value, f"value of {key}", max_len=4096)
        if req.user is not None:
            account = self._unix_user(names.validate_user_name(req.user))
            env.update(HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name)
            if account.pw_uid != os.geteuid():
                if os.geteuid() != 0:
                    raise SchedulerError(f"only root may submit jobs as {req.user}")
                argv += [f"--uid={account.pw_name}", f"--gid={account.pw_gid}"]
        return argv, env

    @staticmethod
    def _unix_user(name: str) -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            raise SchedulerError(f"no Unix user {name!r} on this host") from None

    def jobs(self, *, user: str | None = None, account: str | None = None,
             job_ids: Sequence[str] | None = None) -> list[JobStatus]:
        # 22.05's squeue --json ignores -j/-u/-A and returns every job: filter here.
        return select_jobs(lambda: jobs_from_squeue_json(self._squeue_json()), user=user, account=account, job_ids=job_ids)

    def _squeue_json(self) -> dict[str, Any]:
        document = json.loads(self.runner.run(["squeue", "--json"]))
        if document.get("errors"):
            # squeue --json exits 0 with an "Unspecified error" when slurmctld is down;
            # ping tells that apart from a real failure.
            self.ping()
            raise SchedulerCommandFailed(["squeue", "--json"], 0, str(document["errors"]))
        return document

    def job(self, job_id: str) -> JobStatus:
        found = self.jobs(job_ids=[job_id])
        if found:
            return found[0]
        output = self.runner.run(["sacct", "--allusers", "-X", "-P", "-n", f"--jobs={job_id}",
                                  f"--format={','.join(SACCT_FIELDS)}"])
        found = [j for j in jobs_from_sacct(output) if j.job_id == job_id]
        if not found:
            raise SchedulerError(f"unknown job {job_id}")
        return found[0]

    def cancel(self, job_id: str) -> None:
        self.runner.run(["scancel", names.validate_job_id(job_id)],
                        ok_patterns=("already completing or completed",))

    def job_efficiency(self, job_id: str) -> JobEfficiency | None:
        output = self.runner.run(["sacct", "--allusers", "-P", "-n", f"--jobs={names.validate_job_id(job_id)}",
                                  f"--format={','.join(EFFICIENCY_FIELDS)}"])
        return efficiency_from_sacct(output, job_id)

    # ---- accounting ---------------------------------------------------------------------
    def sacctmgr(self, args: Sequence[str]) -> str:
        """Run one sacctmgr command without prompting; 'nothing to do' counts as success.

        Callers validate names first: this is the low-level door for batched changes.
        """
        return self.runner.run(["sacctmgr", "-i", *args], ok_patterns=IDEMPOTENT)

    def sacctmgr_batch(self, commands: Sequence[Sequence[str]], per_process: int = 500) -> int:
        """Run many sacctmgr commands, up to ``per_process`` in one process (read from stdin).

        Returns the number of processes run. A command Slurm refuses does not stop the
        others; callers read the state back to see what took effect. Raises
        SchedulerUnreachable when sacctmgr cannot reach slurmdbd.
        """
        lines = []
        for argv in commands:
            if not argv or any(not arg or not arg.isprintable() or any(c.isspace() or c in "'\"\\#" for c in arg)
                               for arg in argv):
                raise names.InvalidName(f"sacctmgr batch arguments must be single words: {argv!r}")
            lines.append(" ".join(argv))
        processes = 0
        for start in range(0, len(lines), per_process):
            script = "\n".join(lines[start:start + per_process]) + "\n"
            processes += 1
            # Each command is a slurmdbd commit; a grouped deletion of many users took up to about
            # 50 ms a user here, so two seconds a command is ample without waiting for ever.
            runner = dataclasses.replace(self.runner, timeout=self.runner.timeout + 2 * script.count("\n"))
            try:
                runner.run(["sacctmgr", "-i"], stdin=script, ok_patterns=IDEMPOTENT)
            except SchedulerUnreachable:
                raise
            except SchedulerCommandFailed:
                pass  # some line was refused: the caller's read-back tells which
        return processes

    def sacctmgr_load(self, text: str) -> str:
        """Load a flat file (``sacctmgr load``): many accounts and users in one commit.

        Adds what is missing and changes limits that differ; removes nothing. Callers build
        the file from validated names. The time allowed grows with the file (about 5 ms a line
        was measured here; ten times that is allowed), never an open-ended wait.
        """
        if "\0" in text:
            raise names.InvalidName("load file contains a NUL byte")
        runner = dataclasses.replace(self.runner, timeout=self.runner.timeout + 0.05 * text.count("\n"))
        with tempfile.NamedTemporaryFile("w", suffix=".cfg", prefix="portal-sacctmgr-") as handle:
            handle.write(text)
            handle.flush()
            return runner.run(["sacctmgr", "-i", "load", f"file={handle.name}"], ok_patterns=IDEMPOTENT)

    def _show(self, entity: str, fields: Sequence[str], *conditions: str,
              with_cluster: bool = True) -> list[dict[str, str]]:
        output = self.sacctmgr(["-P", "-n", "show", entity, *conditions,
                                *(self._cluster_args() if with_cluster else []),
                                f"format={','.join(fields)}"])
        return list(parse_pipe_rows(output, fields))

    def _show_associations(self, *conditions: str, with_cluster: bool = True) -> list[dict[str, str]]:
        # WOPLimits: otherwise slurmdbd fills every row's Max* limits and QOS in from its
        # parents, a stored procedure per row (twice the time, all in MariaDB) for fields never
        # read here; the Grp* limits and ParentName are the association's own either way.
        return self._show("association", _ASSOC_FIELDS, "WOPLimits", *conditions, with_cluster=with_cluster)

    def accounts(self) -> list[AccountInfo]:
        limits = {row["Account"]: row for row in self._show_associations()
                  if not row["User"] and not row["Partition"]}
        result = []
        for row in self._show("account", ("Account", "Descr", "Org")):
            assoc = limits.get(row["Account"], {})
            result.append(AccountInfo(
                name=row["Account"], parent=assoc.get("ParentName") or None,
                description=row["Descr"], organization=row["Org"],
                grp_tres_mins=parse_tres(assoc.get("GrpTRESMins")),
                grp_submit_jobs=parse_int(assoc.get("GrpSubmit"))))
        return result

    def associations(self, accounts: Sequence[str] | None = None, *,
                     cluster: str | None = None) -> list[AssociationInfo]:
        if accounts is not None and not accounts:
            return []
        conditions = [f"account={','.join(map(names.validate_account_name, accounts))}"] if accounts else []
        if cluster:
            conditions.append(f"cluster={names.validate_account_name(cluster)}")
        return [AssociationInfo(
            account=row["Account"], user=row["User"] or None,
            partition=row["Partition"] or None,
            grp_tres_mins=parse_tres(row["GrpTRESMins"]),
            grp_submit_jobs=parse_int(row["GrpSubmit"]),
            grp_jobs=parse_int(row["GrpJobs"]),
            parent=row["ParentName"] or None, cluster=row["Cluster"] or None,
        ) for row in self._show_associations(*conditions, with_cluster=not cluster)]

    # Up to this many changes go as plain commands in one sacctmgr process: on a large
    # cluster `sacctmgr load` first reads the whole association tree (3-4 s at 1,000
    # projects here, against under a second for one `add user`), which would make the cost
    # of one small change grow with the site.
    SMALL_PLAN = 25

    def apply_accounting(self, plan: Plan) -> int:
        """A small plan as grouped commands in one process; a large one as bounded ``sacctmgr
        load`` files (each one slurmdbd commit), then moves and removals in one more process."""
        commands = plan.commands()
        if len(commands) <= self.SMALL_PLAN:
            return self.sacctmgr_batch([list(c.argv) for c in commands]) if commands else 0
        calls = 0
        for load in plan.load_files():
            self.sacctmgr_load(load)
            calls += 1
        rest = plan.move_commands() + plan.removal_commands()
        if rest:
            calls += self.sacctmgr_batch([list(c.argv) for c in rest])
        return calls

    def account_usage(self, accounts: Sequence[str]) -> dict[str, AccountUsage]:
        if not accounts:
            return {}
        output = self.runner.run(["scontrol", "show", "assoc_mgr", "flags=assoc",
                                  "accounts=" + ",".join(map(names.validate_account_name, accounts))])
        return {usage.account: usage for usage in account_usage_from_assoc_mgr(output)
                if usage.account in accounts}

    def _cluster_args(self) -> list[str]:
        return [f"cluster={self.cluster}"] if self.cluster else []

    def add_account(self, name: str, *, parent: str | None = None, description: str = "",
                    organization: str = "", grp_tres_mins: Mapping[str, int] | None = None,
                    grp_submit_jobs: int | None = None) -> None:
        args = ["add", "account", names.validate_account_name(name), *self._cluster_args(),
                # sacctmgr defaults both to the name; say it explicitly so reads are stable.
                f"Description={names.validate_text(description or name, 'description')}",
                f"Organization={names.validate_text(organization or name, 'organization')}"]
        if parent:
            args.append(f"Parent={names.validate_account_name(parent)}")
        self.sacctmgr(args + limit_args(grp_tres_mins, grp_submit_jobs))

    def modify_account(self, name: str, *, grp_tres_mins: Mapping[str, int] | None = None,
                       grp_submit_jobs: int | None = None) -> None:
        settings = limit_args(grp_tres_mins, grp_submit_jobs)
        names.validate_account_name(name)
        if settings:
            self.sacctmgr(["modify", "account", "where", f"name={name}",
                           *self._cluster_args(), "set", *settings])

    def remove_account(self, name: str) -> None:
        self.sacctmgr(["delete", "account", "where",
                       f"name={names.validate_account_name(name)}", *self._cluster_args()])

    def add_user(self, account: str, user: str, *, partition: str | None = None) -> None:
        args = ["add", "user", names.validate_user_name(user),
                f"Account={names.validate_account_name(account)}", *self._cluster_args()]
        if partition:
            args.append(f"Partition={names.validate_partition_name(partition)}")
        self.sacctmgr(args)

    def remove_user(self, account: str, user: str) -> None:
        self.sacctmgr(["delete", "user", "where", f"name={names.validate_user_name(user)}",
                       f"account={names.validate_account_name(account)}",
                       *self._cluster_args()])

    def association_ready(self, account: str, user: str) -> bool:
        argv = ["scontrol", "show", "assoc_mgr", "flags=assoc",
                f"accounts={names.validate_account_name(account)}",
                f"users={names.validate_user_name(user)}"]
        return f"UserName={user}(" in self.runner.run(argv)

    def wait_for_association(self, account: str, user: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.association_ready(account, user):
            if time.monotonic() > deadline:
                raise SchedulerError(f"slurmctld did not learn of {user} in {account}"
                                     f" within {timeout:g} s")
            time.sleep(0.25)

    def usage(self, start: datetime, end: datetime,
              accounts: Sequence[str] | None = None) -> list[UsageRecord]:
        argv = ["sacct", "--allusers", "-X", "-P", "-n", f"--starttime={_sacct_time(start)}",
                f"--endtime={_sacct_time(end)}", f"--format={','.join(SACCT_FIELDS)}"]
        if accounts is not None:
            if not accounts:
                return []
            argv.append("--accounts=" + ",".join(map(names.validate_account_name, accounts)))
        return usage_from_sacct(self.runner.run(argv))
