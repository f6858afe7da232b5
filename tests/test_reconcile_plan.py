"""The pure translation model: desired vs actual -> the fewest sacctmgr changes, and drift."""
from __future__ import annotations

from portal.slurm.accounting import AccountSpec, SlurmState, actual_state, drift, plan
from portal.slurm.parsing import parse_int, parse_tres
from portal.slurm.types import AssociationInfo


def show(*rows: str) -> list[AssociationInfo]:
    """Associations as 'cluster|account|parent|user|partition|GrpTRESMins|GrpSubmit|GrpJobs' rows."""
    result = []
    for row in rows:
        cluster, account, parent, user, partition, tres, submit, jobs = (row.split("|") + [""] * 8)[:8]
        result.append(AssociationInfo(account=account, user=user or None, partition=partition or None,
                                      grp_tres_mins=parse_tres(tres), grp_submit_jobs=parse_int(submit),
                                      grp_jobs=parse_int(jobs), parent=parent or None, cluster=cluster))
    return result


def desired(*projects: tuple[str, dict, int | None, set], pool: str = "top") -> SlurmState:
    state = SlurmState()
    state.add_account(AccountSpec.make("top", "root"))
    for name, tres, closed, users in projects:
        state.add_account(AccountSpec.make(name, pool, tres, closed, closed))
        state.users |= {(name, *u) if isinstance(u, tuple) else (name, u, "") for u in users}
    return state


def test_an_empty_cluster_gets_parents_first_and_equal_settings_share_one_command():
    want = desired(("pa", {"cpu": 600}, None, {("ann", "cpu"), ("bob", "cpu")}), ("pb", {"cpu": 600}, None, {("cid", "cpu")}),
                   ("pc", {"gres/gpu": 120}, 0, set()))
    changes = plan(want, actual_state(show("c|root"), "c", "top"), "c")
    commands = [str(c) for c in changes.commands()]
    assert commands[0] == "sacctmgr -i add account top cluster=c parent=root"
    assert "sacctmgr -i add account pa,pb cluster=c parent=top GrpTRESMins=cpu=600" in commands
    assert "sacctmgr -i add account pc cluster=c parent=top GrpTRESMins=gres/gpu=120 GrpSubmitJobs=0 GrpJobs=0" in commands
    assert "sacctmgr -i add user ann,bob account=pa partition=cpu cluster=c" in commands
    (load,) = changes.load_files()
    assert load.index("Parent - 'root'") < load.index("Account - 'top'") < load.index("Parent - 'top'")
    assert "Account - 'pc':GrpTRESMins=gres/gpu=120:GrpSubmitJobs=0:GrpJobs=0" in load
    assert "Parent - 'pa'\nUser - 'ann':Partition='cpu'\nUser - 'bob':Partition='cpu'" in load


def test_nothing_to_do_when_slurm_matches():
    want = desired(("pa", {"cpu": 600}, 0, {("ann", "cpu")}))
    have = actual_state(show("c|top|root", "c|pa|top|||cpu=600|0|0", "c|pa||ann|cpu"), "c", "top")
    assert not plan(want, have, "c") and plan(want, have, "c").commands() == []
    assert not drift(want, have)


def test_limit_changes_clear_what_is_no_longer_wanted():
    want = desired(("pa", {"cpu": 900}, None, set()))
    have = actual_state(show("c|top|root", "c|pa|top|||cpu=600,gres/gpu=60|0|0"), "c", "top")
    (command,) = plan(want, have, "c").commands()
    assert str(command) == ("sacctmgr -i modify account where name=pa cluster=c set"
                            " GrpTRESMins=cpu=900,gres/gpu=-1 GrpSubmitJobs=-1 GrpJobs=-1")


def test_limits_changed_by_hand_are_reported_as_drift_and_put_back():
    want = desired(("pa", {"cpu": 600}, None, {("ann", "cpu")}))
    have = actual_state(show("c|top|root", "c|pa|top|||cpu=999999|7", "c|pa||ann|cpu|cpu=5||3"), "c", "top")
    found = drift(want, have)
    assert found.limits == [("pa", "GrpTRESMins", "cpu=600", "cpu=999999"), ("pa", "GrpSubmitJobs", "none", "7")]
    assert found.user_limits == [(("pa", "ann", "cpu"), "GrpTRESMins=cpu=5 GrpJobs=3")]
    commands = [str(c) for c in plan(want, have, "c").commands()]
    assert commands == ["sacctmgr -i modify account where name=pa cluster=c set GrpTRESMins=cpu=600 GrpSubmitJobs=-1",
                        "sacctmgr -i modify user where name=ann account=pa partition=cpu cluster=c set"
                        " GrpTRESMins=cpu=-1 GrpJobs=-1"]


