#!/usr/bin/env bash
# Sets up and runs the portal with demo data against a local single-host Slurm cluster.
#
# Any number of demos run side by side, and beside `make test`: each has its own folder
# (PORTAL_DEMO_DIR, default .devdata, else the next free .devdata/demo-N), and the folder picks
# the Slurm cluster's name, hence its ports and its MariaDB database and user. The web server
# takes PORT, else 5000, else a free port.
set -euo pipefail
cd "$(dirname "$0")/.."
# One setup at a time: two demos (or a demo and `make test`) must not run pip in one .venv at once.
flock scripts/setup.sh scripts/setup.sh

HOST="${HOST:-127.0.0.1}"
# A folder serves one demo at a time (a lock held while this script runs): without
# PORTAL_DEMO_DIR a second demo takes .devdata/demo-2, a third .devdata/demo-3, ...
DEMO_DIR="$(realpath -m "${PORTAL_DEMO_DIR:-$PWD/.devdata}")"
for n in $(seq 2 100); do
  mkdir -p "$DEMO_DIR"
  exec 9>>"$DEMO_DIR/demo.lock"
  flock -n 9 && break
  if [ -n "${PORTAL_DEMO_DIR:-}" ]; then
    echo "A demo is already running in $DEMO_DIR; give another PORTAL_DEMO_DIR." >&2
    exit 1
  fi
  DEMO_DIR="$(realpath -m "$PWD/.devdata/demo-$n")"
done
flock -n 9 || { echo "No free demo folder under .devdata" >&2; exit 1; }
SLURM_DIR="$DEMO_DIR/slurm"
SLURM_CONF="$SLURM_DIR/etc/slurm.conf"
export PORTAL_INSTANCE_PATH="$DEMO_DIR/instance"
export FLASK_APP=portal

# A folder made before keeps its cluster name; a new one is named after its path (or
# PORTAL_DEMO_NAME), never a fixed name that another demo's cluster already uses.
if [ -f "$SLURM_CONF" ]; then
  CLUSTER="$(sed -n 's/^ClusterName=//p' "$SLURM_CONF")"
else
  CLUSTER="${PORTAL_DEMO_NAME:-demo_$(printf '%s' "$DEMO_DIR" | cksum | cut -d' ' -f1)}"
fi

echo "==> Starting the local Slurm cluster $CLUSTER in $SLURM_DIR"
.venv/bin/python -m portal.devcluster start --dir "$SLURM_DIR" --name "$CLUSTER"

# The demo's e-mail goes to a local SMTP sink, never out: staff read what was sent at /mail/caught.
MAIL_PORT="$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export PORTAL_SMTP_HOST=127.0.0.1 PORTAL_SMTP_PORT="$MAIL_PORT"
echo "==> Catching the demo's mail on 127.0.0.1:$MAIL_PORT (flask demo mail-sink)"
.venv/bin/flask demo mail-sink --port "$MAIL_PORT" &
SINK_PID=$!
trap 'kill -TERM "$SINK_PID" 2>/dev/null || true' EXIT

echo "==> Building the database (${DATABASE_URL:-SQLite in $PORTAL_INSTANCE_PATH})"
.venv/bin/flask db upgrade
.venv/bin/flask demo seed --cluster "$CLUSTER" --slurm-conf "$SLURM_CONF"

echo "==> Starting the reconciler service (flask slurm run): it applies changes to Slurm, keeps job states,"
echo "    usage and mail up to date"
.venv/bin/flask slurm run &
SERVICE_PID=$!
trap 'kill -TERM "$SERVICE_PID" "$SINK_PID" 2>/dev/null || true; wait "$SERVICE_PID" "$SINK_PID" 2>/dev/null || true' EXIT

# The port is bound here and handed to gunicorn as an open socket (fd://): probing for a free
# port and binding it later let two demos started at once both pick 5000. PORT, else 5000 when
# free, else a free port the system picks.
.venv/bin/python - "$HOST" "${PORT:-}" "$SLURM_DIR" <<'EOF'
import os, socket, sys
host, wanted, slurm_dir = sys.argv[1:]
for port in ([int(wanted)] if wanted else [5000, 0]):
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        if wanted:
            sys.exit(f"Cannot serve on {host}:{wanted}: {error.strerror}")
        continue
    break
listener.listen(2048)
listener.set_inheritable(True)
print(f"\nThe portal is at http://{host}:{listener.getsockname()[1]}/  (stop with Ctrl-C; stop Slurm with:\n"
      f"  .venv/bin/python -m portal.devcluster stop --dir {slurm_dir})", flush=True)
gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
os.execv(gunicorn, [gunicorn, "--workers", "2", "--bind", f"fd://{listener.fileno()}",
                    "--no-control-socket", "--access-logfile", "-", "portal:create_app()"])
EOF
