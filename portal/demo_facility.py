"""A synthetic facility at scale, for ``flask demo generate`` and the page benchmarks.

N projects, each with a PI and five members, an awarded proposal in one of a handful of calls
(EuroHPC-style access modes), a grant with a CPU and a GPU allocation on one of two sites,
and about ``usage_per_project`` job rows in the usage ledger. Internally consistent: project
codes and Slurm account names follow the award and reconcile rules, the grant summaries are
refreshed from the ledger rows, and nothing is left for Slurm to do (the sites have none).

Fast: rows are planned in Python with ids computed up front and written with Core
``executemany`` inserts, a few thousand projects at a time in one transaction; one password
hash is shared by every generated person. The caller commits.
"""
from __future__ import annotations

import random
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, insert, select, text
from werkzeug.security import generate_password_hash

from portal.audit.models import AuditEvent
from portal.calls.models import Call
from portal.calls.operations import create_call, seed_access_modes
from portal.clock import utcnow
from portal.extensions import db
from portal.grants.models import Grant, GrantAllocation, GrantStatus, JobUsage
from portal.grants.reconcile import _pool_suffix, account_name_for, site_state
from portal.grants.summary import refresh_usage_summaries
from portal.identity.models import Role, RoleGrant, User
from portal.projects.models import Membership, Project, ProjectRole, ProjectStatus
from portal.proposals.models import Invitation, Proposal, ProposalEvent, ProposalRequest, ProposalState
from portal.sites.models import Partition, ResourceKind, Site

PASSWORD = "facility-demo"  # every generated person's password (shown by the command)
STAFF_EMAIL = "facility-staff@example.eu"
BATCH_PROJECTS = 500  # projects planned and written together
INSERT_ROWS = 10_000  # rows per executemany
MEMBERS = 5  # besides the PI

# (name, Slurm cluster, partitions: (name, kind, nodes, CPUs per node, GPUs per node))
SITES = (
    ("Piast AI Factory", "piast", (("standard", ResourceKind.CPU, 2000, 128, 0),
                                   ("accel", ResourceKind.GPU, 300, 64, 4))),
    ("Baltic AI Centre", "baltic", (("cpu", ResourceKind.CPU, 800, 96, 0),
                                    ("gpu-h100", ResourceKind.GPU, 120, 64, 4))),
)
# (code prefix, title, access mode, allocation starts this many days ago, lasts days, share of projects)
CALLS = (
    ("reg", "EuroHPC Regular Access", "Regular", 500, 365, 3),
    ("reg", "EuroHPC Regular Access", "Regular", 200, 365, 4),
    ("ext", "EuroHPC Extreme Scale Access", "Extreme Scale", 100, 365, 1),
    ("dev", "EuroHPC Development Access", "Development", 250, 365, 2),
    ("bench", "EuroHPC Benchmark Access", "Benchmark", 45, 90, 1),
    ("aif-fast", "AI Factory Fast Lane", "AI Factory Fast Lane", 60, 180, 2),
    ("aif-large", "AI Factory Large Scale", "AI Factory Large Scale", 30, 365, 1),
)
FIRST = {"pl": (("Żaneta", "f"), ("Agnieszka", "f"), ("Małgorzata", "f"), ("Łucja", "f"), ("Zofia", "f"),
                ("Bożena", "f"), ("Łukasz", "m"), ("Paweł", "m"), ("Michał", "m"), ("Wojciech", "m"),
                ("Jędrzej", "m"), ("Mikołaj", "m"), ("Grzegorz", "m"), ("Katarzyna", "f")),
         "lt": (("Jūratė", "f"), ("Rūta", "f"), ("Eglė", "f"), ("Aušra", "f"), ("Žydrė", "f"), ("Gintarė", "f"),
                ("Jonas", "m"), ("Mantas", "m"), ("Žygimantas", "m"), ("Vytautas", "m"), ("Darius", "m"),
                ("Linas", "m")),
         "eu": (("Jörg", "m"), ("Anna", "f"), ("François", "m"), ("Giulia", "f"), ("Ana", "f"), ("Mikko", "m"),
                ("Sofie", "f"), ("Tomás", "m"))}
