"""Projects: a PI, members and their Slurm account; the dashboard."""
