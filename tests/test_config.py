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


def _key_after_barrier(instance: str, barrier) -> str:
    from pathlib import Path

    from portal.config import load_secret_key

    barrier.wait()
    return load_secret_key(Path(instance))


def test_workers_starting_at_once_all_get_the_same_complete_key(tmp_path):
    # gunicorn starts its workers together; a worker that read the key file between another's
    # create and write got an empty key, and every page using the session answered 500.
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for round_ in range(20):
        instance = tmp_path / f"instance{round_}"
        with context.Manager() as manager:
            barrier = manager.Barrier(6)
            with context.Pool(6) as pool:
                keys = pool.starmap(_key_after_barrier, [(str(instance), barrier)] * 6)
        assert len(set(keys)) == 1 and len(keys[0]) == 64, keys
        assert [p.name for p in instance.iterdir()] == ["secret_key"]  # no candidate left behind


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


def test_passwords_are_hashed_with_scrypt_unless_configured_otherwise(tmp_path, monkeypatch):
    """The suite's cheap hashing (conftest) must never be what a deployment gets by default."""
    from portal.identity.models import User

    monkeypatch.delenv("DATABASE_URL", raising=False)
    for environ, method in (({}, "scrypt:"), ({"PORTAL_PASSWORD_HASH_METHOD": "pbkdf2:sha256:600000"}, "pbkdf2:")):
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        app = create_app({"INSTANCE_PATH": str(tmp_path)})
        with app.app_context():
            user = User(email="a@example.org", name="A")
            user.set_password("correct horse")
            assert user.password_hash.startswith(method)
            assert user.check_password("correct horse") and not user.check_password("wrong")
