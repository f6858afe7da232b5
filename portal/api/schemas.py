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
