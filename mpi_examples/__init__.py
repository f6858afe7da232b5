"""MPI and GPU acceptance micro-benchmarks (interconnect, GEMM, STREAM, host-device copies).

Run with ``mpirun -n 2 python -m mpi_examples pingpong`` or, under Slurm,
``srun --mpi=pmix python -m mpi_examples suite --references FILE``. See README.md.
"""

__version__ = "1.0.0"
SCHEMA_ID = "mpi_examples/result/v1"
