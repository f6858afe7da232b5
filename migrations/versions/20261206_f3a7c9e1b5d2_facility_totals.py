"""facility totals kept by triggers: the grant count and each kind's awarded and used time

Revision ID: f3a7c9e1b5d2
Revises: b8e2f4a6c1d3
Create Date: 2026-12-06 01:45:00

The staff grants list shows how many grants there are and the awarded and used hours of
each resource kind. Summing 20,000 allocations for that on every view was most of the
database's work for the page on PostgreSQL; triggers now append each change to
``facility_total_changes`` (PostgreSQL: one row per counter and statement, from the
statement's transition tables; SQLite: per row), and the page sums those few rows.
"""
import sqlalchemy as sa
from alembic import op

revision = 'f3a7c9e1b5d2'
down_revision = 'b8e2f4a6c1d3'
branch_labels = None
depends_on = None

# What each row side (new/old) of a statement adds to the totals, as SELECT ... FROM it
_ALLOCATION_CHANGES = {
    "new": "SELECT resource_kind || '.awarded_minutes' AS counter, awarded_minutes AS amount FROM {t}"
           " UNION ALL SELECT resource_kind || '.used_seconds', used_seconds FROM {t}",
    "old": "SELECT resource_kind || '.awarded_minutes' AS counter, -awarded_minutes AS amount FROM {t}"
           " UNION ALL SELECT resource_kind || '.used_seconds', -used_seconds FROM {t}",
}
_GRANT_CHANGES = {"new": "SELECT 'grants' AS counter, 1 AS amount FROM {t}",
                  "old": "SELECT 'grants' AS counter, -1 AS amount FROM {t}"}
_CHANGES = {"grant_allocations": _ALLOCATION_CHANGES, "grants": _GRANT_CHANGES}
_TRIGGERS = [  # name, table, event, the row sides (new/old) the event has
    ("grant_allocations_totals_insert", "grant_allocations", "INSERT", ("new",)),
    ("grant_allocations_totals_update", "grant_allocations", "UPDATE", ("new", "old")),
    ("grant_allocations_totals_delete", "grant_allocations", "DELETE", ("old",)),
    ("grants_totals_insert", "grants", "INSERT", ("new",)),
    ("grants_totals_delete", "grants", "DELETE", ("old",)),
]


def _postgresql(name, table, event, sides):
    referencing = " ".join(f"{side.upper()} TABLE AS {side}_rows" for side in sides)
    union = " UNION ALL ".join(_CHANGES[table][side].format(t=f"{side}_rows") for side in sides)
    op.execute(f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO facility_total_changes (counter, amount)
            SELECT counter, SUM(amount) FROM ({union}) AS changes
            GROUP BY counter HAVING SUM(amount) <> 0;
            RETURN NULL;
        END $$""")
    op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {referencing}"
               f" FOR EACH STATEMENT EXECUTE FUNCTION {name}()")


def _sqlite(name, table, event, sides):
    # SQLite has no transition tables: the same changes, per row, where NEW and OLD stand for
    # the row. An update that changes none of the summed columns (a full refresh rewrites
    # every allocation's used seconds) adds nothing.
    rows = []
    for side in sides:
        ref, sign = side.upper(), ("-" if side == "old" else "")
        if table == "grants":
            rows.append(f"('grants', {sign}1)")
        else:
            rows += [f"({ref}.resource_kind || '.awarded_minutes', {sign}{ref}.awarded_minutes)",
                     f"({ref}.resource_kind || '.used_seconds', {sign}{ref}.used_seconds)"]
    when = ""
    if event == "UPDATE":
        when = (" WHEN OLD.resource_kind IS NOT NEW.resource_kind OR OLD.awarded_minutes IS NOT NEW.awarded_minutes"
                " OR OLD.used_seconds IS NOT NEW.used_seconds")
    op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW{when} BEGIN"
               f" INSERT INTO facility_total_changes (counter, amount) VALUES {', '.join(rows)}; END")


def upgrade():
    op.create_table('facility_total_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('counter', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_facility_total_changes'))
    )
    # What is there already, as one row per counter.
    op.execute("INSERT INTO facility_total_changes (counter, amount)"
               " SELECT 'grants', COUNT(*) FROM grants"
               " UNION ALL SELECT resource_kind || '.awarded_minutes', SUM(awarded_minutes) FROM grant_allocations"
               " GROUP BY resource_kind"
               " UNION ALL SELECT resource_kind || '.used_seconds', SUM(used_seconds) FROM grant_allocations"
               " GROUP BY resource_kind")
    # The covering index the sums were read from before.
    op.drop_index('ix_grant_allocations_kind_totals', table_name='grant_allocations')
    create = _postgresql if op.get_bind().dialect.name == "postgresql" else _sqlite
    for trigger in _TRIGGERS:
        create(*trigger)


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, table, *_ in _TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON {table}" if postgresql else f"DROP TRIGGER {name}")
        if postgresql:
            op.execute(f"DROP FUNCTION {name}()")
    op.drop_table('facility_total_changes')
    op.create_index('ix_grant_allocations_kind_totals', 'grant_allocations',
                    ['resource_kind', 'awarded_minutes', 'used_seconds'], unique=False)
