"""The facility totals on the staff grants list (grant count, awarded and used time per kind)
are kept by database triggers: they equal plain sums over the tables whoever wrote the rows,
on both databases, and writers at the same moment neither wait on each other nor lose a change.
"""
from __future__ import annotations

import threading

import psycopg
from sqlalchemy import text

from portal import create_app
from portal.demo_facility import generate_facility
from portal.extensions import db
from portal.grants.models import Grant
from portal.grants.operations import add_minutes
from portal.grants.summary import facility_totals, fold_facility_totals


def summed_by_sql() -> dict[str, int]:
    """The same totals, summed over the tables themselves."""
    totals = {"grants": db.session.scalar(text("SELECT COUNT(*) FROM grants"))}
    for kind, minutes, seconds in db.session.execute(text(
            "SELECT resource_kind, SUM(awarded_minutes), SUM(used_seconds) FROM grant_allocations GROUP BY resource_kind")):
        totals[f"{kind}.awarded_minutes"], totals[f"{kind}.used_seconds"] = int(minutes), int(seconds)
    return totals


def nonzero(totals: dict[str, int]) -> dict[str, int]:
    return {counter: amount for counter, amount in totals.items() if amount}


def change_everything_and_compare() -> None:
    generate_facility(6, usage_per_project=4, seed=3)
    db.session.commit()
    assert facility_totals() == summed_by_sql()
    assert summed_by_sql()["grants"] == 6 and summed_by_sql()["cpu.used_seconds"] > 0

    # A top-up through the rules, and raw SQL as any other writer might do it.
    grant = db.session.scalar(db.select(Grant).order_by(Grant.id).limit(1))
    add_minutes(grant.allocations[0], 600)
    db.session.execute(text("UPDATE grant_allocations SET used_seconds = used_seconds + 3600 WHERE id % 2 = 0"))
    db.session.commit()
    assert facility_totals() == summed_by_sql()

    # An update that changes nothing adds nothing; a deleted grant takes its allocations along.
    before = db.session.scalar(text("SELECT COUNT(*) FROM facility_total_changes"))
    db.session.execute(text("UPDATE grant_allocations SET used_seconds = used_seconds"))
    assert db.session.scalar(text("SELECT COUNT(*) FROM facility_total_changes")) == before
    db.session.delete(grant)
    db.session.commit()
    totals = facility_totals()
    assert totals["grants"] == 5 and nonzero(totals) == nonzero(summed_by_sql())

    # Folding leaves one row per counter and the same totals.
    assert fold_facility_totals() > 0
    db.session.commit()
    assert db.session.scalar(text("SELECT COUNT(*) FROM facility_total_changes")) == len(totals)
    assert nonzero(facility_totals()) == nonzero(summed_by_sql())


def test_totals_equal_the_tables_on_postgresql(app_ctx):
    change_everything_and_compare()


def test_totals_equal_the_tables_on_sqlite(tmp_path):
    from flask_migrate import upgrade

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'totals.db'}", "TESTING": True,
                      "INSTANCE_PATH": str(tmp_path), "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1"})
    with app.app_context():
        upgrade()
        change_everything_and_compare()
        db.session.remove()
        db.engine.dispose()


def test_concurrent_writers_neither_deadlock_nor_lose_a_change(app_ctx, database_url):
    generate_facility(4, usage_per_project=2, seed=5)
    db.session.execute(text("UPDATE grant_allocations SET used_seconds = used_seconds + 1"))  # rows to fold
    db.session.commit()
    cpu, gpu = (list(db.session.scalars(text(f"SELECT id FROM grant_allocations WHERE resource_kind = '{kind}'"
                                             " ORDER BY id"))) for kind in ("cpu", "gpu"))
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as first, psycopg.connect(url) as second:
        for conn in (first, second):
            conn.execute("SET lock_timeout = '5s'")  # a wait on the totals fails the test, never hangs it
        # Each touches both kinds, in the opposite order: totals kept in one locked row per
        # kind would make these two wait on each other.
        first.execute("UPDATE grant_allocations SET used_seconds = used_seconds + 100 WHERE id = %s", (cpu[0],))
        second.execute("UPDATE grant_allocations SET used_seconds = used_seconds + 200 WHERE id = %s", (gpu[0],))
        first.execute("UPDATE grant_allocations SET used_seconds = used_seconds + 300 WHERE id = %s", (gpu[1],))
        second.execute("UPDATE grant_allocations SET awarded_minutes = awarded_minutes + 60 WHERE id = %s", (cpu[1],))
        # A fold in a third session meanwhile: the uncommitted changes are not its to fold.
        assert fold_facility_totals() > 0
        db.session.commit()
        second.commit()
        # The first writer folds and holds its rows; a fold beside it skips them and does not wait.
        rows_held = first.execute("SELECT id FROM facility_total_changes FOR UPDATE").fetchall()
        assert rows_held
        done = threading.Event()
        folded: list[int] = []

        def fold_beside():
            with app_ctx.app_context():
                folded.append(fold_facility_totals())
                db.session.commit()
                db.session.remove()
            done.set()

        worker = threading.Thread(target=fold_beside)
        worker.start()
        assert done.wait(10), "a fold waited on rows another transaction held"
        worker.join()
        assert folded == [0]  # every committed row was held by the first writer
        first.commit()
    db.session.expire_all()
    assert facility_totals() == summed_by_sql()
