"""A pure translation model of Slurm accounting: what should be, what is, and the difference.

Nothing here runs a command or touches the database. The portal builds a desired
:class:`SlurmState` from its grants, an adapter reads the cluster's associations
(:meth:`~portal.slurm.base.Scheduler.associations`), :func:`actual_state` turns them into
the same shape, and :func:`plan` computes the changes. An adapter applies a :class:`Plan`
(:meth:`~portal.slurm.base.Scheduler.apply_accounting`) however suits it; ``commands()``
renders it in sacctmgr's words for people (dry runs, the audit log).

An association is ``(account, user, partition)``; the partition is ``""`` for one that
holds on every partition. The portal only makes partition-level user associations, so the
partition of an association decides where the account's time can be spent.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from portal.slurm import names
from portal.slurm.parsing import format_tres
from portal.slurm.types import AssociationInfo

# sacctmgr takes comma-separated name lists; very long lines are split to stay well inside
# its argument buffers.
MAX_NAMES_PER_COMMAND = 200
Assoc = tuple[str, str, str]  # (account, user, partition or "")


def limit_args(grp_tres_mins: Mapping[str, int] | None, grp_submit_jobs: int | None,
               grp_jobs: int | None = None) -> list[str]:
    """sacctmgr ``set`` arguments for the limits the portal manages; -1 clears one."""
    args = []
    if grp_tres_mins:
        for key, value in grp_tres_mins.items():
            names.validate_tres_name(key)
            names.validate_count(value, f"GrpTRESMins {key}", minimum=-1)
        args.append(f"GrpTRESMins={format_tres(grp_tres_mins)}")
    if grp_submit_jobs is not None:
        names.validate_count(grp_submit_jobs, "GrpSubmitJobs", minimum=-1)
        args.append(f"GrpSubmitJobs={grp_submit_jobs}")
    if grp_jobs is not None:
        names.validate_count(grp_jobs, "GrpJobs", minimum=-1)
        args.append(f"GrpJobs={grp_jobs}")
    return args


@dataclass(frozen=True)
class AccountSpec:
    """An account association and the limits the portal manages on it."""
    name: str
    parent: str
    tres_mins: tuple[tuple[str, int], ...] = ()  # sorted (tres, minutes): GrpTRESMins
    submit_jobs: int | None = None  # GrpSubmitJobs; None: no limit
    running_jobs: int | None = None  # GrpJobs; None: no limit (0 keeps queued jobs from starting)

    @staticmethod
    def make(name: str, parent: str, tres_mins: Mapping[str, int] | None = None,
             submit_jobs: int | None = None, running_jobs: int | None = None) -> AccountSpec:
        return AccountSpec(name, parent, tuple(sorted((tres_mins or {}).items())), submit_jobs, running_jobs)

    def limit_differences(self, have: AccountSpec) -> list[tuple[str, str, str]]:
        """(limit, wanted, found) for every managed limit that differs, for people."""
        def show(value) -> str:
            return "none" if value in (None, ()) else (format_tres(dict(value)) if isinstance(value, tuple)
                                                        else str(value))
        pairs = (("GrpTRESMins", self.tres_mins, have.tres_mins), ("GrpSubmitJobs", self.submit_jobs, have.submit_jobs),
                 ("GrpJobs", self.running_jobs, have.running_jobs))
        return [(label, show(want), show(found)) for label, want, found in pairs if want != found]


@dataclass
class SlurmState:
    """Accounts (by name) and user associations of the portal's subtree of one cluster."""
    accounts: dict[str, AccountSpec] = field(default_factory=dict)
    users: set[Assoc] = field(default_factory=set)
    # Limits found on user associations (the portal sets none): hand-made, so drift.
    user_limits: dict[Assoc, str] = field(default_factory=dict)

    def add_account(self, spec: AccountSpec) -> None:
        self.accounts[spec.name] = spec


@dataclass
class ActualState:
    """What the cluster reports: the portal's subtree, and who has associations anywhere."""
    managed: SlurmState
    # Every association of every user on the cluster, inside the subtree or not: needed to
    # know whether removing a user's last association must remove the user itself.
    all_user_assocs: dict[str, set[tuple[str, str]]]
    # False when only some accounts were read (an incremental run): then a user is never
    # removed whole, since their associations elsewhere are unknown.
    complete: bool = True


