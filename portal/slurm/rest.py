"""The ``rest`` adapter: Slurm through slurmrestd with JWT, so the portal needs no root.

The portal holds one token of SlurmUser (or root) made by ``scontrol token``; slurmctld and
slurmdbd let such a token act for any user named in ``X-SLURM-USER-NAME``. Jobs are submitted,
listed and cancelled as their user; accounting is read and written as the token's own user.
The token is read from a file (or an environment variable) at every call, so rotating it
is writing a new file: nothing is restarted and no secret is stored in the database.

The OpenAPI version is configuration (``api_version``, ``v0.0.38`` for Slurm 22.05): paths and
field names change between Slurm releases. What slurmrestd 22.05 cannot do, and what this
adapter does instead (each listed in :attr:`RestScheduler.limitations`, shown to staff):

- No live association usage (``scontrol show assoc_mgr``): :meth:`account_usage` adds up
  the accounting records of the account's jobs (``/slurmdb/.../jobs``). It cannot see a
  RawUsage reset made by hand, and jobs still unknown to slurmdbd are missing.
- No view of the controller's association cache: :meth:`association_ready` says True once
  slurmdbd has the association; a submission a moment later may still be refused.
- ``POST /slurmdb/v0.0.38/associations`` cannot change an existing *account* association
  (seen here: the request is answered without error and nothing changes; user associations
  do change). Limit changes and moves of accounts therefore go through ``limits_fallback``,
  a ``cli`` adapter on a host with sacctmgr, when one is configured; without it they are
  refused with :class:`SchedulerCommandFailed` and the reconciler reports the run as failed.
- An association body with ``"partition": ""`` made slurmrestd 22.05 exit here: partitions
  are only ever sent when set.
"""
from __future__ import annotations

import logging
import os
import pwd
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from portal.slurm import names
from portal.slurm.accounting import Plan
from portal.slurm.base import Scheduler, select_jobs
from portal.slurm.errors import SchedulerCommandFailed, SchedulerError, SchedulerUnreachable
from portal.slurm.parsing import efficiency_from_sacct, jobs_from_squeue_json, parse_tres
from portal.slurm.restparse import account_usage_from_records, association_info, efficiency_rows, partitions_from_rest, qos_from_rest, record_id, status_from_db, tres_list, usage_record
from portal.slurm.runner import _UNREACHABLE
from portal.slurm.types import AccountInfo, AccountUsage, AssociationInfo, JobEfficiency, JobRequest, JobStatus, NodeFeatures, PartitionInfo, QosInfo, UsageRecord
from portal.slurm.writelock import accounting_writes, configured_lock

log = logging.getLogger(__name__)

_JOB_PATH = "/usr/local/bin:/usr/bin:/bin"
# slurmrestd's own words when slurmctld or slurmdbd does not answer (besides the clients' ones).
_DAEMON_DOWN = re.compile(r"slurmctld config is unable to load|Unable to contact|Unable to connect|"
                          r"openapi_get_db_conn|Failed to open slurmdbd connection", re.I)
# slurmdbd's answer to a query that matches nothing: an error in 22.05, an empty list to us.
_NOTHING = ("Nothing found",)
# Replies that mean "already so": success for idempotent calls.
_ALREADY = ("already completing or completed", "Nothing deleted", "Nothing new added")


