"""A pure translation model of what Slurm should have, what it has, and the difference.

Nothing here touches the database or runs a command: ``plan(desired, actual)`` turns two
:class:`SlurmState` values into the sacctmgr commands that make the second equal the first,
batched so that many accounts with equal settings share one command.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from portal.slurm import names
from portal.slurm.cli import _limit_args  # the adapter's own rendering of limits: one source
from portal.slurm.parsing import parse_int, parse_pipe_rows, parse_tres

ASSOC_FIELDS = ("Cluster", "Account", "ParentName", "User", "Partition", "GrpTRESMins", "GrpSubmit")
# sacctmgr takes comma-separated name lists; very long lines are split to stay well inside
# its argument buffers.
MAX_NAMES_PER_COMMAND = 200


@dataclass(frozen=True)
class AccountSpec:
    name: str
    parent: str
    tres_mins: tuple[tuple[str, int], ...] = ()  # sorted (tres, minutes)
    submit_jobs: int | None = None  # None: no limit (-1 to clear)

    @staticmethod
    def make(name: str, parent: str, tres_mins: Mapping[str, int] | None = None,
             submit_jobs: int | None = None) -> AccountSpec:
        return AccountSpec(name, parent, tuple(sorted((tres_mins or {}).items())), submit_jobs)


@dataclass
class SlurmState:
    """Accounts (by name) and user associations (account, user) of one cluster subtree."""
    accounts: dict[str, AccountSpec] = field(default_factory=dict)
    users: set[tuple[str, str]] = field(default_factory=set)

    def add_account(self, spec: AccountSpec) -> None:
        self.accounts[spec.name] = spec


@dataclass(frozen=True)
class Command:
    kind: str  # add_account, modify_account, move_account, add_user, remove_user, delete_user, remove_account
    argv: tuple[str, ...]

    def __str__(self) -> str:
        return "sacctmgr -i " + " ".join(self.argv)


@dataclass
class ActualState:
    """What ``sacctmgr show assoc`` reports: the portal's subtree, and who is elsewhere."""
    managed: SlurmState
    # Every (account, user) on the cluster, inside the subtree or not: needed to know whether
    # removing a user's last association must remove the user itself.
    all_user_accounts: dict[str, set[str]]


def actual_state(show_assoc_output: str, cluster: str, top: str) -> ActualState:
    rows = [r for r in parse_pipe_rows(show_assoc_output, ASSOC_FIELDS) if r["Cluster"] in ("", cluster)]
    parents = {r["Account"]: r["ParentName"] for r in rows if not r["User"] and not r["Partition"]}

    def under_top(account: str) -> bool:
        seen = set()
        while account and account not in seen:
            if account == top:
                return True
            seen.add(account)
            account = parents.get(account, "")
        return False

    state = SlurmState()
    everyone: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row["User"]:
            everyone[row["User"]].add(row["Account"])
        if not under_top(row["Account"]):
            continue
        if row["User"]:
            if not row["Partition"]:
                state.users.add((row["Account"], row["User"]))
        elif not row["Partition"]:
            state.add_account(AccountSpec.make(row["Account"], row["ParentName"],
                                               parse_tres(row["GrpTRESMins"]), parse_int(row["GrpSubmit"])))
    return ActualState(state, everyone)


def _depth(spec: AccountSpec, accounts: Mapping[str, AccountSpec]) -> int:
    depth, parent = 0, spec.parent
    while parent in accounts and depth < 50:
        depth, parent = depth + 1, accounts[parent].parent
    return depth


def _chunks(items: Iterable[str]) -> list[list[str]]:
    items = sorted(items)
    return [items[i:i + MAX_NAMES_PER_COMMAND] for i in range(0, len(items), MAX_NAMES_PER_COMMAND)]


