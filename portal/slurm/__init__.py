"""The scheduler boundary: value objects, the Scheduler port, and adapters chosen by name.

    scheduler = make_scheduler("cli", slurm_conf="/etc/slurm/slurm.conf")
"""
from __future__ import annotations

import importlib
from typing import Any

from portal.slurm.base import Scheduler
from portal.slurm.errors import InvalidName, SchedulerCommandFailed, SchedulerError, SchedulerUnreachable
from portal.slurm.types import AccountInfo, AssociationInfo, JobRequest, JobState, JobStatus, PartitionInfo, UsageRecord, job_state_from_slurm

# Adapters are named as "module:Class" and imported on first use, so an adapter with heavy
# or optional dependencies costs nothing until configuration asks for it.
_ADAPTERS: dict[str, type[Scheduler] | str] = {"cli": "portal.slurm.commandline:CliScheduler",
                                               "rest": "portal.slurm.rest:RestScheduler"}


def register_adapter(name: str, cls: type[Scheduler] | str) -> None:
    _ADAPTERS[name] = cls


def make_scheduler(adapter: str = "cli", **options: Any) -> Scheduler:
    try:
        cls = _ADAPTERS[adapter]
    except KeyError:
        raise SchedulerError(f"unknown scheduler adapter {adapter!r};"
                             f" known: {', '.join(sorted(_ADAPTERS))}") from None
    if isinstance(cls, str):
        module, _, attr = cls.partition(":")
        cls = _ADAPTERS[adapter] = getattr(importlib.import_module(module), attr)
    return cls(**options)


__all__ = [
    "AccountInfo", "AssociationInfo", "InvalidName", "JobRequest", "JobState", "JobStatus",
    "PartitionInfo", "Scheduler", "SchedulerCommandFailed", "SchedulerError",
    "SchedulerUnreachable", "UsageRecord", "job_state_from_slurm", "make_scheduler",
    "register_adapter",
]
