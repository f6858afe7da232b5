from datetime import date

import pytest

from portal.extensions import db
from portal.grants.models import GrantStatus, JobUsage
from portal.grants.operations import GrantError, active_allocation, create_grant
from portal.grants.usage import remaining_minutes, used_minutes
from portal.identity.providers import create_local_user
from portal.projects.models import ProjectStatus
from portal.projects.operations import create_project
from portal.sites.models import Partition, ResourceKind
from portal.sites.operations import create_site


@pytest.fixture
def project_and_partitions(app_ctx):
    site = create_site("Site", "sitea")
    cpu = Partition(name="cpu", resource_kind=ResourceKind.CPU)
    gpu = Partition(name="gpu", resource_kind=ResourceKind.GPU, gpus_per_node=4)
    site.partitions += [cpu, gpu]
    pi = create_local_user("pi@example.org", "PI", "pw")
    project = create_project("p-1", "Project", pi)
    db.session.flush()
    return project, cpu, gpu, site


def test_award_counts_minutes_per_partition_kind_and_activates_the_project(project_and_partitions):
    project, cpu, gpu, site = project_and_partitions
    grant = create_grant(project, title="Regular 2026", start_date=date(2026, 1, 1), end_date=date(2027, 1, 1),
                         hours={cpu: 1000, gpu: 250.5})
    assert project.status is ProjectStatus.ACTIVE and grant.status is GrantStatus.ACTIVE
    assert {a.partition.name: (a.resource_kind, a.awarded_minutes) for a in grant.allocations} == {
        "cpu": (ResourceKind.CPU, 60_000), "gpu": (ResourceKind.GPU, 15_030)}
    on_day = active_allocation(project, gpu, date(2026, 6, 1))
    assert on_day is not None and on_day.partition is gpu
    assert active_allocation(project, gpu, date(2027, 1, 1)) is None  # the end date is exclusive

    # GPU time is charged on GPU partitions, CPU time on CPU partitions.
    db.session.add(JobUsage(site_id=site.id, job_id="1", account="p1", user="u", partition="gpu", state="COMPLETED",
                            cpu_seconds=7200, gpu_seconds=3600, allocation_id=on_day.id))
    db.session.flush()
    assert used_minutes(on_day) == 60 and remaining_minutes(on_day) == 15_030 - 60


@pytest.mark.parametrize("kwargs, message", [
    ({"start_date": date(2026, 2, 1), "end_date": date(2026, 1, 1)}, "end after it starts"),
    ({"hours": {}}, "at least one partition"),
])
def test_bad_awards_are_refused(project_and_partitions, kwargs, message):
    project, cpu, _, _ = project_and_partitions
    args = {"title": "x", "start_date": date(2026, 1, 1), "end_date": date(2026, 12, 31), "hours": {cpu: 10}}
    with pytest.raises(GrantError, match=message):
        create_grant(project, **(args | kwargs))


def test_negative_hours_are_refused(project_and_partitions):
    project, cpu, _, _ = project_and_partitions
    with pytest.raises(GrantError, match="negative"):
        create_grant(project, title="x", start_date=date(2026, 1, 1), end_date=date(2026, 12, 31), hours={cpu: -5})
