"""The pure translation model: desired vs actual -> the fewest sacctmgr changes."""
from __future__ import annotations

from portal.grants.slurmstate import AccountSpec, SlurmState, actual_state, drift, plan

FIELDS = "Cluster|Account|ParentName|User|Partition|GrpTRESMins|GrpSubmit"


def show(*rows: str) -> str:
    """sacctmgr -P rows in FIELDS order; trailing empty fields may be left out."""
    return "\n".join(row + "|" * (FIELDS.count("|") - row.count("|")) for row in rows) + "\n"


def desired(*projects: tuple[str, dict, int | None, set[str]], pool: str = "top") -> SlurmState:
    state = SlurmState()
    state.add_account(AccountSpec.make("top", "root"))
    for name, tres, submit, users in projects:
        state.add_account(AccountSpec.make(name, pool, tres, submit))
        state.users |= {(name, u) for u in users}
    return state


def test_an_empty_cluster_gets_parents_first_and_equal_settings_share_one_command():
    want = desired(("pa", {"cpu": 600}, None, {"ann", "bob"}), ("pb", {"cpu": 600}, None, {"cid"}),
                   ("pc", {"cpu": 60, "gres/gpu": 120}, 0, set()))
    changes = plan(want, actual_state(show("c|root||||"), "c", "top"), "c")
    commands = [str(c) for c in changes.commands()]
    assert commands[0] == "sacctmgr -i add account top cluster=c parent=root"
    assert "sacctmgr -i add account pa,pb cluster=c parent=top GrpTRESMins=cpu=600" in commands
    assert "sacctmgr -i add account pc cluster=c parent=top GrpTRESMins=cpu=60,gres/gpu=120 GrpSubmitJobs=0" in commands
    load = changes.load_file()
    assert load.index("Parent - 'root'") < load.index("Account - 'top'") < load.index("Parent - 'top'")
    assert "Account - 'pc':GrpTRESMins=cpu=60,gres/gpu=120:GrpSubmitJobs=0" in load
    assert "Parent - 'pa'\nUser - 'ann'\nUser - 'bob'" in load


def test_nothing_to_do_when_slurm_matches():
    want = desired(("pa", {"cpu": 600}, 0, {"ann"}))
    have = actual_state(show("c|top|root|||", "c|pa|top|||cpu=600|0", "c|pa||ann|||"), "c", "top")
    assert not plan(want, have, "c") and plan(want, have, "c").commands() == []


def test_limit_changes_clear_what_is_no_longer_wanted():
    want = desired(("pa", {"cpu": 900}, None, set()))
    have = actual_state(show("c|top|root|||", "c|pa|top|||cpu=600,gres/gpu=60|0"), "c", "top")
    (command,) = plan(want, have, "c").commands()
    assert str(command) == ("sacctmgr -i modify account where name=pa cluster=c set"
                            " GrpTRESMins=cpu=900,gres/gpu=-1 GrpSubmitJobs=-1")


def test_a_users_last_association_removes_the_user_others_only_the_association():
    want = desired(("pa", {}, None, set()))
    have = actual_state(show("c|top|root|||", "c|pa|top|||", "c|pa||ann|||", "c|pa||bob|||",
                             "c|other|root|||", "c|other||bob|||"), "c", "top")
    commands = [str(c) for c in plan(want, have, "c").commands()]
    assert commands == ["sacctmgr -i delete user where name=ann cluster=c",
                        "sacctmgr -i delete user where name=bob account=pa cluster=c"]


def test_drift_is_reported_and_removed_only_on_request_children_first():
    want = desired(("pa", {}, None, set()))
    have = actual_state(show("c|top|root|||", "c|pa|top|||", "c|stray|top|||", "c|kid|stray|||", "c|kid||eve|||",
                             "c|outside|root|||", "c|outside||eve|||"), "c", "top")
    accounts, users = drift(want, have)
    assert [a.name for a in accounts] == ["kid", "stray"] and users == [("kid", "eve")]
    assert plan(want, have, "c").commands() == []
    commands = [str(c) for c in plan(want, have, "c", remove_drift=True).commands()]
    assert commands == ["sacctmgr -i delete user where name=eve account=kid cluster=c",
                        "sacctmgr -i delete account where name=kid cluster=c",
                        "sacctmgr -i delete account where name=stray cluster=c"]


def test_other_clusters_and_accounts_outside_the_portal_are_ignored():
    have = actual_state(show("c|top|root|||", "d|pa|top|||", "c|mine|root|||cpu=5|"), "c", "top")
    assert set(have.managed.accounts) == {"top"}


def test_a_project_moved_to_another_pool_is_moved_not_recreated():
    want = desired(("pa", {}, None, set()), pool="pool2")
    want.add_account(AccountSpec.make("pool2", "top"))
    have = actual_state(show("c|top|root|||", "c|pool1|top|||", "c|pa|pool1|||"), "c", "top")
    kinds = [c.kind for c in plan(want, have, "c").commands()]
    assert kinds == ["add_account", "move_account"]
