"""Partitions and their limits come from the live Slurm cluster, not from typing."""
from __future__ import annotations

import subprocess
import time

import pytest

from portal.extensions import db
from portal.identity.models import Role
from portal.sites.models import ResourceKind, Site
from portal.sites.operations import create_site, set_partition_kind, sync_partitions
from tests.conftest import csrf_token_from, sign_in

pytestmark = pytest.mark.slurm


def scontrol_partition(cluster, name: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "partition", name, "--oneliner"], env=cluster.env,
                         capture_output=True, text=True, check=True).stdout
    return dict(item.split("=", 1) for item in out.split() if "=" in item)


@pytest.fixture
def live_site(app, slurm_cluster):
    with app.app_context():
        site = create_site("Test cluster", slurm_cluster.cluster_name, slurm_conf=str(slurm_cluster.conf_path))
        db.session.commit()
        return site.id


def test_sync_reads_live_limits(app, slurm_cluster, live_site):
    with app.app_context():
        site = db.session.get(Site, live_site)
        partitions = {p.name: p for p in sync_partitions(site)}
        db.session.commit()
        assert {"cpu", "debug"} <= set(partitions)
        for name, partition in partitions.items():
            live = scontrol_partition(slurm_cluster, name)
            max_time = live["MaxTime"]
            if max_time == "UNLIMITED":
                assert partition.max_time_minutes is None
            else:
                h, m, s = (max_time.split("-")[-1]).split(":")
                days = int(max_time.split("-")[0]) if "-" in max_time else 0
                assert partition.max_time_minutes == days * 1440 + int(h) * 60 + int(m)
            assert partition.max_nodes == (None if live["MaxNodes"] == "UNLIMITED" else int(live["MaxNodes"]))
            assert partition.total_nodes == int(live["TotalNodes"])
            assert partition.cpus_per_node * partition.total_nodes == int(live["TotalCPUs"])
            assert partition.max_cpus_per_node == (None if live["MaxCPUsPerNode"] == "UNLIMITED"
                                                   else int(live["MaxCPUsPerNode"]))
        assert partitions["cpu"].max_time_minutes != partitions["debug"].max_time_minutes
        assert partitions["cpu"].is_default
        assert partitions["gpu"].resource_kind is ResourceKind.GPU and partitions["gpu"].gpus_per_node == 2
        # The one node carries the GPUs, so every partition is detected as GPU until staff say otherwise.
        set_partition_kind(partitions["cpu"], ResourceKind.CPU)
        # Syncing again changes nothing but the time stamp.
        again = {p.name: (p.max_time_minutes, p.max_nodes, p.cpus_per_node, p.resource_kind) for p in sync_partitions(site)}
        assert again == {n: (p.max_time_minutes, p.max_nodes, p.cpus_per_node, p.resource_kind)
                         for n, p in partitions.items()}
        assert again["cpu"][3] is ResourceKind.CPU  # the staff decision survives the sync


def test_staff_refresh_from_the_page(app, client, make_user, live_site):
    _, email, password = make_user(Role.STAFF)
    sign_in(client, email, password)
    page = client.get("/sites/").get_data(as_text=True)
    assert "Limits not read from Slurm yet" in page
    response = client.post(f"/sites/{live_site}/sync", data={"csrf_token": csrf_token_from(page)},
                           follow_redirects=True)
    text = response.get_data(as_text=True)
    assert "partitions from Test cluster" in text
    assert "<td>debug" in text and "10 min" in text


@pytest.mark.disturbs_slurm
def test_slurm_down_gives_a_clear_error_fast_and_pages_still_render(app, client, make_user, slurm_cluster, live_site):
    _, email, password = make_user(Role.STAFF)
    sign_in(client, email, password)
    with app.app_context():
        sync_partitions(db.session.get(Site, live_site))
        db.session.commit()
    slurm_cluster.stop_daemon("slurmctld")
    try:
        page = client.get("/sites/")
        assert page.status_code == 200
        token = csrf_token_from(page.get_data(as_text=True))
        started = time.monotonic()
        response = client.post(f"/api/sites/{live_site}/sync", headers={"X-CSRFToken": token})
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert "unreachable" in response.get_json()["message"].lower()
        assert elapsed < 20, f"took {elapsed:.1f} s to notice Slurm is down"
        page = client.get("/sites/").get_data(as_text=True)
        assert "Last attempt to reach Slurm failed" in page
        assert "<td>debug" in page  # last known limits still shown
        assert client.get("/").status_code == 200
    finally:
        slurm_cluster.start_daemon("slurmctld")
