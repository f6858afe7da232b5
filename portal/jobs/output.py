"""Reading the end of a job's output and error files, as the portal, without following anyone's links.

The job's folder belongs to the job's user, who could swap a file or a folder for a symbolic
link to something only the portal may read. So every step from the configured root is
opened with O_NOFOLLOW relative to the previous one, and only regular files are read.

Where the files are comes from the job's own ``#SBATCH --output`` / ``--error`` lines (the
portal wrote them from validated values); only files inside the user's job folder are read.
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import NamedTuple

from portal.jobs.models import SubmittedJob
from portal.jobs.operations import workdir_root

TAIL_BYTES = 16 * 1024
_SBATCH_FILE = re.compile(r"#SBATCH\s+--(output|error)[= ]\s*(\S+)\s*")
_SPECIFIER = re.compile(r"%(\d*)([%AajxuJ])|%")


class Tail(NamedTuple):
    file: str  # relative to the user's job folder
    stream: str  # "output" or "error"
    text: str


def _header(script: str) -> dict[str, str]:
    """--output and --error as the script's #SBATCH header sets them (sbatch stops at the first command)."""
    found: dict[str, str] = {}
    for line in script.splitlines()[1:]:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        match = _SBATCH_FILE.fullmatch(stripped)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def name_pattern(job: SubmittedJob, name: str) -> re.Pattern[str] | None:
    """A file name with Slurm's %-specifiers as a pattern for this job's files; None for
    specifiers that name something the portal does not know (a node, a step)."""
    parts, last = [], 0
    for match in _SPECIFIER.finditer(name):
        parts.append(re.escape(name[last:match.start()]))
        last = match.end()
        letter = match.group(2)
        if letter is None:
            return None
        parts.append({"%": "%", "A": re.escape(job.slurm_job_id), "j": re.escape(job.slurm_job_id),
                      "J": re.escape(job.slurm_job_id), "a": r"[0-9]+", "x": re.escape(job.job_name or ""),
                      "u": re.escape(job.unix_user or "")}[letter])
    parts.append(re.escape(name[last:]))
    return re.compile("".join(parts))


def _places(job: SubmittedJob) -> list[tuple[str, list[str], re.Pattern[str]]]:
    """(stream, folders below the user's job folder, file name pattern) for output and error."""
    header = _header(job.script or "")
    header.setdefault("output", f"{job.workdir}/slurm-%j.out")
    places = []
    for stream in ("output", "error"):
        path = header.get(stream)
        if path is None or (stream == "error" and path == header["output"]):
            continue
        if not path.startswith(job.workdir + "/"):
            continue  # outside the user's job folder: not the portal's to read
        *folders, name = path[len(job.workdir) + 1:].split("/")
        pattern = name_pattern(job, name)
        if pattern is not None and not any(f in ("", ".", "..") or "%" in f for f in folders):
            places.append((stream, folders, pattern))
    return places


def _open_dir_at(parent_fd: int, name: str) -> int:
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)


def output_tails(job: SubmittedJob, max_bytes: int = TAIL_BYTES) -> list[Tail]:
    """The last bytes of the job's output file(s), then of its error file(s); empty if none yet."""
    root = workdir_root().resolve()
    folder = Path(job.workdir)
    if folder.parent.resolve() != root or folder.name != job.unix_user:
        return []  # the stored folder is not where the portal puts jobs (root moved): read nothing
    tails: list[Tail] = []
    for stream, folders, pattern in _places(job):
        try:
            fds = [os.open(root, os.O_RDONLY | os.O_DIRECTORY)]
        except OSError:
            return []
        try:
            for name in [job.unix_user, *folders]:
                fds.append(_open_dir_at(fds[-1], name))
            names = sorted(n for n in os.listdir(fds[-1]) if pattern.fullmatch(n))
            prefix = "".join(f"{f}/" for f in folders)
            tails += [Tail(prefix + name, stream, text) for name in names
                      if (text := _tail_at(fds[-1], name, max_bytes)) is not None]
        except OSError:
            continue
        finally:
            for fd in fds:
                os.close(fd)
    return tails


def _tail_at(dir_fd: int, name: str, max_bytes: int) -> str | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        os.lseek(fd, max(0, info.st_size - max_bytes), os.SEEK_SET)
        data = os.read(fd, max_bytes)
    finally:
        os.close(fd)
    return data.decode("utf-8", errors="replace")
