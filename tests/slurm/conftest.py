"""The adapter test suite runs against both adapters: the same tests, the same real cluster."""
import pytest

from portal.devcluster.pytest_plugin import make_test_scheduler


@pytest.fixture(params=["cli", "rest"])
def slurm_scheduler(request, slurm_cluster):
    return make_test_scheduler(request.param, slurm_cluster)
