#!/usr/bin/env bash
# Sets up and runs the whole test suite: real PostgreSQL, a real local Slurm cluster, MPI.
set -euo pipefail
cd "$(dirname "$0")/.."
# One setup at a time: a demo starting meanwhile must not run pip in the same .venv.
flock scripts/setup.sh scripts/setup.sh
if [ "$#" -eq 0 ]; then
    # The whole suite starts with the linters (configured in pyproject.toml and setup.cfg).
    .venv/bin/ruff check portal tests bench mpi_examples migrations slurm_templates
    .venv/bin/mypy
fi
if [ "$#" -eq 0 ]; then
    # Most of the suite's time is spent waiting (on Slurm, a browser, a subprocess), so twice as
    # many workers as cores; every worker has its own PostgreSQL database and shares the Slurm
    # cluster (portal/devcluster/pytest_plugin.py). PORTAL_TEST_WORKERS=0 runs in one process.
    # Tests go out one at a time as workers free up (--maxschedchunk 1): the long ones, which
    # come first, spread over the workers instead of queueing behind each other on one.
    exec .venv/bin/python -m pytest -n "${PORTAL_TEST_WORKERS:-$(( $(nproc) * 2 ))}" --dist load --maxschedchunk 1
fi
exec .venv/bin/python -m pytest "$@"
