"""One error family for everything that can go wrong at the scheduler boundary."""
from __future__ import annotations


class SchedulerError(Exception):
    """Base class: the scheduler could not do what was asked."""


class SchedulerUnreachable(SchedulerError):
    """The scheduler (controller, database daemon or client tools) cannot be reached."""


class SchedulerCommandFailed(SchedulerError):
    """A scheduler command ran and refused; ``stderr`` says why."""

    def __init__(self, command: list[str], returncode: int, stderr: str) -> None:
        self.command = list(command)
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"{command[0]} exited with {returncode}: {stderr.strip()}")


class InvalidName(SchedulerError, ValueError):
    """A name or value was refused before any command ran."""