LAST = {"pl": (("Kowalczyk", "Kowalczyk"), ("Wiśniewski", "Wiśniewska"), ("Wójcik", "Wójcik"),
               ("Zieliński", "Zielińska"), ("Dąbrowski", "Dąbrowska"), ("Woźniak", "Woźniak"),
               ("Kozłowski", "Kozłowska"), ("Żółkiewski", "Żółkiewska"), ("Szymański", "Szymańska"),
               ("Mazur", "Mazur")),
        "lt": (("Petrauskas", "Petrauskienė"), ("Kazlauskas", "Kazlauskienė"), ("Jankauskas", "Jankauskienė"),
               ("Stankevičius", "Stankevičienė"), ("Žukauskas", "Žukauskienė"), ("Butkus", "Butkienė"),
               ("Paulauskas", "Paulauskaitė"), ("Vasiliauskas", "Vasiliauskaitė")),
        "eu": (("Müller", "Müller"), ("Lefèvre", "Lefèvre"), ("Bianchi", "Bianchi"), ("García", "García"),
               ("Virtanen", "Virtanen"), ("Jensen", "Jensen"), ("Novák", "Nováková"))}
ORIGINS = (("pl", "PL", 5), ("lt", "LT", 3), ("eu", None, 2))
EU_COUNTRIES = ("DE", "FR", "IT", "ES", "FI", "DK", "CZ", "NL")
INSTITUTES = {"PL": ("Politechnika Łódzka", "Uniwersytet Wrocławski", "AGH Kraków"),
              "LT": ("Vilniaus universitetas", "Kauno technologijos universitetas"),
              None: ("Forschungszentrum Jülich", "Inria", "CINECA", "Barcelona Supercomputing Center", "CSC")}
TOPICS = ("Baltic language models", "protein folding", "weather downscaling", "medical image segmentation",
          "speech recognition for Lithuanian", "Polish legal text retrieval", "materials discovery",
          "traffic forecasting", "multimodal document understanding", "climate emulators")
METHODS = ("Fine-tuning", "Scaling laws of", "Distilled", "Federated training of", "Efficient inference for",
           "Foundation models for", "Graph networks for", "Reinforcement learning in")
STATES = (("COMPLETED", 85), ("FAILED", 7), ("TIMEOUT", 4), ("CANCELLED", 3), ("OUT_OF_MEMORY", 1))
CPU_SIZES = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
GPU_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
LONGEST_JOB = 48 * 3600
_FOLD = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "ß": "ss"})


class FacilityNotEmpty(RuntimeError):
    """The database already holds projects (generate adds only with ``force``)."""


class SchemaNotCurrent(RuntimeError):
    """The database is not at the latest migration."""


@dataclass
class FacilityStats:
    projects: int = 0
    users: int = 0
    memberships: int = 0
    proposals: int = 0
    grants: int = 0
    active_grants: int = 0
    expired_grants: int = 0
    near_exhaustion: int = 0  # allocations with 90 % or more of the award used
    allocations: int = 0
    usage_rows: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # per stage, wall time
    password: str = PASSWORD
    staff_email: str = STAFF_EMAIL


