"""The dev cluster's partitions, read back live through the adapter."""

import pytest

pytestmark = pytest.mark.slurm


def test_partitions_read_live_limits(slurm_cluster, slurm_scheduler):
    nodes = slurm_cluster.nodes  # the test cluster runs two slurmd on this host
    parts = {p.name: p for p in slurm_scheduler.partitions()}
    assert set(parts) >= {"cpu", "debug", "gpu"}
    cpu, debug, gpu = parts["cpu"], parts["debug"], parts["gpu"]
    assert cpu.is_default and not debug.is_default
    assert (cpu.max_time_minutes, debug.max_time_minutes) == (60, 10)
    assert (cpu.max_nodes, gpu.max_nodes, debug.max_nodes) == (nodes, nodes, 1)
    assert debug.max_cpus_per_node == 1 and cpu.max_cpus_per_node is None
    assert cpu.cpus_per_node == slurm_cluster.cpus and cpu.total_nodes == gpu.total_nodes == nodes
    assert gpu.gpus_per_node == 2
    assert all(p.state == "UP" for p in parts.values())


def test_cluster_name_and_ping(slurm_cluster, slurm_scheduler):
    slurm_scheduler.ping()
    assert slurm_scheduler.cluster_name() == slurm_cluster.cluster_name


def test_start_is_idempotent(slurm_cluster):
    pids = slurm_cluster.status()
    slurm_cluster.start(timeout=10)
    assert slurm_cluster.status() == pids and slurm_cluster.is_running()
