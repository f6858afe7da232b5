"""Job templates: from a form to a Slurm job charged to the project's grant."""
