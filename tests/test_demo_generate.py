"""``flask demo generate``: a synthetic facility that the pages and the ledger agree on."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import text

from portal import create_app
from portal.clock import utcnow
from portal.demo_facility import PASSWORD, STAFF_EMAIL, FacilityNotEmpty, SchemaNotCurrent, generate_facility
from portal.extensions import db
from tests.conftest import sign_in

TOTALS_ROW = re.compile(r"<tr><td>(core-hours|GPU-hours)</td>(?:<td>.*?</td>){2}<td>([^<]*)</td><td>([^<]*)</td>")


def count(table: str) -> int:
    return db.session.scalar(text(f"SELECT COUNT(*) FROM {table}"))


def ledger_seconds(grant_id: int) -> dict[str, int]:
    """Charged seconds per resource of one grant, summed from the ledger rows by plain SQL."""
    rows = db.session.execute(text(
        "SELECT a.resource_kind, SUM(CASE WHEN a.resource_kind = 'gpu' THEN j.gpu_seconds ELSE j.cpu_seconds END)"
        " FROM job_usage j JOIN grant_allocations a ON a.id = j.allocation_id WHERE a.grant_id = :grant"
        " GROUP BY a.resource_kind"), {"grant": grant_id})
    return {kind: int(seconds) for kind, seconds in rows}


def test_a_generated_facility_has_its_people_grants_and_usage(app):
    with app.app_context():
        stats = generate_facility(30, usage_per_project=20, seed=7)
        db.session.commit()
        assert (stats.projects, stats.usage_rows) == (30, 600)
        assert count("projects") == 30
        assert count("users") == 30 * 6 + 1  # a PI and five members each, and one staff member
        assert count("memberships") == 30 * 6
        assert db.session.scalar(text("SELECT COUNT(DISTINCT project_id) FROM memberships WHERE role = 'pi'")) == 30
        assert count("grants") == 30 and count("grant_allocations") == 60
        assert count("job_usage") == 600
        assert db.session.scalar(text("SELECT COUNT(*) FROM proposals WHERE state = 'awarded' AND grant_id IS NOT NULL"
                                      " AND project_id IS NOT NULL")) == 30
        # Every allocation has its own Slurm sub-account, and every job is charged under it.
        assert db.session.scalar(text("SELECT COUNT(DISTINCT slurm_account) FROM grant_allocations")) == 60
        assert db.session.scalar(text("SELECT COUNT(*) FROM job_usage j JOIN grant_allocations a"
                                      " ON a.id = j.allocation_id WHERE j.account <> a.slurm_account")) == 0
        names = list(db.session.scalars(text("SELECT name FROM users")))
        assert any(not name.isascii() for name in names)
        assert count("users") == db.session.scalar(text("SELECT COUNT(DISTINCT unix_username) FROM users")) + 1
        # The summaries the grants list sorts by agree with the ledger, allocation by allocation.
        assert db.session.scalar(text(
            "SELECT COUNT(*) FROM grant_allocations a WHERE a.used_seconds <> (SELECT COALESCE(SUM(CASE WHEN"
            " a.resource_kind = 'gpu' THEN j.gpu_seconds ELSE j.cpu_seconds END), 0) FROM job_usage j"
            " WHERE j.allocation_id = a.id)")) == 0
        assert db.session.scalar(text("SELECT COUNT(*) FROM grants WHERE usage_percent_high > 0")) == 30
        statuses = set(db.session.scalars(text("SELECT status FROM grants")))
        assert statuses == {"active", "expired"}
        # The grant the most jobs ran under, on both resources.
        grant_id = db.session.scalar(text(
            "SELECT a.grant_id FROM job_usage j JOIN grant_allocations a ON a.id = j.allocation_id"
            " GROUP BY a.grant_id ORDER BY SUM(j.gpu_seconds) DESC, a.grant_id LIMIT 1"))
        seconds = ledger_seconds(grant_id)
        assert set(seconds) == {"cpu", "gpu"}

    client = app.test_client()
    sign_in(client, STAFF_EMAIL, PASSWORD)
    page = client.get(f"/grants/{grant_id}")
    assert page.status_code == 200
    used = {unit: cell for unit, _, cell in TOTALS_ROW.findall(page.get_data(as_text=True))}
    with app.test_request_context():
        from portal.formatting import format_number

        assert used == {"core-hours": format_number(seconds["cpu"] / 3600),
                        "GPU-hours": format_number(seconds["gpu"] / 3600)}
    api = client.get(f"/api/grants/{grant_id}").get_json()
    assert {r["resource"]: r["used_hours"] for r in api["resources"]} == {
        kind: round(value / 3600, 3) for kind, value in seconds.items()}


def test_the_application_adds_rows_after_a_generation(app):
    from portal.audit.operations import record
    from portal.grants.operations import create_grant
    from portal.identity.models import Role
    from portal.identity.providers import create_local_user
    from portal.projects.models import ProjectRole
    from portal.projects.operations import add_member, create_project
    from portal.sites.models import Partition

    with app.app_context():
        generate_facility(10, usage_per_project=5, seed=1)
        db.session.commit()
        highest = {table: db.session.scalar(text(f"SELECT MAX(id) FROM {table}"))
                   for table in ("users", "projects", "memberships", "grants", "grant_allocations", "audit_events")}
        pi = create_local_user("new-pi@example.org", "Łucja Nowak", "secret", roles=[Role.PI], unix_username="lnowak")
        member = create_local_user("new-member@example.org", "Eglė Jonaitė", "secret")
        project = create_project("new-001", "After the generator", pi)
        add_member(project, member, ProjectRole.MEMBER)
        today = utcnow().date()
        partition = db.session.scalar(db.select(Partition).order_by(Partition.id).limit(1))
        grant = create_grant(project, title="New grant", start_date=today, end_date=today + timedelta(days=90),
                             hours={partition: 1000})
        record("test.after_generation", pi, f"grant:{grant.id}")
        db.session.commit()
        assert pi.id > highest["users"] and project.id > highest["projects"]
        assert grant.id > highest["grants"] and grant.allocations[0].id > highest["grant_allocations"]
        assert db.session.scalar(text("SELECT MAX(id) FROM memberships")) > highest["memberships"]
        assert db.session.scalar(text("SELECT MAX(id) FROM audit_events")) > highest["audit_events"]


def test_a_database_with_projects_is_refused_unless_forced(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "generate", "--projects", "4", "--usage-per-project", "3"])
    assert first.exit_code == 0, first.output
    assert "4 projects, 24 people" in first.output and "12 usage rows" in first.output
    refused = runner.invoke(args=["demo", "generate", "--projects", "4"])
    assert refused.exit_code == 1
    assert "already holds 4 projects" in refused.output and "--force" in refused.output
    with app.app_context():
        assert count("projects") == 4 and count("job_usage") == 12
        with pytest.raises(FacilityNotEmpty):
            generate_facility(2, usage_per_project=1)
        db.session.rollback()
    forced = runner.invoke(args=["demo", "generate", "--projects", "3", "--usage-per-project", "2", "--force"])
    assert forced.exit_code == 0, forced.output
    with app.app_context():
        assert count("projects") == 7 and count("job_usage") == 18
        assert count("users") == 7 * 6 + 1  # the staff member once
        assert db.session.scalar(text("SELECT COUNT(DISTINCT code) FROM calls")) == count("calls") == 14


def test_an_unmigrated_database_is_refused(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'empty.db'}", "TESTING": True,
                      "INSTANCE_PATH": str(tmp_path)})
    with app.app_context():
        with pytest.raises(SchemaNotCurrent, match="flask db upgrade"):
            generate_facility(1)
        db.engine.dispose()
