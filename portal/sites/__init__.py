"""Sites: clusters and their partitions, read back from Slurm."""