def _limit_change(want: AccountSpec, have: AccountSpec) -> tuple[str, ...]:
    tres: dict[str, int] = {}
    if want.tres_mins != have.tres_mins:
        tres = dict(want.tres_mins)
        tres.update({key: -1 for key, _ in have.tres_mins if key not in tres})
    submit = None
    if want.submit_jobs != have.submit_jobs:
        submit = -1 if want.submit_jobs is None else want.submit_jobs
    return tuple(_limit_args(tres, submit))


def _user_groups(pairs: Iterable[tuple[str, str]]) -> list[tuple[list[str], list[str]]]:
    """Group (account, user) pairs into (accounts, users) whose cross product is exactly them."""
    by_account: dict[str, set[str]] = defaultdict(set)
    for account, user in pairs:
        by_account[account].add(user)
    by_users: dict[frozenset[str], list[str]] = defaultdict(list)
    for account, users in by_account.items():
        by_users[frozenset(users)].append(account)
    groups = []
    for users, accounts in sorted(by_users.items(), key=lambda item: sorted(item[1])):
        for account_chunk in _chunks(accounts):
            for user_chunk in _chunks(users):
                groups.append((account_chunk, user_chunk))
    return groups


@dataclass
class Plan:
    """The difference, kept structured: rendered as grouped commands or as one load file."""
    cluster: str
    new_accounts: list[AccountSpec] = field(default_factory=list)  # parents before children
    changed: list[tuple[AccountSpec, tuple[str, ...]]] = field(default_factory=list)  # (current, settings)
    moves: dict[str, list[str]] = field(default_factory=dict)  # new parent -> accounts
    user_adds: set[tuple[str, str]] = field(default_factory=set)
    removals: list[Command] = field(default_factory=list)  # user removals, then drift accounts

    def __bool__(self) -> bool:
        return bool(self.new_accounts or self.changed or self.moves or self.user_adds or self.removals)

    @property
    def where_cluster(self) -> str:
        return f"cluster={names.validate_account_name(self.cluster)}"

    def commands(self) -> list[Command]:
        """sacctmgr commands, one per group of accounts or users with equal settings."""
        commands: list[Command] = []
        grouped: dict[tuple, list[str]] = defaultdict(list)
        for spec in self.new_accounts:
            grouped[(spec.parent, spec.tres_mins, spec.submit_jobs)].append(spec.name)
        for (parent, tres, submit), accounts in grouped.items():  # insertion order keeps parents first
            for chunk in _chunks(accounts):
                commands.append(Command("add_account", (
                    "add", "account", ",".join(chunk), self.where_cluster, f"parent={parent}",
                    *_limit_args(dict(tres), submit))))
        changes: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for spec, settings in self.changed:
            changes[settings].append(spec.name)
        for settings, accounts in sorted(changes.items()):
            for chunk in _chunks(accounts):
                commands.append(Command("modify_account", ("modify", "account", "where", f"name={','.join(chunk)}",
                                                           self.where_cluster, "set", *settings)))
        commands += self.move_commands()
        for accounts, users in _user_groups(self.user_adds):
            commands.append(Command("add_user", ("add", "user", ",".join(users), f"account={','.join(accounts)}",
                                                 self.where_cluster)))
        return commands + self.removals

    def move_commands(self) -> list[Command]:
        return [Command("move_account", ("modify", "account", "where", f"name={','.join(chunk)}",
                                         self.where_cluster, "set", f"parent={parent}"))
                for parent, accounts in sorted(self.moves.items()) for chunk in _chunks(accounts)]

    def load_file(self) -> str | None:
        """The additions and limit changes as one ``sacctmgr load`` file: one process, one commit."""
        if not (self.new_accounts or self.changed or self.user_adds):
            return None
        blocks: dict[str, list[str]] = defaultdict(list)
        for spec in self.new_accounts:
            blocks[spec.parent].append(_account_line(spec.name, _limit_args(dict(spec.tres_mins), spec.submit_jobs)))
        for current, settings in self.changed:  # under the parent it has now; a move follows
            blocks[current.parent].append(_account_line(current.name, list(settings)))
        for account, user in sorted(self.user_adds):
            blocks[account].append(f"User - '{names.validate_user_name(user)}'")
        lines = [f"Cluster - '{names.validate_account_name(self.cluster)}'"]
        for parent, entries in blocks.items():
            lines.append(f"Parent - '{names.validate_account_name(parent)}'")
            lines += entries
        return "\n".join(lines) + "\n"