def test_a_partition_level_stray_in_a_portal_account_is_found_and_removed():
    want = desired(("pa", {"cpu": 600}, None, {("ann", "cpu")}))
    have = actual_state(show("c|top|root", "c|pa|top|||cpu=600", "c|pa||ann|cpu", "c|pa||ann|gpu", "c|pa||eve|cpu",
                             "c|other|root", "c|other||eve|"), "c", "top")
    assert drift(want, have).associations == [("pa", "ann", "gpu"), ("pa", "eve", "cpu")]
    commands = [str(c) for c in plan(want, have, "c").commands()]
    assert commands == ["sacctmgr -i delete user where name=eve account=pa partition=cpu cluster=c",
                        "sacctmgr -i delete user where name=ann account=pa partition=gpu cluster=c"]


def test_a_users_last_association_removes_the_user_others_only_the_association():
    want = desired(("pa", {}, None, set()))
    have = actual_state(show("c|top|root", "c|pa|top", "c|pa||ann|cpu", "c|pa||ann|debug", "c|pa||bob|cpu",
                             "c|other|root", "c|other||bob|"), "c", "top")
    commands = [str(c) for c in plan(want, have, "c").commands()]
    assert commands == ["sacctmgr -i delete user where name=ann cluster=c",
                        "sacctmgr -i delete user where name=bob account=pa partition=cpu cluster=c"]


def test_drift_is_reported_and_removed_only_on_request_children_first():
    want = desired(("pa", {}, None, set()))
    have = actual_state(show("c|top|root", "c|pa|top", "c|stray|top", "c|kid|stray", "c|kid||eve|",
                             "c|outside|root", "c|outside||eve|"), "c", "top")
    found = drift(want, have)
    assert [a.name for a in found.accounts] == ["kid", "stray"] and found.associations == [("kid", "eve", "")]
    assert plan(want, have, "c").commands() == []
    commands = [str(c) for c in plan(want, have, "c", remove_drift=True).commands()]
    assert commands == ["sacctmgr -i delete user where name=eve account=kid cluster=c",
                        "sacctmgr -i delete account where name=kid cluster=c",
                        "sacctmgr -i delete account where name=stray cluster=c"]


def test_other_clusters_and_accounts_outside_the_portal_are_ignored():
    have = actual_state(show("c|top|root", "d|pa|top", "c|mine|root|||cpu=5"), "c", "top")
    assert set(have.managed.accounts) == {"top"}


def test_a_project_moved_to_another_pool_is_moved_not_recreated():
    want = desired(("pa", {}, None, set()), pool="pool2")
    want.add_account(AccountSpec.make("pool2", "top"))
    have = actual_state(show("c|top|root", "c|pool1|top", "c|pa|pool1"), "c", "top")
    kinds = [c.kind for c in plan(want, have, "c").commands()]
    assert kinds == ["add_account", "move_account"]


def test_a_large_plan_loads_in_bounded_files_parents_first():
    want = desired(*[(f"p{i:03d}", {"cpu": 60}, None, {(f"u{i:03d}", "cpu")}) for i in range(7)])
    files = plan(want, actual_state(show("c|root"), "c", "top"), "c").load_files(max_entries=4)
    assert len(files) == 4  # 1 top + 7 accounts + 7 users = 15 entries
    assert all(f.startswith("Cluster - 'c'\n") for f in files)
    first, second = files[0], files[1]
    assert first.index("Account - 'top'") < first.index("Parent - 'top'")
    # A file that starts in the middle of a parent's block names the parent again.
    assert second.startswith("Cluster - 'c'\nParent - 'top'\n") or second.startswith("Cluster - 'c'\nParent - 'p")
    every_line = [line for f in files for line in f.splitlines() if not line.startswith(("Cluster", "Parent"))]
    assert len(every_line) == 15 and len(set(every_line)) == 15