def actual_state(associations: Iterable[AssociationInfo], cluster: str, top: str, *,
                 complete: bool = True) -> ActualState:
    rows = [a for a in associations if a.cluster in (None, "", cluster)]
    parents = {a.account: a.parent or "" for a in rows if not a.user and not a.partition}

    def under_top(account: str) -> bool:
        seen = set()
        while account and account not in seen:
            if account == top:
                return True
            seen.add(account)
            account = parents.get(account, "")
        return False

    state = SlurmState()
    everyone: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for row in rows:
        if row.user:
            everyone[row.user].add((row.account, row.partition or ""))
        if not under_top(row.account):
            continue
        if row.user:
            key = (row.account, row.user, row.partition or "")
            state.users.add(key)
            limits = limit_args(row.grp_tres_mins, row.grp_submit_jobs, row.grp_jobs)
            if limits:
                state.user_limits[key] = " ".join(limits)
        elif not row.partition:
            state.add_account(AccountSpec.make(row.account, row.parent or "", row.grp_tres_mins,
                                               row.grp_submit_jobs, row.grp_jobs))
    return ActualState(state, everyone, complete)


def _depth(spec: AccountSpec, accounts: Mapping[str, AccountSpec]) -> int:
    depth, parent = 0, spec.parent
    while parent in accounts and depth < 50:
        depth, parent = depth + 1, accounts[parent].parent
    return depth


def _chunks(items: Iterable[str]) -> list[list[str]]:
    ordered = sorted(items)
    return [ordered[i:i + MAX_NAMES_PER_COMMAND] for i in range(0, len(ordered), MAX_NAMES_PER_COMMAND)]


def _limit_change(want: AccountSpec, have: AccountSpec) -> tuple[str, ...]:
    tres: dict[str, int] = {}
    if want.tres_mins != have.tres_mins:
        tres = dict(want.tres_mins)
        tres.update({key: -1 for key, _ in have.tres_mins if key not in tres})

    def count(wanted: int | None, found: int | None) -> int | None:
        if wanted == found:
            return None
        return -1 if wanted is None else wanted
    return tuple(limit_args(tres, count(want.submit_jobs, have.submit_jobs),
                            count(want.running_jobs, have.running_jobs)))


def _user_groups(assocs: Iterable[Assoc]) -> list[tuple[list[str], list[str], str]]:
    """Group associations into (accounts, users, partition) whose cross product is exactly them."""
    by_key: dict[tuple[str, str], set[str]] = defaultdict(set)
    for account, user, partition in assocs:
        by_key[(account, partition)].add(user)
    by_users: dict[tuple[frozenset[str], str], list[str]] = defaultdict(list)
    for (account, partition), users in by_key.items():
        by_users[(frozenset(users), partition)].append(account)
    groups = []
    for (user_set, partition), accounts in sorted(by_users.items(), key=lambda item: (sorted(item[1]), item[0][1])):
        for account_chunk in _chunks(accounts):
            for user_chunk in _chunks(user_set):
                groups.append((account_chunk, user_chunk, partition))
    return groups


@dataclass(frozen=True)
class Command:
    kind: str  # add_account, modify_account, move_account, add_user, reset_user_limits, remove_user, ...
    argv: tuple[str, ...]

    def __str__(self) -> str:
        return "sacctmgr -i " + " ".join(self.argv)


