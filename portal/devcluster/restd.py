"""slurmrestd with JWT for the development cluster (the ``rest`` scheduler adapter's server).

What a site does by hand, done at cluster start: a random HS256 key readable only by
SlurmUser (root here), ``AuthAltTypes=auth/jwt`` in slurm.conf and slurmdbd.conf so that
slurmctld and slurmdbd accept tokens signed with it, and slurmrestd listening on TCP with
``rest_auth/jwt``. slurmrestd refuses to run as root or SlurmUser, so it runs as ``nobody``:
it holds no key and no munge credential of its own and only forwards the caller's token.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

JWT_PLUGIN = Path("/usr/lib/x86_64-linux-gnu/slurm-wlm/auth_jwt.so")
RESTD_USER = "nobody"
RESTD_GROUP = "nogroup"


def key_path(root: Path) -> Path:
    return root / "etc" / "jwt_hs256.key"


def make_key(root: Path) -> Path:
    """32 random bytes, mode 0600, owned by SlurmUser (the process writing the config)."""
    path = key_path(root)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(32))
    return path


def auth_alt_lines(root: Path) -> str:
    """The lines slurm.conf and slurmdbd.conf both need for tokens signed with the key."""
    return f"AuthAltTypes=auth/jwt\nAuthAltParameters=jwt_key={key_path(root)}"


def configured(conf_path: Path) -> bool:
    try:
        return bool(re.search(r"^AuthAltTypes=.*auth/jwt", conf_path.read_text(), re.M))
    except FileNotFoundError:
        return False


def launch(root: Path, conf_path: Path, port: int, env: dict[str, str]) -> None:
    """Start slurmrestd in the background as ``nobody``; its pid goes to run/slurmrestd.pid.

    slurmrestd does not daemonize itself, so it is started in a session of its own (it
    outlives the caller like the other daemons) and its pid file is written for it.
    """
    if not JWT_PLUGIN.exists():
        raise FileNotFoundError(f"{JWT_PLUGIN} is missing: apt-get install slurm-wlm-jwt-plugin slurmrestd")
    argv = ["setpriv", f"--reuid={RESTD_USER}", f"--regid={RESTD_GROUP}", "--clear-groups",
            "slurmrestd", "-f", str(conf_path), "-a", "rest_auth/jwt", f"127.0.0.1:{port}"]
    pid_file = root / "run" / "slurmrestd.pid"
    # setsid --fork detaches it (no child left for this process to reap); the shell writes its
    # own pid, then becomes slurmrestd. Paths travel as arguments, never inside the script.
    # SLURM_JWT=daemon: slurmrestd takes each request's token instead of munge for its RPCs.
    with open(root / "log" / "slurmrestd.log", "ab") as log:
        subprocess.run(["setsid", "--fork", "sh", "-c", 'echo $$ > "$0"; exec "$@"', str(pid_file), *argv],
                       stdin=subprocess.DEVNULL, stdout=log, stderr=log, env={**env, "SLURM_JWT": "daemon"},
                       check=True)


def token(env: dict[str, str], user: str, lifespan: int) -> str:
    """A token for ``user`` made by ``scontrol token`` (only root/SlurmUser may ask for
    another user's)."""
    proc = subprocess.run(["scontrol", "token", f"username={user}", f"lifespan={int(lifespan)}"],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=15, check=False)
    match = re.search(r"SLURM_JWT=(\S+)", proc.stdout)
    if proc.returncode != 0 or not match:
        raise RuntimeError(f"scontrol token failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return match.group(1)


def write_token_file(path: Path, value: str) -> Path:
    """A token where the portal reads it: mode 0600 from the start (never briefly readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT
    return path
