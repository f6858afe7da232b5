"""Bring a large site into a throwaway Slurm cluster's accounting in seconds, for benches only.

slurmdbd 22.05 keeps associations as a nested set: every association added shifts the
``lft``/``rgt`` of every association to its right, so ``sacctmgr`` needs (associations
added) x (associations there) row updates. Loading 5,000 projects (about 65,000
associations) that way takes hours on two cores, although what a bench measures afterwards
(one change on a site of that size) takes a second. This module writes the rows
``sacctmgr load`` would have written straight into the cluster's MariaDB tables, numbers
the whole tree once, and restarts slurmdbd and slurmctld so both read it back.

It is not a way to run a real cluster: the caller must show that Slurm then holds exactly
what the portal wants, which :func:`bulk_load` callers do with a full reconcile that must
find nothing to change (it reads everything back through ``sacctmgr``).
"""
from __future__ import annotations

import subprocess
import time
from collections import defaultdict

from portal.slurm.accounting import SlurmState


def _sql_text(value: str) -> str:
    # Account, user and partition names were validated by the portal (letters, digits, -_.).
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


class SlurmDatabase:
    """The cluster's accounting database, through the mysql client as MariaDB's root."""

    def __init__(self, cluster) -> None:
        self.cluster = cluster
        self.table = f"{cluster.cluster_name}_assoc_table"

    def run(self, sql: str) -> list[list[str]]:
        done = subprocess.run(["mysql", "-h", self.cluster.db_host, "-P", str(self.cluster.db_port), "-u", "root",
                               "--batch", "--skip-column-names", self.cluster.db_name],
                              input=sql, capture_output=True, text=True, timeout=1800, check=False)
        if done.returncode:
            raise RuntimeError(f"mysql failed: {done.stderr.strip()[:500]}")
        return [line.split("\t") for line in done.stdout.splitlines()]


def _tres_ids(database: SlurmDatabase) -> dict[str, int]:
    ids = {}
    for tres_id, kind, name in database.run("SELECT id, type, name FROM tres_table WHERE deleted = 0;"):
        ids[f"{kind}/{name}" if name else kind] = int(tres_id)
    return ids


def _null(value: int | None) -> str:
    return "NULL" if value is None else str(int(value))


def bulk_load(cluster, desired: SlurmState) -> dict[str, int]:
    """Add every account and user association of ``desired`` that the cluster lacks.

    Accounts that exist already are left as they are (their limits included): load a site
    whose first part came in through ``sacctmgr``, then let a full reconcile prove the rest.
    Returns how many accounts, users and associations were added.
    """
    database = SlurmDatabase(cluster)
    now = int(time.time())
    tres = _tres_ids(database)
    accounts = {row[0] for row in database.run("SELECT name FROM acct_table WHERE deleted = 0;")}
    users = {row[0] for row in database.run("SELECT name FROM user_table WHERE deleted = 0;")}
    existing = {(u, a, p) for u, a, p in database.run(
        f"SELECT user, acct, `partition` FROM `{database.table}` WHERE deleted = 0;")}
    with_default = {u for u, a, p in existing if u}

    statements = ["SET autocommit = 0;"]
    acct_rows, assoc_rows, user_rows = [], [], []
    for spec in desired.accounts.values():
        if spec.name in accounts:
            continue
        limits = ",".join(f"{i}={m}" for i, m in sorted((tres[t], m) for t, m in spec.tres_mins))
        acct_rows.append(f"({now},{now},0,{_sql_text(spec.name)},{_sql_text(spec.name)},{_sql_text(spec.parent)})")
        assoc_rows.append(f"({now},{now},0,0,'',{_sql_text(spec.name)},'',{_sql_text(spec.parent)},0,0,"
                          f"{_sql_text(limits)},{_null(spec.submit_jobs)},{_null(spec.running_jobs)})")
    for account, user, partition in sorted(desired.users):
        if user not in users:
            users.add(user)
            user_rows.append(f"({now},{now},0,{_sql_text(user)},1)")
        if (user, account, partition or "") in existing:
            continue
        is_default = 0 if user in with_default else 1
        with_default.add(user)
        assoc_rows.append(f"({now},{now},0,{is_default},{_sql_text(user)},{_sql_text(account)},"
                          f"{_sql_text(partition or '')},'',0,0,'',NULL,NULL)")
    for table, columns, rows in (
            ("acct_table", "creation_time, mod_time, deleted, name, description, organization", acct_rows),
            ("user_table", "creation_time, mod_time, deleted, name, admin_level", user_rows),
            (database.table, "creation_time, mod_time, deleted, is_def, user, acct, `partition`, parent_acct,"
                             " lft, rgt, grp_tres_mins, grp_submit_jobs, grp_jobs", assoc_rows)):
        for start in range(0, len(rows), 5000):
            statements.append(f"INSERT INTO `{table}` ({columns}) VALUES {','.join(rows[start:start + 5000])};")
    statements.append("COMMIT;")
    database.run("\n".join(statements))
    _renumber(database)
    # slurmctld keeps its own copy of the association tree, read from slurmdbd at start.
    cluster.stop()
    cluster.start(timeout=180)
    return {"accounts": len(acct_rows), "users": len(user_rows),
            "associations": len(assoc_rows)}


def _renumber(database: SlurmDatabase) -> None:
    """Number the whole association tree (root, then accounts, then user associations) anew."""
    rows = database.run(f"SELECT id_assoc, user, acct, parent_acct FROM `{database.table}` WHERE deleted = 0;")
    account_row: dict[str, str] = {}
    children: dict[str, list[str]] = defaultdict(list)  # account -> association ids under it
    for assoc_id, user, account, parent in rows:
        if user:
            children[account].append(assoc_id)
        else:
            account_row[account] = assoc_id
            if parent:
                children[parent].append(assoc_id)
    by_id = {assoc_id: (user, account) for assoc_id, user, account, _ in rows}
    numbers: list[tuple[str, int, int]] = []
    counter = 0

    # Iterative depth-first walk: the tree is deep enough for recursion only in theory.
    stack: list[tuple[str, bool]] = [(account_row["root"], False)]
    opened: dict[str, int] = {}
    while stack:
        assoc_id, closing = stack.pop()
        if closing:
            counter += 1
            numbers.append((assoc_id, opened.pop(assoc_id), counter))
            continue
        counter += 1
        opened[assoc_id] = counter
        stack.append((assoc_id, True))
        user, account = by_id[assoc_id]
        if not user:
            stack.extend((child, False) for child in reversed(children.get(account, [])))
    if len(numbers) != len(rows):
        raise RuntimeError(f"{len(rows) - len(numbers)} association(s) are not under root")
    statements = ["SET autocommit = 0;",
                  "CREATE TEMPORARY TABLE portal_bench_numbers (id INT UNSIGNED PRIMARY KEY, lft INT, rgt INT);"]
    for start in range(0, len(numbers), 5000):
        values = ",".join(f"({i},{lft},{rgt})" for i, lft, rgt in numbers[start:start + 5000])
        statements.append(f"INSERT INTO portal_bench_numbers VALUES {values};")
    statements += [f"UPDATE `{database.table}` a JOIN portal_bench_numbers n ON a.id_assoc = n.id"
                   f" SET a.lft = n.lft, a.rgt = n.rgt;", "COMMIT;"]
    database.run("\n".join(statements))