def _since(moment: datetime) -> str:
    """A slurmdb time query relative to now: slurmrestd parses absolute times in its own
    local time zone, which the portal cannot know; 'now-N' means the same everywhere."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - moment).total_seconds())
    return f"now-{seconds}" if seconds >= 0 else f"now+{-seconds}"


class RestScheduler(Scheduler):
    """Slurm through slurmrestd (OpenAPI ``api_version``) with a JWT.

    ``url`` is slurmrestd's base address. The token comes from ``token_file`` (re-read when
    it changes) or the environment variable ``token_env``; ``token_user`` is the user it was
    made for (SlurmUser or root). ``timeout`` bounds every call (connect and read).
    ``limits_fallback``: options of a ``cli`` adapter for what slurmrestd 22.05 cannot do.
    """

    def __init__(self, url: str, *, token_file: str | None = None, token_env: str | None = None,
                 token_user: str = "root", api_version: str = "v0.0.38", timeout: float = 15,
                 connect_timeout: float = 5, cluster: str | None = None,
                 limits_fallback: Mapping[str, Any] | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise SchedulerError(f"slurmrestd URL must be http(s)://, not {url!r}")
        if not (token_file or token_env):
            raise SchedulerError("the rest adapter needs token_file or token_env")
        if not re.fullmatch(r"v\d+\.\d+\.\d+", api_version):
            raise SchedulerError(f"invalid OpenAPI version {api_version!r}")
        self.url = url.rstrip("/")
        self.token_file, self.token_env = token_file, token_env
        self.token_user = names.validate_user_name(token_user)
        self.api_version = api_version
        self.timeout = (min(connect_timeout, timeout), timeout)
        self.cluster = names.validate_account_name(cluster) if cluster else None
        self.session = requests.Session()
        self._token: tuple[float, str] | None = None
        self.accounting_lock = configured_lock()  # portal/slurm/writelock.py
        self._fallback = None
        if limits_fallback is not None:
            from portal.slurm.commandline import CliScheduler

            self._fallback = CliScheduler(**{"timeout": timeout, **limits_fallback, "cluster": cluster})
        # Keys of what this adapter only approximates; the staff status page words them.
        self.limitations = ("usage_from_job_records", "readiness_from_slurmdbd",
                            "account_limits_via_sacctmgr" if self._fallback else "account_limits_refused")

    # ---- HTTP ---------------------------------------------------------------------------
    def _read_token(self) -> str:
        if self.token_env:
            token = os.environ.get(self.token_env, "").strip()
            if not token:
                raise SchedulerUnreachable(f"no slurmrestd token in ${self.token_env}")
            return token
        path = Path(self.token_file or "")
        try:
            mtime = path.stat().st_mtime
            if self._token is None or self._token[0] != mtime:
                self._token = (mtime, path.read_text().strip().removeprefix("SLURM_JWT="))
        except OSError as exc:
            raise SchedulerUnreachable(f"cannot read the slurmrestd token file {path}: {exc.strerror}") from exc
        return self._token[1]

    def _call(self, method: str, path: str, *, as_user: str | None = None, params: Mapping[str, str] | None = None,
              body: Any = None, ok: Sequence[str] = (), done_if: str | None = None) -> dict[str, Any]:
        """One request; errors in the reply become SchedulerCommandFailed or Unreachable, unless
        the reply carries ``done_if`` (a job id: the job exists, the error was a warning)."""
        headers = {"X-SLURM-USER-NAME": as_user or self.token_user, "X-SLURM-USER-TOKEN": self._read_token()}
        url = f"{self.url}{path}"
        writes = method != "GET" and path.startswith("/slurmdb/")
        try:
            # No redirects: the token header would follow them to wherever they point.
            with accounting_writes(self.accounting_lock if writes else None, self.timeout[1]):
                reply = self.session.request(method, url, params=params, json=body, headers=headers,
                                             timeout=self.timeout, allow_redirects=False)
        except requests.Timeout as exc:
            raise SchedulerUnreachable(f"slurmrestd did not answer within {self.timeout[1]:g} s ({path})") from exc
        except requests.ConnectionError as exc:
            raise SchedulerUnreachable(f"slurmrestd at {self.url} cannot be reached: {exc.__class__.__name__}") from exc
        if reply.status_code == 304:  # "NOT MODIFIED": nothing to delete, nothing to change
            return {}
        try:
            document = reply.json()
        except ValueError:
            document = {"errors": [{"error": reply.text.strip()[:500] or reply.reason}]}
        messages = [str(e.get("description") or e.get("error") or e) for e in document.get("errors") or () if e]
        errors = [m for m in messages if not any(pattern in m for pattern in ok)]
        text = "; ".join(errors)
        if reply.status_code in (401, 403):
            raise SchedulerCommandFailed([method, path], reply.status_code, f"slurmrestd refused the token: {text}")
        if errors and done_if and document.get(done_if):
            log.warning("slurmrestd %s %s succeeded with a warning: %s", method, path, text)
            return document
        if errors:
            if "Protocol authentication error" in text:
                raise SchedulerCommandFailed([method, path], reply.status_code, f"slurmrestd refused the token: {text}")
            if _UNREACHABLE.search(text) or _DAEMON_DOWN.search(text) or reply.status_code in (502, 503, 504):
                if path.startswith("/slurm/"):
                    # A token slurmctld rejects reads exactly like slurmctld being down
                    # ("slurmctld config is unable to load"); slurmdbd names it, so ask it.
                    self._call("GET", self._db("/qos"))
                raise SchedulerUnreachable(f"{path}: {text}")
            if reply.status_code >= 500 and path.startswith("/slurm/") and not path.endswith("/ping"):
                self.ping()  # slurmctld down reads as a vague failure ("Failed while looking for jobs")
            raise SchedulerCommandFailed([method, path], reply.status_code, text)
        if reply.status_code >= 500 and not messages:
            raise SchedulerUnreachable(f"{path}: HTTP {reply.status_code}")
        return document

    def _slurm(self, path: str) -> str:
        return f"/slurm/{self.api_version}{path}"

    def _db(self, path: str) -> str:
        return f"/slurmdb/{self.api_version}{path}"

    # ---- cluster ------------------------------------------------------------------------
    def cluster_name(self) -> str:
        if self.cluster:
            return self.cluster
        clusters = [c["name"] for c in self._call("GET", self._db("/clusters")).get("clusters", [])]
        if len(clusters) != 1:
            raise SchedulerError(f"slurmdbd knows clusters {clusters}: configure the site's cluster name")
        return clusters[0]

    def ping(self) -> None:
        pings = self._call("GET", self._slurm("/ping")).get("pings", [])
        if not any(p.get("ping") == "UP" for p in pings):
            raise SchedulerUnreachable(f"slurmctld is not answering: {pings}")

    def _nodes(self) -> list[dict[str, Any]]:
        return self._call("GET", self._slurm("/nodes")).get("nodes", [])

    def partitions(self) -> list[PartitionInfo]:
        parts = self._call("GET", self._slurm("/partitions")).get("partitions", [])
        return partitions_from_rest(parts, self._nodes())

    def qos(self) -> list[QosInfo]:
        return qos_from_rest(self._call("GET", self._db("/qos")).get("QOS", []))

    def node_features(self, partition: str) -> list[NodeFeatures]:
        names.validate_partition_name(partition)
        return [NodeFeatures(n["name"], frozenset(f for f in str(n.get("features") or "").split(",") if f))
                for n in self._nodes() if partition in (n.get("partitions") or [])]

    # ---- jobs ---------------------------------------------------------------------------
    def submit(self, request: JobRequest) -> str:
        body, user = self._submission(request)
        # A job over a partition limit is queued (pending) with the limit as an "error".
        reply = self._call("POST", self._slurm("/job/submit"), as_user=user, body=body, done_if="job_id")
        return names.validate_job_id(str(reply.get("job_id", "")))

    def _submission(self, req: JobRequest) -> tuple[dict[str, Any], str]:
        """Validate a request as the cli adapter does and turn it into a v0.0.38 job body."""
        if not req.script.startswith("#!") or "\0" in req.script:
            raise names.InvalidName("job script must start with #! and contain no NUL bytes")
        job: dict[str, Any] = {
            "account": names.validate_account_name(req.account),
            "partition": names.validate_partition_name(req.partition),
            "name": names.validate_job_name(req.job_name),
            "time_limit": names.validate_count(req.time_limit_minutes, "time limit", 1),
            "nodes": str(names.validate_count(req.nodes, "nodes", 1)),
            "tasks": names.validate_count(req.ntasks, "ntasks", 1),
            "cpus_per_task": names.validate_count(req.cpus_per_task, "cpus per task", 1),
            "current_working_directory": names.validate_path(req.workdir, "workdir"),
        }
        if names.validate_count(req.gpus, "gpus"):
            job["gpus"] = str(req.gpus)
        if req.mem_mb is not None:
            job["memory_per_node"] = names.validate_count(req.mem_mb, "memory (MB)", 1)
        if req.output is not None:
            job["standard_output"] = names.validate_path(req.output, "output")
        if req.array is not None:
            job["array"] = names.validate_array_spec(req.array)
        extra = {names.validate_env_key(key): names.validate_text(value, f"value of {key}", max_len=4096)
                 for key, value in (req.environment or {}).items()}
        if req.user is None:
            raise SchedulerError("the rest adapter submits jobs as a named user only")
        user = names.validate_user_name(req.user)
        env = {"PATH": _JOB_PATH, "USER": user, "LOGNAME": user}
        try:  # the home folder is known when the portal runs on a cluster host
            env["HOME"] = pwd.getpwnam(user).pw_dir
        except KeyError:
            pass
        job["environment"] = {**env, **extra}
        return {"job": job, "script": req.script}, user

    def _queue(self) -> list[JobStatus]:
        return jobs_from_squeue_json(self._call("GET", self._slurm("/jobs")))

    def jobs(self, *, user: str | None = None, account: str | None = None,
             job_ids: Sequence[str] | None = None) -> list[JobStatus]:
        return select_jobs(self._queue, user=user, account=account, job_ids=job_ids)

    def _db_jobs(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        return self._call("GET", self._db("/jobs"), params=params, ok=_NOTHING).get("jobs", [])

    def _db_job(self, job_id: str) -> list[dict[str, Any]]:
        base = job_id.split("_")[0]
        found = self._call("GET", self._db(f"/job/{names.validate_job_id(base)}"),
                           ok=_NOTHING).get("jobs", [])
        return [j for j in found if record_id(j) == job_id or str(j.get("job_id")) == base
                or str((j.get("array") or {}).get("job_id")) == base]

    def job(self, job_id: str) -> JobStatus:
        found = self.jobs(job_ids=[job_id])
        if found:
            return found[0]
        records = [r for r in self._db_job(job_id) if record_id(r) == job_id]
        if not records:
            raise SchedulerError(f"unknown job {job_id}")
        return status_from_db(records[0])

    def cancel(self, job_id: str) -> None:
        names.validate_job_id(job_id)
        owners = [j.user for j in self.jobs(job_ids=[job_id])]
        # As the job's owner, as scancel run by them would; a job that has left the queue is done.
        if owners:
            self._call("DELETE", self._slurm(f"/job/{job_id}"), as_user=owners[0], ok=_ALREADY)

    def job_efficiency(self, job_id: str) -> JobEfficiency | None:
        names.validate_job_id(job_id)
        return efficiency_from_sacct("\n".join(efficiency_rows(r) for r in self._db_job(job_id)), job_id)

    # ---- accounting reads ----------------------------------------------------------------
    def _associations(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        return self._call("GET", self._db("/associations"), params=params, ok=_NOTHING).get("associations", [])

    def accounts(self) -> list[AccountInfo]:
        params = {"cluster": self.cluster} if self.cluster else {}
        own = {a["account"]: a for a in self._associations(params) if not a.get("user") and not a.get("partition")}
        result = []
        for row in self._call("GET", self._db("/accounts"), ok=_NOTHING).get("accounts", []):
            info = association_info(own[row["name"]]) if row["name"] in own else None
            result.append(AccountInfo(name=row["name"], parent=info.parent if info else None,
                                      description=row.get("description") or "", organization=row.get("organization") or "",
                                      grp_tres_mins=info.grp_tres_mins if info else {},
                                      grp_submit_jobs=info.grp_submit_jobs if info else None))
        return result

    def associations(self, accounts: Sequence[str] | None = None, *,
                     cluster: str | None = None) -> list[AssociationInfo]:
        if accounts is not None and not accounts:
            return []
        params = {}
        if accounts:
            params["account"] = ",".join(map(names.validate_account_name, accounts))
        if cluster or self.cluster:
            params["cluster"] = names.validate_account_name(cluster or self.cluster)
        wanted = set(accounts) if accounts else None
        return [association_info(a) for a in self._associations(params)
                if wanted is None or a["account"] in wanted]

    def account_usage(self, accounts: Sequence[str]) -> dict[str, AccountUsage]:
        """Limits from slurmdbd, use added up from the accounts' job records (see module doc)."""
        if not accounts:
            return {}
        limits = {a.account: a for a in self.associations(accounts) if a.user is None and a.partition is None}
        if not limits:
            return {}
        records = self._db_jobs({"account": ",".join(sorted(limits)), "start_time": "2000-01-01T00:00:00",
                                 "end_time": "now+60"})
        return account_usage_from_records(limits, records, time.time())

    def association_ready(self, account: str, user: str) -> bool:
        found = self._associations({"account": names.validate_account_name(account),
                                    "user": names.validate_user_name(user)})
        return any(a.get("user") == user for a in found)

    def wait_for_association(self, account: str, user: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.association_ready(account, user):
            if time.monotonic() > deadline:
                raise SchedulerError(f"slurmdbd did not list {user} in {account} within {timeout:g} s")
            time.sleep(0.25)
        # slurmdbd pushes the change to slurmctld a moment later, which no endpoint shows.
        time.sleep(1.0)

    def usage(self, start: datetime, end: datetime,
              accounts: Sequence[str] | None = None) -> list[UsageRecord]:
        params = {"start_time": _since(start), "end_time": _since(end)}
        if accounts is not None:
            if not accounts:
                return []
            params["account"] = ",".join(map(names.validate_account_name, accounts))
        return [usage_record(r) for r in self._db_jobs(params)]

    # ---- accounting writes ---------------------------------------------------------------
    def _cluster(self) -> str:
        if not self.cluster:
            self.cluster = names.validate_account_name(self.cluster_name())
        return self.cluster

    def _account_body(self, name: str, parent: str | None, grp_tres_mins: Mapping[str, int] | None,
                      grp_submit_jobs: int | None, grp_jobs: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"account": names.validate_account_name(name), "cluster": self._cluster(),
                                "parent_account": names.validate_account_name(parent or "root")}
        limits: dict[str, Any] = {}
        if grp_tres_mins:
            limits["tres"] = {"group": {"minutes": tres_list(grp_tres_mins)}}
        # 22.05 files GrpJobs under max/jobs/per/count and GrpSubmitJobs under .../submitted.
        per = {}
        if grp_submit_jobs is not None:
            per["submitted"] = names.validate_count(grp_submit_jobs, "GrpSubmitJobs", minimum=-1)
        if grp_jobs is not None:
            per["count"] = names.validate_count(grp_jobs, "GrpJobs", minimum=-1)
        if per:
            limits["jobs"] = {"per": per}
        if limits:
            body["max"] = limits
        return body

    def _add_accounts(self, specs: Sequence[tuple[str, str | None, str, str]], associations: list[dict]) -> int:
        if not specs:
            return 0
        self._call("POST", self._db("/accounts"), body={"accounts": [
            {"name": n, "description": names.validate_text(d or n, "description"),
             "organization": names.validate_text(o or n, "organization")} for n, _, d, o in specs]})
        # Without "user" 22.05 complains that it is missing and adds the association all the
        # same; with "user": "" it adds it without its parent. So: no user, and that one message ignored.
        self._call("POST", self._db("/associations"), body={"associations": associations},
                   ok=("Missing required field 'user'",))
        return 2

    def add_account(self, name: str, *, parent: str | None = None, description: str = "",
                    organization: str = "", grp_tres_mins: Mapping[str, int] | None = None,
                    grp_submit_jobs: int | None = None) -> None:
        self._add_accounts([(name, parent, description, organization)],
                           [self._account_body(name, parent, grp_tres_mins, grp_submit_jobs)])

    def modify_account(self, name: str, *, grp_tres_mins: Mapping[str, int] | None = None,
                       grp_submit_jobs: int | None = None) -> None:
        names.validate_account_name(name)
        if not grp_tres_mins and grp_submit_jobs is None:
            return
        if self._fallback is None:
            raise self._refuse(f"change the limits of account {name}")
        self._fallback.modify_account(name, grp_tres_mins=grp_tres_mins, grp_submit_jobs=grp_submit_jobs)

    def remove_account(self, name: str) -> None:
        self._call("DELETE", self._db(f"/account/{names.validate_account_name(name)}"), ok=_ALREADY)

    def _user_association(self, account: str, user: str, partition: str | None) -> dict[str, Any]:
        body = {"account": names.validate_account_name(account), "cluster": self._cluster(),
                "user": names.validate_user_name(user)}
        if partition:  # never "": slurmrestd 22.05 exited on it here
            body["partition"] = names.validate_partition_name(partition)
        return body

    def _add_users(self, assocs: Sequence[tuple[str, str, str | None]]) -> int:
        if not assocs:
            return 0
        bodies = [self._user_association(*a) for a in assocs]  # validates before any request
        users = sorted({body["user"] for body in bodies})
        self._call("POST", self._db("/users"), body={"users": [{"name": u} for u in users]})
        self._call("POST", self._db("/associations"), body={"associations": bodies})
        return 2

    def add_user(self, account: str, user: str, *, partition: str | None = None) -> None:
        self._add_users([(account, user, partition)])

    def _remove_association(self, account: str, user: str, partition: str | None) -> None:
        params = {"account": names.validate_account_name(account), "user": names.validate_user_name(user),
                  "cluster": self._cluster()}
        if partition:
            params["partition"] = names.validate_partition_name(partition)
        self._call("DELETE", self._db("/association"), params=params, ok=_ALREADY)

    def remove_user(self, account: str, user: str) -> None:
        self._remove_association(account, user, None)

    def apply_accounting(self, plan: Plan) -> int:
        """The plan as grouped REST calls: new accounts in one POST each for accounts and their
        associations, new user associations likewise, then one call per removal."""
        calls = 0

        def attempt(action, *args) -> None:
            nonlocal calls
            calls += 1
            try:
                action(*args)
            except SchedulerUnreachable:
                raise
            except SchedulerError as exc:  # refused: the caller's read-back tells what took effect
                log.warning("slurmrestd refused a change: %s", exc)

        if plan.cluster:
            self.cluster = self.cluster or names.validate_account_name(plan.cluster)
        specs = [(s.name, s.parent, "", "") for s in plan.new_accounts]
        bodies = [self._account_body(s.name, s.parent, dict(s.tres_mins), s.submit_jobs, s.running_jobs)
                  for s in plan.new_accounts]
        if specs:
            attempt(self._add_accounts, specs, bodies)
        for current, _settings in plan.changed:
            attempt(self._change_limits, current.name, _settings)
        for parent, accounts in plan.moves.items():
            for account in accounts:
                attempt(self._move, account, parent)
        if plan.user_adds:
            attempt(self._add_users, sorted((a, u, p or None) for a, u, p in plan.user_adds))
        for (account, user, partition), settings in sorted(plan.user_limit_resets.items()):
            attempt(self._reset_user_limits, account, user, partition or None, settings)
        for user in plan.whole_users:
            attempt(self._remove_user_whole, user)
        for account, user, partition in sorted(plan.user_removals):
            attempt(self._remove_association, account, user, partition or None)
        for chunk in plan.account_removals:
            for account in chunk:
                attempt(self.remove_account, account)
        return calls

    def _remove_user_whole(self, user: str) -> None:
        self._call("DELETE", self._db(f"/user/{names.validate_user_name(user)}"), ok=_ALREADY)

    def _refuse(self, what: str) -> SchedulerCommandFailed:
        return SchedulerCommandFailed(["POST", self._db("/associations")], 0,
                                      f"slurmrestd {self.api_version} cannot {what}; configure limits_fallback"
                                      " or use sacctmgr")

    def _change_limits(self, account: str, settings: Sequence[str]) -> None:
        if self._fallback is None:
            raise self._refuse(f"change the limits of account {account}")
        self._fallback.sacctmgr(["modify", "account", "where", f"name={names.validate_account_name(account)}",
                                 f"cluster={self._cluster()}", "set", *settings])

    def _move(self, account: str, parent: str) -> None:
        if self._fallback is None:
            raise self._refuse(f"move account {account}")
        self._fallback.sacctmgr(["modify", "account", "where", f"name={names.validate_account_name(account)}",
                                 f"cluster={self._cluster()}", "set", f"parent={names.validate_account_name(parent)}"])

    def _reset_user_limits(self, account: str, user: str, partition: str | None, settings: Sequence[str]) -> None:
        """User associations can be modified through slurmrestd: clear every limit listed."""
        body = self._user_association(account, user, partition)
        tres: dict[str, int] = {}
        jobs: dict[str, int] = {}
        for setting in settings:
            key, _, value = setting.partition("=")
            if key == "GrpTRESMins":
                tres.update(parse_tres(value))
            elif key == "GrpSubmitJobs":
                jobs["submitted"] = -1
            elif key == "GrpJobs":
                jobs["count"] = -1
        body["max"] = {**({"tres": {"group": {"minutes": tres_list(tres)}}} if tres else {}),
                       **({"jobs": {"per": jobs}} if jobs else {})}
        self._call("POST", self._db("/associations"), body={"associations": [body]})
