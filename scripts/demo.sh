#!/usr/bin/env bash
# Sets up and runs the portal with demo data against a local single-host Slurm cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

PORT="${PORT:-5000}"
HOST="${HOST:-127.0.0.1}"
DEMO_DIR="${PORTAL_DEMO_DIR:-$PWD/.devdata}"
export PORTAL_INSTANCE_PATH="$DEMO_DIR/instance"
export FLASK_APP=portal

echo "==> Starting the local Slurm cluster in $DEMO_DIR/slurm"
.venv/bin/python -m portal.devcluster start --dir "$DEMO_DIR/slurm" --name portaldemo
SLURM_CONF="$DEMO_DIR/slurm/etc/slurm.conf"

echo "==> Building the database (${DATABASE_URL:-SQLite in $PORTAL_INSTANCE_PATH})"
.venv/bin/flask db upgrade
.venv/bin/flask demo seed --cluster portaldemo --slurm-conf "$SLURM_CONF"

echo "==> Starting the reconciler service (flask slurm run): it applies changes to Slurm, keeps job states,"
echo "    usage and mail up to date"
.venv/bin/flask slurm run &
SERVICE_PID=$!
trap 'kill -TERM "$SERVICE_PID" 2>/dev/null || true; wait "$SERVICE_PID" 2>/dev/null || true' EXIT

echo
echo "The portal is at http://$HOST:$PORT/  (stop with Ctrl-C; stop Slurm with:"
echo "  .venv/bin/python -m portal.devcluster stop --dir $DEMO_DIR/slurm)"
.venv/bin/gunicorn --workers 2 --bind "$HOST:$PORT" --no-control-socket --access-logfile - "portal:create_app()"
