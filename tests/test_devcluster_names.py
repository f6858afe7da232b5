"""Dev clusters side by side: each folder gets its own name, ports, MariaDB database and user,
and an existing folder keeps those it was made with (no Slurm needed)."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from portal.devcluster import cluster as devcluster
from portal.devcluster.cluster import LocalCluster, Ports


@pytest.fixture(autouse=True)
def _own_port_registry(tmp_path: Path, monkeypatch) -> None:
    """These folders are made up: their ports go in a registry of the test's own."""
    monkeypatch.setattr(devcluster, "PORT_REGISTRY", tmp_path / "ports.json")


def test_two_folders_never_share_a_name_ports_or_database(tmp_path: Path) -> None:
    # Two demos' folders are both called "slurm": the names come from the whole path.
    first, second = LocalCluster(tmp_path / "a" / "slurm"), LocalCluster(tmp_path / "b" / "slurm")
    assert first.cluster_name != second.cluster_name
    assert first.ports != second.ports
    # The same name given in two folders still gets two databases and two users, so one
    # folder's start never resets the other's password and its destroy never drops the other's.
    one, other = LocalCluster(tmp_path / "c", "samename"), LocalCluster(tmp_path / "d", "samename")
    assert one.db_name != other.db_name and one.db_user != other.db_user
    assert len(one.db_user) <= 32 and one.db_user.startswith("slurm_samename_")


def test_a_taken_port_moves_a_new_cluster_to_a_free_slot() -> None:
    # A name whose own slot is free on this machine now (another cluster may run here).
    name = next(f"clash{n}" for n in range(100) if Ports.free_for_name(f"clash{n}") == Ports.for_name(f"clash{n}"))
    usual = Ports.for_name(name)
    with socket.socket() as squatter:
        squatter.bind(("0.0.0.0", usual.slurmd))
        squatter.listen()
        picked = Ports.free_for_name(name)
        assert picked != usual and usual.slurmd not in picked.every_port()
    assert Ports.free_for_name(name) == usual  # free again: the name's own slot


def test_an_existing_folder_keeps_its_ports_and_database(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "slurm.conf").write_text("ClusterName=oldname\nSlurmctldPort=17100\nSlurmdPort=17101\n"
                                    "AccountingStoragePort=17102\nNodeName=localhost\n")
    (etc / "slurmdbd.conf").write_text("StorageUser=slurm_oldname\nStorageLoc=slurm_acct_oldname\n")
    cluster = LocalCluster(tmp_path)
    assert cluster.cluster_name == "oldname"
    assert cluster.ports == Ports(17100, 17101, 17102)
    assert (cluster.db_name, cluster.db_user) == ("slurm_acct_oldname", "slurm_oldname")


def test_a_stopped_clusters_ports_are_never_given_to_a_new_one(tmp_path: Path) -> None:
    # Nothing listens on the first cluster's ports (it is not running), yet a second cluster
    # of the same name takes other ones: the first must be able to start again.
    first = LocalCluster(tmp_path / "a", "samename")
    second = LocalCluster(tmp_path / "b", "samename")
    assert not set(first.ports.every_port()) & set(second.ports.every_port())
    assert LocalCluster(tmp_path / "a", "samename").ports == first.ports  # asked again: the same
    first.destroy()  # destroyed: its ports are free for the next cluster
    assert LocalCluster(tmp_path / "c", "samename").ports == first.ports
