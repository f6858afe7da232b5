from marshmallow import Schema, fields


class UserSchema(Schema):
    id = fields.Int()
    name = fields.Str()
    email = fields.Email()
    affiliation = fields.Str()
    unix_username = fields.Str(allow_none=True)
    roles = fields.Function(lambda u: sorted(r.value for r in u.roles))


class PartitionSchema(Schema):
    id = fields.Int()
    name = fields.Str()
    resource_kind = fields.Function(lambda p: p.resource_kind.value)
    is_default = fields.Bool()
    state = fields.Str()
    max_time_minutes = fields.Int(allow_none=True, metadata={"description": "null means unlimited"})
    default_time_minutes = fields.Int(allow_none=True)
    max_nodes = fields.Int(allow_none=True, metadata={"description": "null means unlimited"})
    total_nodes = fields.Int()
    cpus_per_node = fields.Int()
    max_cpus_per_node = fields.Int(allow_none=True, metadata={"description": "Slurm's MaxCPUsPerNode; null: no limit"})
    gpus_per_node = fields.Int()
    mem_per_node_mb = fields.Int(allow_none=True)
    synced_at = fields.DateTime()


class SiteSchema(Schema):
    id = fields.Int()
    name = fields.Str()
    slurm_cluster = fields.Str()
    description = fields.Str()
    last_sync_at = fields.DateTime(allow_none=True)
    last_sync_error = fields.Str(allow_none=True)
    partitions = fields.List(fields.Nested(PartitionSchema))


class MemberSchema(Schema):
    user_id = fields.Int()
    name = fields.Function(lambda m: m.user.name)
    role = fields.Function(lambda m: m.role.value)


class ProjectSchema(Schema):
    id = fields.Int()
    code = fields.Str()
    title = fields.Str()
    description = fields.Str()
    status = fields.Function(lambda p: p.status.value)
    slurm_account = fields.Str(allow_none=True)
    members = fields.List(fields.Nested(MemberSchema), attribute="memberships")


class BenchmarkMetricSchema(Schema):
    key = fields.Str()
    unit = fields.Str()
    mean = fields.Float(allow_none=True)
    stdev = fields.Float(allow_none=True)
    reference = fields.Float(allow_none=True)
    lower_bound = fields.Float(allow_none=True)
    upper_bound = fields.Float(allow_none=True)
    margin = fields.Float(allow_none=True)
    status = fields.Function(lambda m: m.status.value)
    message = fields.Str(allow_none=True)


class BenchmarkRunSummarySchema(Schema):
    id = fields.Int()
    system = fields.Str()
    partition = fields.Str()
    measured_at = fields.DateTime()
    array = fields.Str()
    nodes = fields.Int()
    ranks = fields.Int()
    verdict = fields.Function(lambda r: r.verdict.value)
    reference_key = fields.Str(allow_none=True)
    reference_origin = fields.Str(allow_none=True, metadata={"description": "the references file and version, "
                                                             "or the adopted reference, that judged the run"})


class BenchmarkRunSchema(BenchmarkRunSummarySchema):
    metrics = fields.List(fields.Nested(BenchmarkMetricSchema))
