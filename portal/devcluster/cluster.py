"""A throwaway single-host Slurm cluster (munged, slurmdbd, slurmctld, slurmd) in one folder.

Every daemon daemonizes itself and writes its own pid file under ``root/run``, so the
cluster outlives the Python process that started it and can be stopped from another one.

With ``nodes=N`` (N > 1) the one host runs N slurmd, one per Slurm node ``n1``..``nN``
(Debian's Slurm is built with MULTIPLE_SLURMD): each listens on its own port and has its own
spool folder, pid file, log and TmpFS (``%n`` in slurm.conf), so multi-node jobs
(``srun -N2``, MPI over PMIx) really span nodes. Every node claims all the host's CPUs.
"""
from __future__ import annotations

import fcntl
import json
import os
import pwd
import re
import shutil
import signal
import socket
import string
import subprocess
import time
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from portal.devcluster import restd

DAEMONS = ("munged", "slurmdbd", "slurmctld", "slurmd")
# Node i > 0 listens on Ports.slurmd + i * _NODE_PORT_STRIDE: above every cluster's base
# ports (17000-19999) and below the ephemeral range, and distinct between cluster names.
_NODE_PORT_STRIDE = 3000
MAX_NODES = 4
_LOGS = {"munged": "munged.log", "slurmdbd": "slurmdbd.log",
         "slurmctld": "slurmctld.log", "slurmd": "slurmd.log", "slurmrestd": "slurmrestd.log"}
_READY_NODE_STATES = {"idle", "mix", "alloc", "comp"}


class ClusterError(RuntimeError):
    """The cluster could not be started or stopped; the message carries the log tail."""


QUICKACK_SETTING = "PORTAL_DEVCLUSTER_QUICKACK"


def set_loopback_quickack(on: bool) -> list[str]:
    """Set ``quickack 1`` (or ``0``) on this host's loopback routes; returns the routes changed.
    Needs root and iproute2; raises OSError or CalledProcessError when ``ip`` refuses."""
    ip = shutil.which("ip") or "ip"
    routes = subprocess.run([ip, "route", "show", "table", "local"], capture_output=True, text=True,
                            timeout=5, check=True).stdout.splitlines()
    wanted, changed = "1" if on else "0", []
    for route in routes:
        fields = route.split()
        if fields[:1] != ["local"] or not fields[1].startswith("127."):
            continue
        if "quickack" in fields:
            at = fields.index("quickack")
            if fields[at + 1:at + 2] == [wanted]:
                continue
            del fields[at:at + 2]
        subprocess.run([ip, "route", "change", *fields, "table", "local", "quickack", wanted],
                       capture_output=True, text=True, timeout=5, check=True)
        changed.append(fields[1])
    return changed


def loopback_quickack() -> str:
    """Turn delayed ACKs off on the loopback routes, so that a Slurm client talking to a
    daemon on this host does not wait 40 ms at every reply; returns what was done.

    slurmdbd answers each request in two writes (a length, then the body) and the client
    reads them in turn; on loopback the second write waits for the ACK of the first, which
    Linux delays by 40 ms. Every sacctmgr call made about eight such round trips: 0.36 s
    for ``sacctmgr show cluster`` and 0.54 s for one ``add account``, against 0.016 s and
    0.012 s with ``quickack 1`` on the route (measured here, Slurm 22.05). The setting only
    makes this host acknowledge loopback segments at once. It needs root and iproute2;
    ``PORTAL_DEVCLUSTER_QUICKACK=0`` leaves the routes alone.
    """
    if os.environ.get(QUICKACK_SETTING, "1") == "0":
        return f"loopback routes left alone ({QUICKACK_SETTING}=0)"
    if shutil.which("ip") is None or os.geteuid() != 0:
        return "loopback routes left alone (needs root and iproute2): each sacctmgr call waits on delayed ACKs"
    try:
        changed = set_loopback_quickack(True)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"loopback routes left alone ({exc})"
    return f"quick ACKs on loopback routes {', '.join(changed)}" if changed else "quick ACKs already on loopback"