@dataclass
class Plan:
    """The difference, kept structured so that any adapter can apply it its own way."""
    cluster: str
    new_accounts: list[AccountSpec] = field(default_factory=list)  # parents before children
    changed: list[tuple[AccountSpec, tuple[str, ...]]] = field(default_factory=list)  # (current, settings)
    moves: dict[str, list[str]] = field(default_factory=dict)  # new parent -> accounts
    user_adds: set[Assoc] = field(default_factory=set)
    user_limit_resets: dict[Assoc, tuple[str, ...]] = field(default_factory=dict)
    user_removals: set[Assoc] = field(default_factory=set)  # associations, users kept
    whole_users: list[str] = field(default_factory=list)  # users left with no association at all
    account_removals: list[list[str]] = field(default_factory=list)  # children first

    def __bool__(self) -> bool:
        return bool(self.new_accounts or self.changed or self.moves or self.user_adds or self.user_limit_resets
                    or self.user_removals or self.whole_users or self.account_removals)

    @property
    def where_cluster(self) -> str:
        return f"cluster={names.validate_account_name(self.cluster)}"

    def commands(self) -> list[Command]:
        """sacctmgr commands, one per group of accounts or users with equal settings."""
        commands: list[Command] = []
        grouped: dict[tuple, list[str]] = defaultdict(list)
        for spec in self.new_accounts:
            grouped[(spec.parent, spec.tres_mins, spec.submit_jobs, spec.running_jobs)].append(spec.name)
        for (parent, tres, submit, running), accounts in grouped.items():  # insertion order: parents first
            for chunk in _chunks(accounts):
                commands.append(Command("add_account", (
                    "add", "account", ",".join(chunk), self.where_cluster, f"parent={parent}",
                    *limit_args(dict(tres), submit, running))))
        changes: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for spec, settings in self.changed:
            changes[settings].append(spec.name)
        for settings, accounts in sorted(changes.items()):
            for chunk in _chunks(accounts):
                commands.append(Command("modify_account", ("modify", "account", "where", f"name={','.join(chunk)}",
                                                           self.where_cluster, "set", *settings)))
        commands += self.move_commands()
        for accounts, users, partition in _user_groups(self.user_adds):
            commands.append(Command("add_user", ("add", "user", ",".join(users), f"account={','.join(accounts)}",
                                                 *_partition_arg(partition), self.where_cluster)))
        return commands + self.removal_commands()

    def move_commands(self) -> list[Command]:
        return [Command("move_account", ("modify", "account", "where", f"name={','.join(chunk)}",
                                         self.where_cluster, "set", f"parent={parent}"))
                for parent, accounts in sorted(self.moves.items()) for chunk in _chunks(accounts)]

    def removal_commands(self) -> list[Command]:
        """Hand-set user limits cleared, then associations, users and accounts removed."""
        commands = [Command("reset_user_limits", ("modify", "user", "where", f"name={user}", f"account={account}",
                                                  *_partition_arg(partition), self.where_cluster, "set", *settings))
                    for (account, user, partition), settings in sorted(self.user_limit_resets.items())]
        commands += [Command("delete_user", ("delete", "user", "where", f"name={','.join(chunk)}", self.where_cluster))
                     for chunk in _chunks(self.whole_users)]
        for accounts, users, partition in _user_groups(self.user_removals):
            commands.append(Command("remove_user", ("delete", "user", "where", f"name={','.join(users)}",
                                                    f"account={','.join(accounts)}", *_partition_arg(partition),
                                                    self.where_cluster)))
        commands += [Command("remove_account", ("delete", "account", "where", f"name={','.join(chunk)}",
                                                self.where_cluster)) for chunk in self.account_removals]
        return commands

    def load_files(self, max_entries: int = 2000) -> list[str]:
        """The additions and limit changes as ``sacctmgr load`` files of at most ``max_entries``
        accounts and users each (each file one process and one slurmdbd commit; parents come
        before children, in the same file or an earlier one).

        slurmdbd 22.05 renumbers its association tree for every association added, so a load
        costs about (added) x (already there); a bounded file commits its part in bounded
        time, where one huge file could run past any timeout and then take far longer to roll
        back than it ran.
        """
        blocks: dict[str, list[str]] = defaultdict(list)
        for spec in self.new_accounts:
            blocks[spec.parent].append(_account_line(spec.name, limit_args(dict(spec.tres_mins), spec.submit_jobs,
                                                                           spec.running_jobs)))
        for current, settings in self.changed:  # under the parent it has now; a move follows
            blocks[current.parent].append(_account_line(current.name, list(settings)))
        for account, user, partition in sorted(self.user_adds):
            line = f"User - '{names.validate_user_name(user)}'"
            if partition:
                line += f":Partition='{names.validate_partition_name(partition)}'"
            blocks[account].append(line)
        entries = [(parent, line) for parent, lines in blocks.items() for line in lines]
        files = []
        for start in range(0, len(entries), max_entries):
            lines = [f"Cluster - '{names.validate_account_name(self.cluster)}'"]
            previous = None
            for parent, line in entries[start:start + max_entries]:
                if parent != previous:
                    lines.append(f"Parent - '{names.validate_account_name(parent)}'")
                    previous = parent
                lines.append(line)
            files.append("\n".join(lines) + "\n")
        return files

