"""Grants: awarded compute (hours per partition, a start and an end) that Slurm enforces."""
