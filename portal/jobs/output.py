"""Reading the end of a job's output file, as the portal, without following anyone's links.

The job's folder belongs to the job's user, who could swap a file or the folder itself for
a symbolic link to something only the portal may read. So every step from the configured
root is opened with O_NOFOLLOW relative to the previous one, and only regular files are read.
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from portal.jobs.models import SubmittedJob
from portal.jobs.operations import workdir_root

TAIL_BYTES = 16 * 1024
_OUTPUT_NAME = re.compile(r"slurm-[0-9]+(_[0-9]+)?\.out")


def _open_dir_at(parent_fd: int, name: str) -> int:
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)


def output_tails(job: SubmittedJob, max_bytes: int = TAIL_BYTES) -> list[tuple[str, str]]:
    """(file name, last bytes as text) for the job's output file(s); empty if none yet."""
    root = workdir_root().resolve()
    folder = Path(job.workdir)
    if folder.parent.resolve() != root or folder.name != job.unix_user:
        return []  # the stored folder is not where the portal puts jobs (root moved): read nothing
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return []
    try:
        user_fd = _open_dir_at(root_fd, job.unix_user)
    except OSError:
        os.close(root_fd)
        return []
    try:
        names = sorted(n for n in os.listdir(user_fd) if _OUTPUT_NAME.fullmatch(n)
                       and (n == f"slurm-{job.slurm_job_id}.out" or n.startswith(f"slurm-{job.slurm_job_id}_")))
        return [(name, text) for name in names if (text := _tail_at(user_fd, name, max_bytes)) is not None]
    finally:
        os.close(user_fd)
        os.close(root_fd)


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