def _partition_arg(partition: str) -> tuple[str, ...]:
    return (f"partition={names.validate_partition_name(partition)}",) if partition else ()


def _account_line(name: str, settings: list[str]) -> str:
    return ":".join([f"Account - '{names.validate_account_name(name)}'", *settings])


def _user_limit_reset(limits: str) -> tuple[str, ...]:
    """`set` arguments clearing every limit listed in an association's limit text."""
    settings = []
    for part in limits.split():
        key, _, value = part.partition("=")
        if key == "GrpTRESMins":
            settings.append("GrpTRESMins=" + ",".join(f"{t.partition('=')[0]}=-1" for t in value.split(",")))
        else:
            settings.append(f"{key}=-1")
    return tuple(settings)


def plan(desired: SlurmState, actual: ActualState, cluster: str, *, remove_drift: bool = False) -> Plan:
    """What turns ``actual`` into ``desired``.

    New accounts carry their limits from the start, so no moment exists in which a portal
    account is in Slurm without its limits. Limits on the portal's own accounts and
    associations are always put back to what the portal awarded. Accounts and associations
    the portal does not want under its top account are drift: left alone unless
    ``remove_drift`` (an association inside an account the portal manages is always removed:
    it would spend the grant).
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
    for _, user, _partition in result.user_adds:
        names.validate_user_name(user)
    drift_accounts = {a for a in have.accounts if a not in desired.accounts}
    gone = {assoc for assoc in have.users - desired.users
            if assoc[0] in desired.accounts or (remove_drift and assoc[0] in drift_accounts)}
    result.user_limit_resets = {assoc: _user_limit_reset(limits) for assoc, limits in have.user_limits.items()
                                if assoc in desired.users}
    _plan_removals(result, gone, actual)
    if remove_drift and drift_accounts:
        # Children before parents: Slurm refuses to delete an account that still has some.
        by_depth: dict[int, list[str]] = defaultdict(list)
        for account in drift_accounts:
            by_depth[_depth(have.accounts[account], have.accounts)].append(account)
        result.account_removals = [chunk for depth in sorted(by_depth, reverse=True) for chunk in _chunks(by_depth[depth])]
    return result


def _plan_removals(result: Plan, gone: set[Assoc], actual: ActualState) -> None:
    # A user left with no association at all on the cluster is removed whole (Slurm keeps
    # no user without an account); otherwise only the associations go.
    left: dict[str, set[tuple[str, str]]] = {u: set(actual.all_user_assocs.get(u, ())) for _, u, _ in gone}
    for account, user, partition in gone:
        left[user].discard((account, partition))
    result.whole_users = sorted(u for u, assocs in left.items() if not assocs) if actual.complete else []
    result.user_removals = {assoc for assoc in gone if assoc[1] not in result.whole_users}


@dataclass(frozen=True)
class Drift:
    """What the cluster has under the portal's top account that the portal did not make."""
    accounts: list[AccountSpec]  # accounts the portal does not want
    associations: list[Assoc]  # user associations it does not want (partition-level ones too)
    limits: list[tuple[str, str, str, str]]  # (account, limit, wanted, found): changed by hand
    user_limits: list[tuple[Assoc, str]]  # limits set by hand on the portal's user associations

    def __bool__(self) -> bool:
        return bool(self.accounts or self.associations or self.limits or self.user_limits)


def drift(desired: SlurmState, actual: ActualState) -> Drift:
    have = actual.managed
    accounts = sorted((s for s in have.accounts.values() if s.name not in desired.accounts), key=lambda s: s.name)
    limits = [(name, *difference) for name, spec in sorted(desired.accounts.items()) if name in have.accounts
              for difference in spec.limit_differences(have.accounts[name])]
    user_limits = sorted((assoc, text) for assoc, text in have.user_limits.items() if assoc in desired.users)
    return Drift(accounts, sorted(have.users - desired.users), limits, user_limits)
