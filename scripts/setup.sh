#!/usr/bin/env bash
# Installs what the portal and its tests need on a fresh Debian 12 machine; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(slurm-wlm slurmdbd slurmrestd slurm-wlm-jwt-plugin munge openmpi-bin libopenmpi-dev python3-venv python3-dev chromium wrk iproute2)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> Installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# PostgreSQL and MariaDB are started before the session on this kind of machine; start them if
# one has stopped (slurmdbd keeps Slurm's accounting in MariaDB).
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "==> Starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
if ! mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
  echo "==> Starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 30); do mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1 && break; sleep 1; done
fi

# The virtual environment is made from Debian's Python so that jobs running as other Unix
# users (under Slurm) can read it; a Python under /root cannot be read by them.
if [ ! -x .venv/bin/python ]; then
  echo "==> Creating .venv"
  /usr/bin/python3 -m venv .venv
fi
# Jobs run as other Unix users (the Slurm tests, job templates) and must reach .venv/bin/python.
if [ "$(id -u)" -eq 0 ] && ! runuser -u nobody -- test -x "$PWD/.venv/bin/python"; then
  if [ "${CI:-}" = "true" ]; then
    echo "==> Letting other users traverse the folders down to $PWD (CI only)"
    d="$PWD"; while [ "$d" != "/" ]; do chmod o+x "$d"; d="$(dirname "$d")"; done
  else
    echo "WARNING: other Unix users cannot reach $PWD/.venv; jobs submitted as them will fail." >&2
  fi
fi
# What the packages were installed from: the same again (a demo or a test run after setup)
# needs no installer at all.
stamp="$(cat setup.cfg setup.py pyproject.toml scripts/setup.sh 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [ -f .venv/.portal-setup ] && [ "$(cat .venv/.portal-setup)" = "$stamp" ] && .venv/bin/python -c 'import portal' 2>/dev/null; then
  exit 0
fi
echo "==> Installing Python packages"
# uv installs the same requirements several times faster than pip (parallel downloads and
# unpacking): a fresh machine's setup took 50 s with pip. It is itself installed by pip, and
# gets this machine's pip settings (local wheels such as the CPU build of torch, constraints).
# Like pip, uv takes the best match from every index (--index-strategy). Should uv fail, pip
# installs everything.
uv_args=()
while IFS= read -r line; do
  value="${line#*=}"; value="${value#\'}"; value="${value%\'}"
  case "$line" in
    *.find-links=*) for link in $value; do uv_args+=(--find-links "$link"); done ;;
    *.constraint=*) for file in $value; do uv_args+=(--constraint "$file"); done ;;
    *.extra-index-url=*) for url in $value; do uv_args+=(--extra-index-url "$url"); done ;;
  esac
done < <(.venv/bin/python -m pip config list 2>/dev/null | sort -u)
if ! { .venv/bin/python -m pip install -q uv \
       && .venv/bin/uv pip install -q --python .venv/bin/python --index-strategy unsafe-best-match "${uv_args[@]}" -e '.[dev]'; }; then
  echo "==> uv could not install the packages; installing them with pip"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
fi
echo "$stamp" > .venv/.portal-setup