def ascii_fold(name: str) -> str:
    """'Żaneta Jūratė' -> 'Zaneta Jurate': for e-mail addresses and Unix user names."""
    decomposed = unicodedata.normalize("NFKD", name.translate(_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def check_schema() -> None:
    """Refuse a database that the migrations have not brought to the latest revision."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from portal.extensions import migrate

    heads = set(ScriptDirectory.from_config(migrate.get_config()).get_heads())
    current = set(MigrationContext.configure(db.session.connection()).get_current_heads())
    if current != heads:
        raise SchemaNotCurrent(f"The database is at revision {sorted(current) or 'none'}, the migrations at "
                               f"{sorted(heads)}: run `flask db upgrade` first.")


class _Ids:
    """The next free id of each table, read once: rows get their ids before they are written."""

    def __init__(self, *models):
        self.next = {m.__table__.name: (db.session.scalar(select(func.max(m.id))) or 0) + 1 for m in models}

    def take(self, model, count: int = 1) -> int:
        first = self.next[model.__table__.name]
        self.next[model.__table__.name] = first + count
        return first


class _Writer:
    """Buffers rows per table and writes them with executemany, timing each table."""

    ORDER = (User, RoleGrant, Project, Membership, Grant, GrantAllocation, Proposal, ProposalRequest, Invitation,
             ProposalEvent, AuditEvent, JobUsage)

    def __init__(self, seconds: dict[str, float]):
        self.rows: dict[type, list[dict]] = {model: [] for model in self.ORDER}
        self.seconds = seconds

    def add(self, model, row: dict) -> None:
        self.rows[model].append(row)

    def flush(self) -> None:
        for model in self.ORDER:  # parents before children: foreign keys hold at every statement
            rows, started = self.rows[model], time.perf_counter()
            for start in range(0, len(rows), INSERT_ROWS):
                db.session.execute(insert(model.__table__), rows[start:start + INSERT_ROWS])
            rows.clear()
            name = model.__table__.name
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


def _sites() -> list[list[Partition]]:
    """The two sites' (CPU, GPU) partitions, made without Slurm where missing (slurm.conf absent)."""
    result = []
    for name, cluster, partitions in SITES:
        site = db.session.scalar(select(Site).where(Site.slurm_cluster == cluster))
        if site is None:
            site = Site(name=name, slurm_cluster=cluster, slurm_conf=f"/nonexistent/{cluster}/slurm.conf",
                        description="Generated by `flask demo generate`: no Slurm behind it.")
            db.session.add(site)
        existing = {p.name: p for p in site.partitions}
        for pname, kind, nodes, cpus, gpus in partitions:
            if pname not in existing:
                existing[pname] = Partition(name=pname, resource_kind=kind, kind_set_by_staff=True, total_nodes=nodes,
                                            cpus_per_node=cpus, gpus_per_node=gpus, max_time_minutes=2880,
                                            is_default=kind is ResourceKind.CPU)
                site.partitions.append(existing[pname])
        result.append([existing[p[0]] for p in partitions])
        db.session.flush()
        site_state(site).ingested_until = utcnow().replace(tzinfo=None)  # the ledger is as of now
    return result


def _free_call_code(prefix: str) -> str:
    code, n = prefix, 1
    while db.session.scalar(select(Call.id).where(Call.code == code)) is not None:
        n += 1
        code = f"{prefix}-{n}"
    return code


def _calls(sites: list[list[Partition]], planned: list[dict[int, list[int]]], today: date) -> list[Call]:
    """The calls, offering every partition: the awards planned in each, plus a margin."""
    modes = {mode.name: mode for mode in seed_access_modes()}
    partitions = [p for pair in sites for p in pair]
    calls = []
    for (prefix, title, mode, ago, days, _), awards in zip(CALLS, planned):
        start = today - timedelta(days=ago)
        closes = datetime(start.year, start.month, start.day) - timedelta(days=60)
        continuous = mode.startswith("AI Factory")
        offers = {}
        for p in partitions:
            minutes = awards.get(p.id, [0])
            offers[p.id] = (max(sum(minutes) * 1.2, 1000 * 60) / 60, max(max(minutes), 60) / 60)
        calls.append(create_call(
            code=_free_call_code(f"{prefix}-{start:%y%m}"), title=f"{title} {start:%Y-%m}", access_mode=modes[mode],
            tracks=["scientific", "industry", "public_administration"], opens_at=closes - timedelta(days=75),
            closes_at=None if continuous else closes, allocation_start=start,
            allocation_end=start + timedelta(days=days),
            offers=offers, min_reviewers=0 if continuous else 2,
            description="Generated by `flask demo generate`."))
    return calls


def _award(rng: random.Random, kind: ResourceKind) -> int:
    """Awarded minutes: core-hours around 200,000, GPU-hours around 8,000, heavy-tailed."""
    hours = rng.lognormvariate(12.2, 0.8) if kind is ResourceKind.CPU else rng.lognormvariate(9.0, 0.9)
    return max(60, round(hours / 100) * 100 * 60)


def _used_share(rng: random.Random, elapsed: float, kind: str) -> float:
    """Share of the award a grant has used: mostly near its pace, some idle, some near exhaustion."""
    if kind == "near":
        return rng.uniform(0.9, 0.995)
    if kind == "over":
        return rng.uniform(1.0, 1.03)
    if kind == "idle":
        return elapsed * rng.uniform(0.01, 0.15)
    return min(elapsed * rng.uniform(0.5, 1.3), 0.97)


def _pace(rng: random.Random) -> str:
    draw = rng.random()
    return "near" if draw < 0.10 else "over" if draw < 0.13 else "idle" if draw < 0.25 else "steady"


class _Planner:
    """Plans one project at a time: people, project, proposal, grant, allocations, jobs."""

    def __init__(self, rng: random.Random, ids: _Ids, writer: _Writer, stats: FacilityStats, password_hash: str,
                 now: datetime, taken_accounts: set[str], usage_per_project: int):
        self.rng, self.ids, self.w, self.stats = rng, ids, writer, stats
        self.usage_per_project = usage_per_project
        self.password_hash, self.now, self.today = password_hash, now, now.date()
        self.taken = taken_accounts
        self.job_base = 1_000_000

    def person(self, created: datetime, roles: tuple[Role, ...]) -> tuple[int, str, str]:
        """A user with their roles: (id, Unix user name, e-mail)."""
        rng, user_id = self.rng, self.ids.take(User)
        origin, country, _ = rng.choices(ORIGINS, [o[2] for o in ORIGINS])[0]
        country = country or rng.choice(EU_COUNTRIES)
        first, gender = rng.choice(FIRST[origin])
        last = rng.choice(LAST[origin])[0 if gender == "m" else 1]
        folded_first, folded_last = ascii_fold(first).lower(), re.sub(r"[^a-z]", "", ascii_fold(last).lower())
        unix = f"{folded_first[0]}{folded_last[:20]}{user_id}"
        email = f"{folded_first}.{folded_last}.{user_id}@example.eu"
        self.w.add(User, {"id": user_id, "email": email,
                          "name": f"{first} {last}",
                          "affiliation": rng.choice(INSTITUTES.get(country, INSTITUTES[None])),
                          "country": country, "unix_username": unix, "password_hash": self.password_hash,
                          "active": True, "created_at": created})
        for role in roles:
            self.w.add(RoleGrant, {"id": self.ids.take(RoleGrant), "user_id": user_id, "role": role, "source": ""})
        self.stats.users += 1
        return user_id, unix, email

    def account(self, base: str, suffix: str, grant_id: int) -> str:
        name = f"{base[:31 - len(suffix)]}_{suffix}"
        if name in self.taken:  # the reconcile rule: the grant's id makes it unique
            suffix = f"{suffix}_{grant_id}"
            name = f"{base[:31 - len(suffix)]}_{suffix}"
        self.taken.add(name)
        return name

    def project(self, call: Call, code: str, partitions: list[Partition], awards: list[int]) -> None:
        rng = self.rng
        submitted = call.closes_at or call.opens_at + timedelta(days=rng.uniform(0, 30))
        created = submitted - timedelta(days=rng.uniform(5, 40))
        awarded_at = submitted + timedelta(days=rng.uniform(20, 50))
        pi_id, pi_unix, _ = self.person(created, (Role.PI, Role.MEMBER))
        team = [self.person(created, (Role.MEMBER,)) for _ in range(MEMBERS)]
        title = f"{rng.choice(METHODS)} {rng.choice(TOPICS)}"
        project_id, grant_id = self.ids.take(Project), self.ids.take(Grant)
        account = account_name_for(Project(code=code))
        self.taken.add(account)
        self.w.add(Project, {"id": project_id, "code": code, "title": title, "status": ProjectStatus.ACTIVE,
                             "description": f"{title}: generated demo project.", "slurm_account": account,
                             "created_at": awarded_at})
        roles = [ProjectRole.PI, ProjectRole.CO_PI] + [ProjectRole.MEMBER] * (MEMBERS - 1)
        for user_id, role in zip([pi_id, *(member[0] for member in team)], roles):
            self.w.add(Membership, {"id": self.ids.take(Membership), "project_id": project_id, "user_id": user_id,
                                    "role": role, "joined_at": awarded_at})
        self.stats.memberships += MEMBERS + 1
        start, end = call.allocation_start, call.allocation_end
        expired = end <= self.today
        self.w.add(Grant, {"id": grant_id, "project_id": project_id, "title": f"{call.title}: {title}"[:300],
                           "funding_pool": None, "start_date": start, "end_date": end,
                           "status": GrantStatus.EXPIRED if expired else GrantStatus.ACTIVE, "created_at": awarded_at})
        self.stats.grants += 1
        self.stats.expired_grants += expired
        self.stats.active_grants += not expired
        proposal_id = self.ids.take(Proposal)
        self.proposal(proposal_id, call, pi_id, team, title, project_id, grant_id, created, submitted, awarded_at)
        pace = _pace(rng)
        users = [pi_unix, pi_unix] + [member[1] for member in team]  # the PI runs more than the others
        n_gpu = round(self.usage_per_project * 0.4)
        counts = (self.usage_per_project - n_gpu, n_gpu)  # (CPU, GPU) jobs
        for partition, minutes, jobs in zip(partitions, awards, counts):
            allocation_id = self.ids.take(GrantAllocation)
            sub = self.account(account, _pool_suffix(partition.pool_name), grant_id)
            self.w.add(GrantAllocation, {"id": allocation_id, "grant_id": grant_id, "partition_id": partition.id,
                                         "resource_kind": partition.resource_kind, "awarded_minutes": minutes,
                                         "slurm_account": sub})
            self.w.add(ProposalRequest, {"id": self.ids.take(ProposalRequest), "proposal_id": proposal_id,
                                         "partition_id": partition.id, "recommended_minutes": minutes,
                                         "requested_minutes": minutes + 60 * 100 * rng.randrange(0, 50)})
            self.stats.allocations += 1
            share = _used_share(rng, self.elapsed(start, end), pace)
            self.stats.near_exhaustion += share >= 0.9
            self.jobs(allocation_id, partition, sub, users, share * minutes * 60, jobs, start, end)

    def elapsed(self, start: date, end: date) -> float:
        return min(max((self.today - start).days / max((end - start).days, 1), 0.0), 1.0)

    def proposal(self, proposal_id: int, call: Call, pi_id: int, team: list[tuple[int, str, str]], title: str,
                 project_id: int, grant_id: int, created: datetime, submitted: datetime, awarded_at: datetime) -> None:
        rng = self.rng
        self.w.add(Proposal, {
            "id": proposal_id, "call_id": call.id, "pi_id": pi_id, "state": ProposalState.AWARDED, "title": title,
            "abstract": f"We propose {title.lower()} on the facility's CPU and GPU partitions.",
            "field_of_science": rng.choice(("Computer science", "Life sciences", "Earth sciences", "Physics",
                                            "Linguistics", "Engineering")),
            "track": rng.choice(("scientific", "scientific", "industry", "public_administration")),
            "justification": "Generated.", "code_description": "PyTorch with DeepSpeed; MPI for the CPU stages.",
            "scaling_evidence": "Strong scaling to 64 GPUs at 85 % efficiency.",
            "storage_gib": 1024 * rng.randrange(1, 50),
            "created_at": created, "updated_at": awarded_at, "submitted_at": submitted, "admissibility_comment": "",
            "technical_feasible": True, "technical_comment": "Feasible as requested.",
            "reply_deadline": awarded_at - timedelta(days=10) if call.needs_peer_review else None,
            "reply": "", "decision_feedback": "Awarded.", "project_id": project_id, "grant_id": grant_id})
        for n, (user_id, _, email) in enumerate(team):
            self.w.add(Invitation, {"id": self.ids.take(Invitation), "proposal_id": proposal_id, "email": email,
                                    "role": ProjectRole.CO_PI if n == 0 else ProjectRole.MEMBER,
                                    "nonce": f"demo-{proposal_id}-{n}-{rng.getrandbits(64):016x}",
                                    "invited_at": created, "accepted_at": created + timedelta(days=1),
                                    "accepted_by_id": user_id})
        decided_from = "reviewed" if call.needs_peer_review else "technically_assessed"
        for action, at, state in (("created", created, None), ("submitted", submitted, ["draft", "submitted"]),
                                  ("awarded", awarded_at, [decided_from, "awarded"])):
            self.w.add(ProposalEvent, {"id": self.ids.take(ProposalEvent), "proposal_id": proposal_id, "at": at,
                                       "actor_id": pi_id if action != "awarded" else None, "action": action,
                                       "changes": {"state": state} if state else {}, "staff_only": False})
        self.w.add(AuditEvent, {"id": self.ids.take(AuditEvent), "created_at": awarded_at, "action": "award.granted",
                                "actor_id": None, "actor_label": "flask demo generate",
                                "target": f"proposal:{proposal_id}", "details": {"grant": grant_id},
                                "ip_address": None})
        self.stats.proposals += 1

    def jobs(self, allocation_id: int, partition: Partition, account: str, users: list[str], seconds: float,
             count: int, start: date, end: date) -> None:
        """``count`` jobs whose charged seconds add up to about ``seconds``, between the grant's start and now."""
        if count <= 0:
            return
        rng, gpu = self.rng, partition.resource_kind is ResourceKind.GPU
        weights = [rng.expovariate(1.0) for _ in range(count)]
        scale = seconds / (sum(weights) or 1.0)
        first = datetime(start.year, start.month, start.day)
        last = min(self.now, datetime(end.year, end.month, end.day))
        span = max((last - first).total_seconds(), 3600.0)
        states, state_weights = zip(*STATES)
        first_id = self.ids.take(JobUsage, count)
        for n, weight in enumerate(weights):
            target = weight * scale
            sizes = GPU_SIZES if gpu else CPU_SIZES
            size = next((s for s in sizes if target / s <= LONGEST_JOB), sizes[-1])
            elapsed = max(1, round(target / size))
            cpus = size * 16 if gpu else size
            began = first + timedelta(seconds=rng.uniform(0, max(span - elapsed, 0)))
            row_id = first_id + n
            self.w.add(JobUsage, {
                "id": row_id, "site_id": partition.site_id, "job_id": str(self.job_base + row_id), "account": account,
                "user": rng.choice(users), "partition": partition.name,
                "state": rng.choices(states, state_weights)[0],
                "submit_time": began - timedelta(seconds=rng.randrange(0, 6 * 3600)), "start_time": began,
                "end_time": began + timedelta(seconds=elapsed), "elapsed_seconds": elapsed, "alloc_cpus": cpus,
                "cpu_seconds": cpus * elapsed, "gpu_seconds": size * elapsed if gpu else 0,
                "allocation_id": allocation_id, "ingested_at": self.now})
        self.stats.usage_rows += count


def _plan_awards(rng: random.Random, projects: int, sites: list[list[Partition]]):
    """Each project's call, site and awarded minutes per partition; and the awards per call and partition."""
    plan, per_call = [], [{} for _ in CALLS]
    for _ in range(projects):
        call = rng.choices(range(len(CALLS)), [c[5] for c in CALLS])[0]
        partitions = sites[rng.randrange(len(sites))]
        awards = [_award(rng, p.resource_kind) for p in partitions]
        plan.append((call, partitions, awards))
        for partition, minutes in zip(partitions, awards):
            per_call[call].setdefault(partition.id, []).append(minutes)
    return plan, per_call


def _staff_user() -> None:
    from portal.identity.providers import create_local_user

    if db.session.scalar(select(User.id).where(User.email == STAFF_EMAIL)) is None:
        create_local_user(STAFF_EMAIL, "Facility Staff", PASSWORD, roles=[Role.STAFF])


def _project_codes(calls: list[Call], plan) -> list[str]:
    """The award rule's codes (call code, then a number counting the call's projects), never one taken."""
    taken = set(db.session.scalars(select(Project.code)))
    counters = {}
    codes = []
    for call_index, _, _ in plan:
        code = calls[call_index].code
        n = counters.get(code, 0)
        while True:
            n += 1
            candidate = f"{code}-{n:03d}"
            if candidate not in taken:
                break
        counters[code] = n
        taken.add(candidate)
        codes.append(candidate)
    return codes


def fix_sequences(models) -> None:
    """PostgreSQL: move each table's id sequence past the ids written explicitly (SQLite needs nothing)."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    for model in models:
        table = model.__table__.name
        db.session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"))


def generate_facility(projects: int, usage_per_project: int = 100, seed: int = 0,
                      progress: Callable[[int], None] | None = None, *, force: bool = False) -> FacilityStats:
    """Write a facility of ``projects`` projects into the (migrated) database; flushes, the caller commits.

    Raises :class:`SchemaNotCurrent` before the migrations ran, :class:`FacilityNotEmpty` when
    projects exist and ``force`` is not given. ``progress`` is called with the projects written.
    """
    if projects < 1 or usage_per_project < 0:
        raise ValueError("At least one project, and no negative number of usage rows.")
    check_schema()
    existing = db.session.scalar(select(func.count()).select_from(Project))
    if existing and not force:
        raise FacilityNotEmpty(f"The database already holds {existing} projects: generate into an empty one.")
    stats, clock = FacilityStats(), time.perf_counter()
    rng = random.Random(seed)
    now = utcnow().replace(tzinfo=None, microsecond=0)
    sites = _sites()
    plan, per_call = _plan_awards(rng, projects, sites)
    calls = _calls(sites, per_call, now.date())
    _staff_user()
    codes = _project_codes(calls, plan)
    taken = {name for name in db.session.scalars(select(GrantAllocation.slurm_account)) if name}
    taken |= {name for name in db.session.scalars(select(Project.slurm_account)) if name}
    ids = _Ids(*_Writer.ORDER)
    first_grant = ids.next[Grant.__table__.name]
    writer = _Writer(stats.seconds)
    password_hash = generate_password_hash(PASSWORD)  # once: hashing is slow on purpose
    stats.seconds["sites, calls, plan"] = time.perf_counter() - clock
    planner = _Planner(rng, ids, writer, stats, password_hash, now, taken, usage_per_project)
    for start in range(0, projects, BATCH_PROJECTS):
        clock = time.perf_counter()
        batch = range(start, min(start + BATCH_PROJECTS, projects))
        for n in batch:
            call_index, partitions, awards = plan[n]
            planner.project(calls[call_index], codes[n], partitions, awards)
        stats.seconds["rows in Python"] = stats.seconds.get("rows in Python", 0.0) + time.perf_counter() - clock
        writer.flush()
        stats.projects += len(batch)
        if progress:
            progress(len(batch))
    clock = time.perf_counter()
    # The summaries the lists read (used seconds, most- and least-used pool), by the ingestion's own rule.
    refresh_usage_summaries(range(first_grant, ids.next[Grant.__table__.name]))
    stats.seconds["usage summaries"] = time.perf_counter() - clock
    clock = time.perf_counter()
    fix_sequences(_Writer.ORDER)
    db.session.flush()
    stats.seconds["sequences"] = time.perf_counter() - clock
    return stats


def refresh_planner_statistics() -> None:
    """After a bulk load into PostgreSQL: its statistics and visibility map brought up to date.

    A facility that grew to this size over years has them from autovacuum; a fresh load of a
    million rows has none, and the planner then guesses (seq scans where an index-only scan
    of a covering index would do). VACUUM cannot run inside the load's transaction.

    SQLite is left without ANALYZE on purpose: its statistics keep only the average number of
    rows per value, so on a skewed column (nearly every generated proposal is awarded) it
    judges the index on proposal state useless and the staff queues went from 13 to 33 ms;
    without statistics it uses the index, which is right for the few waiting proposals.
    """
    engine = db.engine
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
