"""Configuration from environment variables, with defaults that are safe to run as they are.

Every setting can be given as an environment variable named ``PORTAL_<NAME>`` (or, for the
database, the conventional ``DATABASE_URL``). Nothing secret has a default in code: the
secret key is generated on first start and kept in the instance folder.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

#: Settings read from ``PORTAL_<NAME>``, with their defaults and types.
DEFAULTS: dict[str, Any] = {
    "SESSION_COOKIE_SECURE": False,  # set true behind HTTPS (production)
    "LOCAL_LOGIN_ENABLED": True,
    "SCHEDULER_TIMEOUT": 15.0,  # seconds a Slurm command may take before it counts as unreachable
    # Partition limits older than this many seconds are read from Slurm again before a job is
    # checked against them (and by every sync), so a limit changed in Slurm is followed.
    "PARTITION_LIMITS_TTL": 30.0,
    "SLURM_TOP_ACCOUNT": "portal",  # the Slurm account every account the portal makes sits under
    # The reconciler service (flask slurm run): seconds between its duties.
    "SERVICE_POLL_INTERVAL": 2.0,  # look for pending changes (PostgreSQL also wakes it at once)
    "SERVICE_JOB_STATES_INTERVAL": 10.0,
    "SERVICE_OUTBOX_INTERVAL": 30.0,
    "SERVICE_USAGE_INTERVAL": 300.0,  # expiry, sacct ingestion, usage alerts
    "SERVICE_FULL_INTERVAL": 3600.0,  # the whole site, drift included
    # /metrics (Prometheus): open to these networks, to "Authorization: Bearer <token>", and to staff.
    "METRICS_ALLOWED_NETWORKS": "127.0.0.1/32,::1/128",
    "METRICS_TOKEN": "",
    "DEFAULT_LOCALE": "en",
    "SQL_ECHO": False,
    # Folder of mpi_examples references files that judge uploaded results; empty: the shipped ones.
    "BENCHMARK_REFERENCES_DIR": "",
    # Acceptance runs started from the portal: the address their jobs post results to (the
    # portal's public base URL), the Unix user and Slurm account they run as (a service
    # identity the site creates; empty: runs cannot be started), and the hours an upload
    # token outlives the job's time limit (time to wait in the queue).
    "PUBLIC_URL": "",
    "ACCEPTANCE_UNIX_USER": "",
    "ACCEPTANCE_ACCOUNT": "",
    "ACCEPTANCE_TOKEN_HOURS": 6.0,
    "SMTP_HOST": "localhost",
    "SMTP_PORT": 25,
    "SMTP_TIMEOUT": 10.0,
    "SMTP_STARTTLS": False,
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "MAIL_SENDER": "allocations@localhost",
    # Werkzeug's method for new password hashes; "" is its default (scrypt, about 70 ms a hash
    # here, slow on purpose). Only the test suite sets a cheap one: it makes thousands.
    "PASSWORD_HASH_METHOD": "",
    "LOGIN_RATE_LIMIT": "10/300",  # sign-in attempts per address and account: 10 per 300 s
    "TOKEN_RATE_LIMIT": "20/300",  # failed API-token authentications per address
    "PROXY_FIX_HOPS": 0,  # proxies in front of the app whose X-Forwarded-* headers to trust
    # JSON list of {name, label, issuer, client_id, client_secret, scopes}; see portal/identity/oidc.py
    "OIDC_PROVIDERS": "[]",
    # Job templates: a folder of site templates beside the shipped ones (slurm_templates/);
    # the Python jobs run (default: the portal's own, which job users must be able to read);
    # the folder under which each Unix user gets a job folder (default: <instance>/jobs).
    "JOB_TEMPLATES_DIR": "",
    "JOB_PYTHON": "",
    "JOB_WORKDIR_ROOT": "",
    "STAFF_EMAIL": "allocations-office@localhost",  # the peer-review office: told of every submission
    "PROPOSAL_UPLOAD_MAX_BYTES": 10 * 1024 * 1024,  # scaling evidence file
    "REPLY_WINDOW_DAYS": 7,  # right to reply: days after the reviews are released
    "ELIGIBILITY_REQUIRES_VERIFIED_PROFILE": False,  # true: a call limited to countries needs a verified one
}


def _coerce(value: str, default: Any) -> Any:
    if isinstance(default, bool):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, float):
        return float(value)
    if isinstance(default, int):
        return int(value)
    return value


def load_secret_key(instance_path: Path) -> str:
    """Return the secret key from the instance folder, creating it on first use.

    A key written by one gunicorn worker must be read by the others. Each worker writes its
    candidate to a file of its own, then links it into place: the link either makes the whole
    key appear at once or fails because another worker's is there, which is then read. (A
    file created in place could be read empty between its creation and its write, and an
    empty key fails every request that touches the session.)
    """
    key_file = instance_path / "secret_key"
    instance_path.mkdir(parents=True, exist_ok=True)
    if not key_file.exists():
        candidate = instance_path / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(candidate, key_file)
        except FileExistsError:
            pass  # another worker's key won
        finally:
            candidate.unlink()
    key = key_file.read_text().strip()
    if not key:
        raise RuntimeError(f"{key_file} is empty: remove it (a new key is made) or put a key in it")
    return key


def from_environment(instance_path: Path, environ: dict[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    config: dict[str, Any] = {}
    for name, default in DEFAULTS.items():
        raw = env.get(f"PORTAL_{name}")
        config[name] = default if raw is None else _coerce(raw, default)
    config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(
        env.get("DATABASE_URL") or f"sqlite:///{instance_path / 'portal.sqlite3'}"
    )
    config["SECRET_KEY"] = env.get("PORTAL_SECRET_KEY") or load_secret_key(instance_path)
    config["SESSION_COOKIE_HTTPONLY"] = True
    config["SESSION_COOKIE_SAMESITE"] = "Lax"  # Lax, not Strict: the identity provider redirects back
    config["REMEMBER_COOKIE_SECURE"] = config["SESSION_COOKIE_SECURE"]
    config["REMEMBER_COOKIE_HTTPONLY"] = True
    config["REMEMBER_COOKIE_SAMESITE"] = "Lax"
    config["PREFERRED_URL_SCHEME"] = "https" if config["SESSION_COOKIE_SECURE"] else "http"
    config["SQLALCHEMY_ECHO"] = config.pop("SQL_ECHO")
    config["BABEL_DEFAULT_LOCALE"] = config["DEFAULT_LOCALE"]
    config["MAX_CONTENT_LENGTH"] = 20 * 1024 * 1024
    return config


def normalise_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs (SQLAlchemy's default is psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