# Dev clusters take their base ports (slurmctld, slurmd, slurmdbd) from one of these slots,
# away from Slurm's default 6817-6819.
_FIRST_PORT = 17000
_PORT_SLOTS = 1000


@dataclass(frozen=True)
class Ports:
    slurmctld: int
    slurmd: int
    slurmdbd: int

    @classmethod
    def for_name(cls, name: str) -> Ports:
        # Derived from the name so a demo and a test cluster can run side by side.
        base = _FIRST_PORT + (zlib.crc32(name.encode()) % _PORT_SLOTS) * 3
        return cls(base, base + 1, base + 2)

    @property
    def slot(self) -> int:
        """Which of the slots these ports are: no two clusters on this host share one."""
        return (self.slurmctld - _FIRST_PORT) // 3 % _PORT_SLOTS

    @classmethod
    def free_for_name(cls, name: str, reserved: frozenset[int] = frozenset()) -> Ports:
        """The name's ports, or the next slot after them whose ports (every node's and
        slurmrestd's included) are all free and not ``reserved``: two names may hash to the
        same slot, and a daemon on a taken port dies with "Address already in use"."""
        first = cls.for_name(name).slot
        for step in range(_PORT_SLOTS):
            base = _FIRST_PORT + (first + step) % _PORT_SLOTS * 3
            ports = cls(base, base + 1, base + 2)
            if not reserved.intersection(ports.every_port()) and all(_port_free(port) for port in ports.every_port()):
                return ports
        raise ClusterError("no free ports for a Slurm cluster between 17000 and 31999")

    def every_port(self) -> tuple[int, ...]:
        """The base ports and every node slot up to slurmrestd's (after the last node's)."""
        return (self.slurmctld, self.slurmdbd,
                *(self.node(index) for index in range(MAX_NODES + 1)))

    def node(self, index: int) -> int:
        """The slurmd port of the index-th node (0-based); node 0 uses ``slurmd``."""
        return self.slurmd + index * _NODE_PORT_STRIDE


def _derive_name(root: Path) -> str:
    # The whole path picks the suffix: two folders named alike ("slurm" of two demos) get
    # two names, hence two sets of ports and databases.
    name = re.sub(r"[^a-z0-9]", "", root.name.lower())[:20]
    name = name if name and name[0].isalpha() else f"dev{name}"[:20]
    return f"{name}_{_path_tag(root)}"


def _path_tag(root: Path) -> str:
    return f"{zlib.crc32(str(root).encode()):08x}"


# Every cluster made on this host, with its ports: a port of a cluster that is stopped for a
# moment (a daemon restarted, `stop` then `start`) is free to bind but not free to take, or the
# cluster could not start again. Entries of folders that were destroyed go; an entry whose
# folder has no config yet is kept for a while (the config is written at start).
PORT_REGISTRY = Path(os.environ.get("PORTAL_DEVCLUSTER_PORT_REGISTRY", "/var/tmp/portal-devcluster-ports.json"))
_UNCONFIGURED_GRACE = 600.0


def _registry_update(change) -> frozenset[int]:
    """Apply ``change(entries)`` to the registry under its lock; the ports others hold."""
    PORT_REGISTRY.parent.mkdir(parents=True, exist_ok=True)
    with open(PORT_REGISTRY.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            entries = json.loads(PORT_REGISTRY.read_text()) if PORT_REGISTRY.exists() else {}
        except ValueError:  # a torn file from a crash: rebuilt from the clusters that register
            entries = {}
        now = time.time()
        entries = {root: entry for root, entry in entries.items()
                   if (Path(root) / "etc" / "slurm.conf").exists() or now - entry["since"] < _UNCONFIGURED_GRACE}
        before = json.dumps(entries, sort_keys=True)
        held = change(entries)
        if json.dumps(entries, sort_keys=True) != before or not PORT_REGISTRY.exists():
            temporary = PORT_REGISTRY.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(entries, indent=1, sort_keys=True))
            temporary.replace(PORT_REGISTRY)
        return held


