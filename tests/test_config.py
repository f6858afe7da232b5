from portal import create_app
from portal.config import from_environment


def test_defaults_use_sqlite_in_instance_folder_and_generate_a_secret_once(tmp_path):
    config = from_environment(tmp_path, environ={})
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'portal.sqlite3'}"
    key_file = tmp_path / "secret_key"
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert len(config["SECRET_KEY"]) >= 64
    # A second start (another gunicorn worker) reads the same key instead of making a new one.
    assert from_environment(tmp_path, environ={})["SECRET_KEY"] == config["SECRET_KEY"]


def test_environment_overrides(tmp_path):
    config = from_environment(tmp_path, environ={
        "DATABASE_URL": "postgresql://portal@db.example/portal",
        "PORTAL_SECRET_KEY": "from-env",
        "PORTAL_SESSION_COOKIE_SECURE": "true",
        "PORTAL_SCHEDULER_TIMEOUT": "3.5",
    })
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://portal@db.example/portal"
    assert config["SECRET_KEY"] == "from-env"
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SCHEDULER_TIMEOUT"] == 3.5
    assert not (tmp_path / "secret_key").exists()


def test_app_starts_on_sqlite_with_no_configuration(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert app.config["SECRET_KEY"] == (tmp_path / "secret_key").read_text().strip()
