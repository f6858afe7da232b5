"""Acceptance benchmarks: results from ``mpi_examples`` stored, judged against references, plotted."""