def _reserve_ports(root: Path, name: str) -> Ports:
    """Free ports for a new cluster in ``root``, recorded so no later cluster takes them."""
    def change(entries: dict) -> Ports:
        reserved = frozenset(port for other, entry in entries.items() if other != str(root) for port in entry["ports"])
        ports = Ports.free_for_name(name, reserved)
        entries[str(root)] = {"ports": list(ports.every_port()), "since": time.time()}
        return ports

    return _registry_update(change)


def _note_ports(root: Path, ports: Ports) -> None:
    def change(entries: dict) -> None:
        entries.setdefault(str(root), {"ports": list(ports.every_port()), "since": time.time()})

    _registry_update(change)


def _release_ports(root: Path) -> None:
    _registry_update(lambda entries: entries.pop(str(root), None))


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _pid_alive(pid: int) -> bool:
    """True for a live process; a zombie counts as dead (PID 1 here may never reap it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    match = re.search(r"^State:\s+(\S)", status, re.M)
    return bool(match) and match.group(1) not in ("Z", "X")


def _signal(pid: int, signum: int) -> None:
    """Signal a daemon that may exit meanwhile (its end is what stopping waits for)."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} does not exist)"


class LocalCluster:
    """One Slurm cluster whose config, state, logs and munge key all live under ``root``."""

    def __init__(self, root: Path | str, name: str | None = None, *,
                 ports: Ports | None = None, gpus: int = 2,
                 db_host: str = "127.0.0.1", db_port: int = 3306,
                 nodes: int | None = None, rest: bool = False, cpus: int | None = None) -> None:
        self.root = Path(root).resolve()
        self.conf_path = self.root / "etc" / "slurm.conf"
        self.network_note = ""  # what start() did about loopback delayed ACKs
        # The name picks the database and ports, so a later `stop`/`destroy` without
        # --name must find the one the cluster was created with.
        self.cluster_name = name or self._configured_name() or _derive_name(self.root)
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", self.cluster_name):
            raise ValueError(f"cluster name {self.cluster_name!r}: use [a-z][a-z0-9_]*")
        # An existing folder keeps the ports in its config; a new one takes free ones.
        configured_ports = self._configured_ports()
        if configured_ports is not None:
            _note_ports(self.root, configured_ports)  # made before the registry, or by an older portal
        self.ports = ports or configured_ports or _reserve_ports(self.root, self.cluster_name)
        # Like the name, the node count of an existing folder is read back from its config,
        # so `stop`/`status` from another process finds every slurmd.
        configured = self._configured_nodes()
        if nodes is not None and configured is not None and nodes != configured:
            raise ValueError(f"{self.root} holds a {configured}-node cluster, not {nodes};"
                             " destroy it first")
        self.nodes = nodes or configured or 1
        if not 1 <= self.nodes <= MAX_NODES:
            raise ValueError(f"nodes={self.nodes}: use 1 to {MAX_NODES}")
        # One node keeps the historical name; several are n1..nN on the same host.
        self.node_names: tuple[str, ...] = (
            ("localhost",) if self.nodes == 1
            else tuple(f"n{i}" for i in range(1, self.nodes + 1)))
        self.gpus = gpus
        # CPUs per node as Slurm sees them: the host's by default. More than the host has
        # oversubscribes it (slurmd takes the configured count), which lets jobs that mostly
        # sleep, like the test suite's, run side by side instead of queueing for two cores.
        configured_cpus = self._configured_cpus()
        if cpus is not None and configured_cpus is not None and cpus != configured_cpus:
            raise ValueError(f"{self.root} holds a cluster of {configured_cpus} CPUs per node, not {cpus};"
                             " destroy it first")
        self.cpus = cpus or configured_cpus or os.cpu_count() or 1
        # slurmrestd with JWT (the rest adapter's server): asked for, or how the folder was made.
        self.rest = restd.configured(self.conf_path)
        if rest and not self.rest and self.conf_path.exists():
            raise ValueError(f"{self.root} was created without slurmrestd/JWT; destroy it first")
        self.rest = self.rest or rest
        self.db_host, self.db_port = db_host, db_port
        # The database and its user belong to this folder alone (the path's tag in their
        # names): another folder with the same cluster name never resets this one's password
        # nor drops its database. An existing folder keeps those its config names.
        tag = _path_tag(self.root)
        self.db_name, self.db_user = self._configured_database() or (
            f"slurm_acct_{self.cluster_name}_{tag}", f"slurm_{self.cluster_name[:16]}_{tag}")
        self.munge_socket = self.root / "munge" / "run" / "munge.socket"
        self.jobs_dir = self.root / "jobs"

    # ---- public API -------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """Environment variables a Slurm client needs to talk to this cluster."""
        return {"SLURM_CONF": str(self.conf_path)}

    @property
    def rest_url(self) -> str:
        """slurmrestd's address: the port after the last node's, distinct per cluster name."""
        return f"http://127.0.0.1:{self.ports.node(MAX_NODES)}"

    def token(self, user: str, lifespan: int = 3600) -> str:
        """A JWT for ``user`` from ``scontrol token`` (needs a cluster started with rest)."""
        return restd.token(self.env, user, lifespan)

    @staticmethod
    def install_packages() -> None:
        if all(shutil.which(p) or Path("/usr/sbin", p).exists()
               for p in ("slurmctld", "slurmdbd", "munged", "slurmrestd")) and restd.JWT_PLUGIN.exists():
            return
        apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update"], check=True, env=apt_env)
        subprocess.run(["apt-get", "install", "-y", "slurm-wlm", "slurmdbd", "munge", "slurmrestd",
                        "slurm-wlm-jwt-plugin"],
                       check=True, env=apt_env)

    def start(self, timeout: float = 60) -> None:
        """Start whatever is not running and wait until every node is usable (idempotent)."""
        deadline = time.monotonic() + timeout
        self.network_note = loopback_quickack()
        if not self.conf_path.exists() or not self._db_exists():
            self._write_config()
        else:
            self._create_database()  # idempotent; re-asserts this folder's database password
        for daemon in self.daemons:
            self.start_daemon(daemon, deadline=deadline)
        self._wait_node_ready(deadline)

    def stop(self, timeout: float = 30) -> None:
        """Stop every daemon, then end the jobs that were still running: without cgroups each
        slurmstepd outlives its slurmd, and a job left running (an MPI rank spinning in a
        receive) would go on taking the host's CPUs long after its cluster is gone."""
        for daemon in reversed(self.daemons):
            self.stop_daemon(daemon, timeout=timeout)
        self._kill_leftover_jobs()

    def _kill_leftover_jobs(self) -> None:
        """SIGKILL every process of this cluster's jobs: each slurmstepd (it works in our log
        folder) and each job process (a job id, and our config as ``SLURM_CONF``; a shell that
        merely sourced the cluster's env.sh has no job id and is left alone)."""
        conf = f"SLURM_CONF={self.root / 'etc' / 'slurm.conf'}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if (entry / "comm").read_text().strip() == "slurmstepd":
                    ours = os.readlink(entry / "cwd").startswith(str(self.root) + "/")
                else:
                    environment = (entry / "environ").read_bytes().split(b"\0")
                    ours = conf in environment and any(v.startswith(b"SLURM_JOB_ID=") for v in environment)
            except OSError:  # gone meanwhile, or a kernel thread
                continue
            if ours:
                _signal(int(entry.name), signal.SIGKILL)

    def destroy(self) -> None:
        self.stop()
        self._mysql(f"DROP DATABASE IF EXISTS `{self.db_name}`")
        self._mysql(f"DROP USER IF EXISTS '{self.db_user}'@'localhost'",
                    f"DROP USER IF EXISTS '{self.db_user}'@'127.0.0.1'")
        shutil.rmtree(self.root, ignore_errors=True)
        _release_ports(self.root)

    @property
    def daemons(self) -> tuple[str, ...]:
        """Every daemon in start order: one ``slurmd``, or ``slurmd-n1``.. per node."""
        rest = ("slurmrestd",) if self.rest else ()
        if self.nodes == 1:
            return DAEMONS + rest
        return DAEMONS[:-1] + tuple(f"slurmd-{node}" for node in self.node_names) + rest

    def is_running(self) -> bool:
        return all(self.daemon_pid(d) is not None for d in self.daemons)

    def status(self) -> dict[str, int | None]:
        return {d: self.daemon_pid(d) for d in self.daemons}

    def _expand(self, daemon: str) -> tuple[str, ...]:
        """``slurmd`` on a multi-node cluster means every node's slurmd."""
        if daemon == "slurmd" and self.nodes > 1:
            return tuple(d for d in self.daemons if d.startswith("slurmd-"))
        if daemon not in self.daemons:
            raise ValueError(f"unknown daemon {daemon!r}; this cluster has {self.daemons}")
        return (daemon,)

    def daemon_pid(self, daemon: str) -> int | None:
        """The PID of a running daemon (a name from ``daemons``), or None (a stale pid
        file is ignored)."""
        if daemon == "slurmd" and self.nodes > 1:
            raise ValueError(f"{self.nodes} nodes: ask for one of {self.daemons[3:]}")
        try:
            pid = int((self.root / "run" / f"{daemon}.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if _pid_alive(pid) else None

    def start_daemon(self, daemon: str, *, timeout: float = 60,
                     deadline: float | None = None) -> None:
        """Start one daemon from ``daemons`` (``slurmd``: every node's) unless running."""
        deadline = deadline or time.monotonic() + timeout
        for name in self._expand(daemon):
            if self.daemon_pid(name) is not None:
                continue
            if name.startswith("slurmd-"):
                self._start_slurmd(name.removeprefix("slurmd-"))
            else:
                getattr(self, f"_start_{name}")()
            self._wait_daemon_ready(name, deadline)

    def stop_daemon(self, daemon: str, timeout: float = 30) -> None:
        """Stop one daemon from ``daemons`` (``slurmd``: every node's)."""
        for name in self._expand(daemon):
            self._stop_one(name, timeout)

    def _stop_one(self, daemon: str, timeout: float) -> None:
        pid = self.daemon_pid(daemon)
        if pid is None:
            return
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid):
            if time.monotonic() > deadline:
                _signal(pid, signal.SIGKILL)
                deadline = time.monotonic() + 5
            time.sleep(0.1)
        (self.root / "run" / f"{daemon}.pid").unlink(missing_ok=True)

    def log_tail(self, daemon: str, lines: int = 25) -> str:
        return "\n".join(
            _tail(self.root / "log" / _LOGS.get(name, f"{name}.log"), lines) + "\n"
            + _tail(self.root / "log" / f"{name}.stderr", lines)
            for name in self._expand(daemon))

    @staticmethod
    def ensure_unix_user(name: str) -> str:
        """Create a Unix user with a home folder if missing, so jobs can run as them."""
        if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", name):
            raise ValueError(f"invalid Unix user name {name!r}")
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True,
                           capture_output=True, text=True)
        return name

    # ---- configuration -----------------------------------------------------------------
    def _configured_nodes(self) -> int | None:
        try:
            text = self.conf_path.read_text()
        except FileNotFoundError:
            return None
        return len(re.findall(r"^NodeName=", text, re.MULTILINE)) or None

    def _configured_cpus(self) -> int | None:
        try:
            match = re.search(r"^NodeName=.* CPUs=(\d+)", self.conf_path.read_text(), re.M)
        except FileNotFoundError:
            return None
        return int(match.group(1)) if match else None

    def _configured_ports(self) -> Ports | None:
        try:
            text = self.conf_path.read_text()
        except FileNotFoundError:
            return None
        found = [re.search(rf"^{key}=(\d+)", text, re.M)
                 for key in ("SlurmctldPort", "SlurmdPort", "AccountingStoragePort")]
        return Ports(*(int(m.group(1)) for m in found)) if all(found) else None

    def _configured_database(self) -> tuple[str, str] | None:
        try:
            text = (self.root / "etc" / "slurmdbd.conf").read_text()
        except FileNotFoundError:
            return None
        found = [re.search(rf"^{key}=(\S+)", text, re.M) for key in ("StorageLoc", "StorageUser")]
        return (found[0].group(1), found[1].group(1)) if all(found) else None

    def _configured_name(self) -> str | None:
        try:
            match = re.search(r"^ClusterName=(\S+)", self.conf_path.read_text(), re.M)
        except FileNotFoundError:
            return None
        return match.group(1) if match else None

    def _write_config(self) -> None:
        state = self.root / "state"
        new_cluster = not state.is_dir() or not any(state.iterdir())
        for sub in ("etc", "state", "spool", "log", "run", "dev", "munge/run", "munge/lib"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        # Jobs run as ordinary users: they must reach the munge socket and a work folder.
        self.root.chmod(0o755)
        for sub in ("munge", "munge/run"):
            (self.root / sub).chmod(0o755)
        self.jobs_dir.mkdir(exist_ok=True)
        self.jobs_dir.chmod(0o1777)
        # PMIx puts each job step's client folder under TmpFS, named by job and step id only: in a
        # shared /tmp, two slurmstepd of one step (two nodes) or job 4 of two clusters on this host
        # (two demos) collide and srun's launch fails. So every node of every cluster has its own.
        # Jobs of any user write there.
        tmp_dirs = [self.root / "tmp"] if self.nodes == 1 else [self.root / "tmp" / n for n in self.node_names]
        for tmp in tmp_dirs:
            tmp.mkdir(parents=True, exist_ok=True)
            tmp.chmod(0o1777)
        if self.nodes > 1:
            for node in self.node_names:
                (self.root / "spool" / node).mkdir(exist_ok=True)
        for index in range(self.gpus):
            fake = self.root / "dev" / f"gpu{index}"
            if not fake.is_symlink():
                fake.symlink_to("/dev/null")
        values = {
            "cluster_name": self.cluster_name, "root": str(self.root),
            "ctld_port": self.ports.slurmctld, "slurmd_port": self.ports.slurmd,
            "dbd_port": self.ports.slurmdbd, "munge_socket": str(self.munge_socket),
            "cpus": self.cpus, "real_memory": self._real_memory_mb(),
            # Job ids name what jobs share on a host: PMIx namespaces and Open MPI's shared-memory
            # files in /dev/shm ("slurm.pmix.4.0"). Two clusters on one host (two demos, a demo
            # beside the test cluster) both running job 4 corrupt each other's MPI messages, so
            # every cluster numbers its jobs from its own base (its port slot is unique here).
            "first_job_id": self.ports.slot * 10_000 + 1,
            # Without config_overrides a slurmd with fewer cores than configured drains its node.
            "slurmd_parameters": ("SlurmdParameters=config_overrides" if self.cpus > (os.cpu_count() or 1)
                                  else "# CPUs as the host has them"),
            "gpus": self.gpus, "last_gpu": self.gpus - 1, "db_host": self.db_host, "db_port": self.db_port,
            "db_user": self.db_user, "db_password": self._db_password(),
            "db_name": self.db_name, **self._node_values(),
            "auth_alt": restd.auth_alt_lines(self.root) if self.rest else "# no slurmrestd: munge only",
        }
        if self.rest:
            restd.make_key(self.root)
        if new_cluster:
            # A new controller numbers jobs from FirstJobId again: accounting left by an earlier
            # cluster at this path (its folder removed without destroy()) holds records of the
            # same job ids, and sacct would answer two jobs for one.
            self._mysql(f"DROP DATABASE IF EXISTS `{self.db_name}`")
        for name in ("slurm.conf", "slurmdbd.conf", "gres.conf"):
            template = resources.files(__package__).joinpath("templates", name).read_text()
            path = self.root / "etc" / name
            path.write_text(string.Template(template).substitute(values))
            path.chmod(0o600 if name == "slurmdbd.conf" else 0o644)
        self._create_database()

    def _node_values(self) -> dict[str, str | int]:
        """Template values for the slurmd paths, the NodeName lines and the node list."""
        cpus, memory = self.cpus, self._real_memory_mb()
        lines = []
        for index, node in enumerate(self.node_names):
            port = f" Port={self.ports.node(index)}" if self.nodes > 1 else ""
            lines.append(f"NodeName={node} NodeHostname=localhost NodeAddr=127.0.0.1{port}"
                         f" CPUs={cpus} RealMemory={memory} Gres=gpu:{self.gpus}"
                         " State=UNKNOWN")
        root = self.root
        if self.nodes == 1:
            return {"slurmd_spool_dir": f"{root}/spool",
                    "slurmd_pid_file": f"{root}/run/slurmd.pid",
                    "slurmd_log_file": f"{root}/log/slurmd.log",
                    "tmp_fs": f"TmpFS={root}/tmp",
                    "node_lines": "\n".join(lines), "node_list": "localhost", "nodes": 1}
        # %n is the node name, so every slurmd gets its own files (MULTIPLE_SLURMD).
        return {"slurmd_spool_dir": f"{root}/spool/%n",
                "slurmd_pid_file": f"{root}/run/slurmd-%n.pid",
                "slurmd_log_file": f"{root}/log/slurmd-%n.log",
                "tmp_fs": f"TmpFS={root}/tmp/%n",
                "node_lines": "\n".join(lines), "node_list": f"n[1-{self.nodes}]",
                "nodes": self.nodes}

    @staticmethod
    def _real_memory_mb() -> int:
        total_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])
        # Leave room for the host; two clusters may share the machine.
        return max(500, min(total_kb // 1024 // 4, 8000))

    def _db_password(self) -> str:
        return f"pw{zlib.crc32(str(self.root).encode()):08x}"

    def _mysql(self, *statements: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["mysql", "-h", self.db_host, "-P", str(self.db_port), "-u", "root",
             "-e", "; ".join(statements)],
            check=True, capture_output=True, text=True)

    def _db_exists(self) -> bool:
        out = self._mysql(f"SHOW DATABASES LIKE '{self.db_name}'").stdout
        return self.db_name in out

    def _create_database(self) -> None:
        statements = [f"CREATE DATABASE IF NOT EXISTS `{self.db_name}`"]
        for host in ("localhost", "127.0.0.1"):
            statements += [
                f"CREATE USER IF NOT EXISTS '{self.db_user}'@'{host}'"
                f" IDENTIFIED BY '{self._db_password()}'",
                # The user may exist from an earlier folder at this path (destroyed without
                # MariaDB, or moved): set this folder's password every time.
                f"ALTER USER '{self.db_user}'@'{host}' IDENTIFIED BY '{self._db_password()}'",
                f"GRANT ALL ON `{self.db_name}`.* TO '{self.db_user}'@'{host}'",
            ]
        self._mysql(*statements)

    # ---- daemons -----------------------------------------------------------------------
    def _launch(self, daemon: str, argv: list[str]) -> None:
        """Run a self-daemonizing program; its early errors land in log/<daemon>.stderr."""
        env = {**os.environ, **self.env}
        with open(self.root / "log" / f"{daemon}.stderr", "ab") as err:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                  env=env, start_new_session=True, check=False)
        if proc.returncode != 0:
            raise ClusterError(f"{daemon} exited with {proc.returncode}\n"
                               + self.log_tail(daemon))

    def _start_munged(self) -> None:
        key = self.root / "munge" / "munge.key"
        if not key.exists():
            subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True,
                           capture_output=True, text=True)
            key.chmod(0o600)
        self._launch("munged", [
            "munged", f"--socket={self.munge_socket}", f"--key-file={key}",
            f"--pid-file={self.root / 'run' / 'munged.pid'}",
            f"--log-file={self.root / 'log' / 'munged.log'}",
            f"--seed-file={self.root / 'munge' / 'lib' / 'munged.seed'}", "--force",
        ])

    def _start_slurmdbd(self) -> None:
        self._launch("slurmdbd", ["slurmdbd"])

    def _start_slurmctld(self) -> None:
        self._launch("slurmctld", ["slurmctld", "-f", str(self.conf_path)])

    def _start_slurmd(self, node: str = "localhost") -> None:
        daemon = "slurmd" if self.nodes == 1 else f"slurmd-{node}"
        self._launch(daemon, ["slurmd", "-N", node, "-f", str(self.conf_path)])

    def _start_slurmrestd(self) -> None:
        restd.launch(self.root, self.conf_path, self.ports.node(MAX_NODES), {**os.environ, **self.env})

    def _client(self, argv: list[str], stdin: str | None = None,
                ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True,
                              env={**os.environ, **self.env}, timeout=15, check=False)

    def _daemon_ready(self, daemon: str) -> bool:
        if daemon == "munged":
            cred = self._client(["munge", "-S", str(self.munge_socket), "-n"])
            return cred.returncode == 0 and self._client(
                ["unmunge", "-S", str(self.munge_socket)], stdin=cred.stdout).returncode == 0
        if daemon == "slurmdbd":
            return self._client(["sacctmgr", "-n", "show", "cluster"]).returncode == 0
        if daemon == "slurmctld":
            return self._client(["scontrol", "ping"]).stdout.count("UP") > 0
        if daemon == "slurmrestd":
            with socket.socket() as probe:
                probe.settimeout(1)
                return probe.connect_ex(("127.0.0.1", self.ports.node(MAX_NODES))) == 0
        return True  # slurmd readiness is the node state, checked by _wait_node_ready

    def _wait_daemon_ready(self, daemon: str, deadline: float) -> None:
        while True:
            # The pid file appears a moment after the parent returns.
            alive = self.daemon_pid(daemon) is not None
            try:
                if alive and self._daemon_ready(daemon):
                    return
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                state = "is not ready" if alive else "did not start or died"
                raise ClusterError(f"{daemon} {state} in {self.root}\n{self.log_tail(daemon)}")
            time.sleep(0.3)

    def _node_states(self) -> dict[str, str]:
        out = self._client(["sinfo", "-h", "-N", "-n", ",".join(self.node_names),
                            "-o", "%N %t"]).stdout
        # One line per node and partition; the same node has the same state in each.
        return dict(line.split()[:2] for line in out.splitlines() if len(line.split()) >= 2)

    def _wait_node_ready(self, deadline: float) -> None:
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            for daemon in self.daemons:
                if self.daemon_pid(daemon) is None:
                    raise ClusterError(f"{daemon} died\n{self.log_tail(daemon)}")
            states = self._node_states()
            # A suffix such as "idle*" means not responding: only the bare state counts.
            if all(states.get(n) in _READY_NODE_STATES for n in self.node_names):
                return
            if any(s.startswith(("inval", "drain")) for s in states.values()):
                break
            time.sleep(0.3)
        bad = ", ".join(f"{n} is {states.get(n, 'unknown')!r}" for n in self.node_names
                        if states.get(n) not in _READY_NODE_STATES)
        raise ClusterError(f"node {bad}, not idle\n"
                           + self.log_tail("slurmd") + "\n" + self.log_tail("slurmctld"))
