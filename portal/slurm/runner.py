"""The only place that runs Slurm commands: argv lists, no shell, one error type."""
from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from portal.slurm.errors import SchedulerCommandFailed, SchedulerUnreachable
from portal.slurm.writelock import accounting_writes, configured_lock

log = logging.getLogger(__name__)

# Messages Slurm clients print when a daemon is down rather than when a request is wrong.
_UNREACHABLE = re.compile(
    r"Unable to contact slurm controller|Connection refused|Socket timed out"
    r"|slurmdbd.*not running|Problem talking to the database|Unable to connect to database"
    r"|Zero Bytes were transmitted|Communication connection failure"
    r"|Munge encode failed|Unable to establish connection|Connection timed out",
    re.IGNORECASE)
# Secrets in the portal's own environment must not leak into jobs or client tools.
_PASSED_THROUGH = ("PATH", "LANG", "LC_ALL")


@dataclass
class CommandRunner:
    bin_dir: str | None = None
    timeout: float = 15
    env: Mapping[str, str] = field(default_factory=dict)
    # Writes to slurmdbd (sacctmgr -i) hold this lock file (portal/slurm/writelock.py).
    accounting_lock: str | None = field(default_factory=configured_lock)

    def base_env(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        # Clients print local times; UTC makes them unambiguous.
        env.update(TZ="UTC", SLURM_TIME_FORMAT="standard")
        env.update(self.env)
        return env

    def run(self, argv: Sequence[str], *, stdin: str | None = None,
            extra_env: Mapping[str, str] | None = None,
            ok_patterns: Sequence[str] = ()) -> str:
        """Run a command and return its stdout; output matching ok_patterns is success."""
        argv = list(argv)
        if self.bin_dir:
            argv[0] = os.path.join(self.bin_dir, argv[0])
        env = {**self.base_env(), **(extra_env or {})}
        conf = env.get("SLURM_CONF")
        if conf and not os.path.isfile(conf):
            # Without its slurm.conf a client falls back to configless lookups and hangs
            # until the timeout; say what is wrong at once instead.
            raise SchedulerUnreachable(f"slurm.conf not found at {conf}")
        log.debug("running %s", argv)
        writes = os.path.basename(argv[0]) == "sacctmgr" and "-i" in argv
        try:
            with accounting_writes(self.accounting_lock if writes else None, self.timeout):
                proc = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                      timeout=self.timeout, env=env, check=False)
        except FileNotFoundError as exc:
            raise SchedulerUnreachable(
                f"Slurm client tools not found ({argv[0]}); install slurm-client or set"
                f" bin_dir") from exc
        except subprocess.TimeoutExpired as exc:
            raise SchedulerUnreachable(
                f"{argv[0]} did not answer within {self.timeout:g} s") from exc
        output = f"{proc.stdout}\n{proc.stderr}"
        if any(pattern in output for pattern in ok_patterns):
            return proc.stdout
        if proc.returncode != 0:
            if _UNREACHABLE.search(proc.stderr):
                raise SchedulerUnreachable(f"{argv[0]}: {proc.stderr.strip()}")
            raise SchedulerCommandFailed(argv, proc.returncode, proc.stderr or proc.stdout)
        return proc.stdout
