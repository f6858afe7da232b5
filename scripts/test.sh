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
exec .venv/bin/python -m pytest "$@"
