"""Folders the portal reads at run time that live beside the package in a checkout.

``migrations/``, ``slurm_templates/`` and ``mpi_examples/`` stay at the top of the repository
(operators read and extend them there). setup.py ships the first two inside the wheel as
``portal/_migrations`` and ``portal/_slurm_templates``; ``mpi_examples`` is a package of its
own. Job scripts name these folders on the compute nodes, so they must be real folders,
never a path inside a zip.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

# The folders setup.py maps into the package, by their name in the checkout.
BESIDE_PACKAGE = ("migrations", "slurm_templates")


def shipped_folder(name: str) -> Path:
    """The folder ``name`` (``migrations``, ``slurm_templates``, ``mpi_examples/references``):
    inside the installed package when installed from a wheel, else the checkout's own."""
    top, _, rest = name.partition("/")
    if top in BESIDE_PACKAGE:
        package = _folder(resources.files("portal"))
        installed = package / f"_{top}"
        # From a checkout (plain or editable install) there is no portal/_<name>: the folder
        # is the repository's own, where edits take effect at once.
        base = installed if installed.is_dir() else package.parent / top
    else:
        base = _folder(resources.files(top))
    folder = base / rest if rest else base
    if not folder.is_dir():
        raise FileNotFoundError(f"{name}: {folder} is missing from this installation")
    return folder


def _folder(traversable: object) -> Path:
    if not isinstance(traversable, Path):
        raise RuntimeError(f"the portal must be installed as files, not in an archive ({traversable})")
    return traversable
