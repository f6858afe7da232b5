"""Unsafe names are refused before any Slurm command runs."""
import pytest

from portal.slurm import InvalidName, JobRequest, make_scheduler
from portal.slurm.names import validate_account_name, validate_partition_name, validate_user_name

BAD = ["a;rm -rf /", "x --uid=0", "acct\nname", "", "Upper", "a b", "a=b", "a,b", "1abc",
       "x" * 40, None]


@pytest.mark.parametrize("name", BAD)
def test_bad_account_and_user_names(name):
    with pytest.raises(InvalidName):
        validate_account_name(name)
    with pytest.raises(InvalidName):
        validate_user_name(name)


@pytest.mark.parametrize("name", ["proj_2024", "a", "ai_call_7"])
def test_good_account_names(name):
    assert validate_account_name(name) == name


def test_partition_names():
    assert validate_partition_name("gpu-large") == "gpu-large"
    with pytest.raises(InvalidName):
        validate_partition_name("gpu --uid=0")


@pytest.fixture(params=["cli", "rest"])
def offline(request, tmp_path):
    """An adapter whose client tools do not exist (cli) or whose slurmrestd does not listen
    (rest): any command run or request sent would be Unreachable."""
    if request.param == "rest":
        (tmp_path / "token").write_text("not-a-token\n")
        return make_scheduler("rest", url="http://127.0.0.1:9", token_file=str(tmp_path / "token"), cluster="c")
    return make_scheduler("cli", bin_dir=str(tmp_path))


@pytest.mark.parametrize("name", ["a;rm -rf /", "x --uid=0", "bad\nname"])
def test_refused_before_any_command(offline, name):
    for call in (lambda: offline.add_account(name), lambda: offline.remove_account(name),
                 lambda: offline.add_user("proj", name), lambda: offline.add_user(name, "alice"),
                 lambda: offline.associations([name]), lambda: offline.account_usage([name]),
                 lambda: offline.modify_account(name, grp_submit_jobs=0),
                 lambda: offline.jobs(user=name), lambda: offline.cancel(name)):
        with pytest.raises(InvalidName):
            call()


def _request(**changes):
    fields = dict(script="#!/bin/bash\ntrue\n", account="proj", partition="cpu",
                  job_name="job", workdir="/tmp", time_limit_minutes=5)
    return JobRequest(**{**fields, **changes})


@pytest.mark.parametrize("changes", [
    {"account": "x --uid=0"}, {"user": "a;rm -rf /"}, {"partition": "cpu\n"},
    {"job_name": "a b"}, {"time_limit_minutes": 0}, {"cpus_per_task": True},
    {"workdir": "relative"}, {"script": "no shebang"}, {"array": "1-3;ls"},
    {"environment": {"BAD KEY": "x"}}, {"gpus": -1},
])
def test_submit_refuses_bad_requests(offline, changes):
    with pytest.raises(InvalidName):
        offline.submit(_request(**changes))


def test_missing_tools_are_unreachable(offline):
    from portal.slurm import SchedulerUnreachable

    with pytest.raises(SchedulerUnreachable, match="not found|cannot be reached"):
        offline.ping()