def _account_line(name: str, settings: list[str]) -> str:
    return ":".join([f"Account - '{names.validate_account_name(name)}'", *settings])


def plan(desired: SlurmState, actual: ActualState, cluster: str, *, remove_drift: bool = False) -> Plan:
    """What turns ``actual`` into ``desired``.

    New accounts carry their limits from the start, so no moment exists in which a portal
    account is in Slurm without its limits. Accounts Slurm has under the portal's top account
    that the portal does not want are drift: left alone unless ``remove_drift``.
    """
    have = actual.managed
    result = Plan(cluster)
    new = [s for s in desired.accounts.values() if s.name not in have.accounts]
    for spec in sorted(new, key=lambda s: (_depth(s, desired.accounts), s.parent, s.name)):
        names.validate_account_name(spec.name)
        result.new_accounts.append(spec)
    for spec in desired.accounts.values():
        current = have.accounts.get(spec.name)
        if current is None:
            continue
        if current.parent != spec.parent:
            result.moves.setdefault(names.validate_account_name(spec.parent), []).append(spec.name)
        settings = _limit_change(spec, current)
        if settings:
            result.changed.append((current, settings))
    result.user_adds = desired.users - have.users
    for _, user in result.user_adds:
        names.validate_user_name(user)
    drift_accounts = {a for a in have.accounts if a not in desired.accounts}
    gone = {(a, u) for a, u in have.users - desired.users
            if a in desired.accounts or (remove_drift and a in drift_accounts)}
    result.removals = _removals(gone, actual, result.where_cluster)
    if remove_drift and drift_accounts:
        # Children before parents: Slurm refuses to delete an account that still has some.
        by_depth: dict[int, list[str]] = defaultdict(list)
        for account in drift_accounts:
            by_depth[_depth(have.accounts[account], have.accounts)].append(account)
        for chunk in (c for depth in sorted(by_depth, reverse=True) for c in _chunks(by_depth[depth])):
            result.removals.append(Command("remove_account", ("delete", "account", "where", f"name={','.join(chunk)}",
                                                              result.where_cluster)))
    return result


def _removals(gone: set[tuple[str, str]], actual: ActualState, where_cluster: str) -> list[Command]:
    # Slurm will not remove a user's last association (its default account) on its own:
    # a user left with no account at all is removed from the cluster instead.
    left: dict[str, set[str]] = {u: set(actual.all_user_accounts.get(u, ())) for _, u in gone}
    for account, user in gone:
        left[user].discard(account)
    whole_users = sorted(u for u, accounts in left.items() if not accounts)
    commands = [Command("delete_user", ("delete", "user", "where", f"name={','.join(chunk)}", where_cluster))
                for chunk in _chunks(whole_users)]
    partial = {(a, u) for a, u in gone if u not in whole_users}
    for accounts, users in _user_groups(partial):
        commands.append(Command("remove_user", ("delete", "user", "where", f"name={','.join(users)}",
                                                f"account={','.join(accounts)}", where_cluster)))
    return commands


def drift(desired: SlurmState, actual: ActualState) -> tuple[list[AccountSpec], list[tuple[str, str]]]:
    """Accounts and user associations under the portal's top account the portal did not ask for."""
    have = actual.managed
    accounts = sorted((s for s in have.accounts.values() if s.name not in desired.accounts), key=lambda s: s.name)
    users = sorted(have.users - desired.users)
    return accounts, users
