"""The package list, beside setup.cfg (which holds everything else).

``migrations/`` and ``slurm_templates/`` stay at the top of the repository, where operators
read and extend them, yet the portal needs them once installed: they are shipped inside the
package as ``portal._migrations`` and ``portal._slurm_templates`` (found by
``portal.shipped.shipped_folder``). setup.cfg's ``packages = find:`` cannot add packages from
other folders, hence this file.
"""
from setuptools import find_packages, setup

BESIDE_PACKAGE = {"portal._migrations": "migrations", "portal._slurm_templates": "slurm_templates"}

setup(
    packages=find_packages(include=["portal", "portal.*", "mpi_examples", "mpi_examples.*"])
    + list(BESIDE_PACKAGE),
    package_dir=BESIDE_PACKAGE,
)
