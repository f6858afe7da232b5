"""The dev cluster turns delayed ACKs off on loopback, where every sacctmgr call otherwise
waited 40 ms at each of its round trips to slurmdbd (bench/sacctmgr_roundtrip.py measures it)."""
from __future__ import annotations

import os
import subprocess

import pytest

from portal.devcluster.cluster import QUICKACK_SETTING, loopback_quickack


@pytest.mark.slurm
def test_the_running_cluster_has_quick_acks_on_loopback(slurm_cluster):
    routes = subprocess.run(["ip", "route", "show", "table", "local"], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    loopback = [r for r in routes if r.startswith("local 127.")]
    assert loopback and all("quickack 1" in r for r in loopback), routes
    assert slurm_cluster.network_note.startswith("quick ACKs")
    # Slurm still answers through the changed routes.
    shown = subprocess.run(["sacctmgr", "-n", "-P", "show", "cluster", "format=cluster"], capture_output=True,
                           text=True, env={**os.environ, **slurm_cluster.env}, timeout=30)
    assert slurm_cluster.cluster_name in shown.stdout.split()


def test_the_routes_can_be_left_alone(monkeypatch):
    monkeypatch.setenv(QUICKACK_SETTING, "0")
    assert loopback_quickack() == f"loopback routes left alone ({QUICKACK_SETTING}=0)"
