#!/usr/bin/env bash
# Sets up and runs the whole test suite: real PostgreSQL, a real local Slurm cluster, MPI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
