"""A throwaway single-host Slurm cluster for development, demos and tests."""
from portal.devcluster.cluster import ClusterError, LocalCluster, Ports

__all__ = ["ClusterError", "LocalCluster", "Ports"]
