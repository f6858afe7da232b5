from flask_babel import gettext as _
from flask_login import current_user
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate

from portal.api.paging import PageArgs, list_endpoint
from portal.extensions import db
from portal.jobs import listing
from portal.jobs.operations import JobError, cancel_job, job_template, job_templates, plan_by_ids, plan_resubmission, resubmit_job, submit_job, visible_job
from portal.jobs.output import output_tails
from portal.sites.models import Partition
from portal.slurm.errors import SchedulerError
from portal.web.listing import paginate

blp = Blueprint("api_jobs", __name__, description="Job templates and jobs submitted through the portal")


class ParamSchema(Schema):
    name = fields.Str()
    type = fields.Str()
    label = fields.Str()
    help = fields.Str()
    default = fields.Raw(allow_none=True)
    min = fields.Int(allow_none=True)
    max = fields.Int(allow_none=True)
    choices = fields.List(fields.Str())
    feeds = fields.Str(metadata={"description": "an #SBATCH option, env:NAME, or var"})


class TemplateSchema(Schema):
    name = fields.Str()
    title = fields.Str()
    description = fields.Str()
    kind = fields.Str(metadata={"description": "cpu or gpu: which partitions it runs on"})
    params = fields.Function(lambda t: ParamSchema(many=True).dump(t.params.values()))


class JobRequestSchema(Schema):
    template = fields.Str(required=True, validate=validate.Length(max=40))
    project_id = fields.Int(required=True, validate=validate.Range(1, 2**31 - 1))
    partition_id = fields.Int(required=True, validate=validate.Range(1, 2**31 - 1))
    job_name = fields.Str(load_default=None, validate=validate.Length(max=200))
    values = fields.Dict(keys=fields.Str(), load_default=dict,
                         metadata={"description": "parameter name -> value (text, number or boolean)"})


class PreviewSchema(Schema):
    ok = fields.Bool()
    errors = fields.Dict(keys=fields.Str(), values=fields.List(fields.Str()))
    script = fields.Str(allow_none=True)
    cost_minutes = fields.Int(allow_none=True, metadata={"description": "largest possible core- or GPU-minutes"})
    remaining_minutes = fields.Int(allow_none=True, metadata={
        "description": "core- or GPU-minutes the grant's pool still allows a new job: Slurm's live limit minus"
                       " what finished and running jobs used and may still use, minus queued jobs' largest cost"})
    queued_minutes = fields.Int(allow_none=True, metadata={"description": "held by the pool's queued jobs"})
    account = fields.Str(allow_none=True, metadata={"description": "the Slurm sub-account of the grant's pool"})
    notes = fields.List(fields.Str(), metadata={"description": "warnings, e.g. Slurm did not answer"})
    resource_kind = fields.Function(lambda plan: plan.kind.value)


class JobSchema(Schema):
    id = fields.Int()
    slurm_job_id = fields.Str()
    job_name = fields.Str()
    template = fields.Str()
    project_id = fields.Int()
    partition_id = fields.Int()
    unix_user = fields.Str()
    account = fields.Str()
    state = fields.Str(attribute="last_state")
    reason = fields.Str(attribute="last_reason", allow_none=True)
    state_seen_at = fields.DateTime(allow_none=True, metadata={"description": "when the state was last read from Slurm"})
    max_cost_minutes = fields.Int()
    submitted_at = fields.DateTime()
    parameters = fields.Dict()


class EfficiencySchema(Schema):
    """As seff reports it; fractions are 0..1 (CPU efficiency can exceed 1 only through rounding)."""
    read_at = fields.DateTime(metadata={"description": "when it was read from Slurm's accounting (UTC)"})
    state = fields.Str()
    exit_code = fields.Str(allow_none=True, metadata={"description": "Slurm's EXIT:SIGNAL"})
    tasks = fields.Int(metadata={"description": "allocations counted: 1, or an array job's tasks"})
    elapsed_seconds = fields.Int()
    time_limit_minutes = fields.Int(allow_none=True)
    time_used = fields.Function(lambda r: r.value().time_used, allow_none=True,
                                metadata={"description": "elapsed / time limit"})
    alloc_cpus = fields.Int()
    cpu_time_seconds = fields.Int(metadata={"description": "CPUTime: elapsed x allocated CPUs"})
    total_cpu_seconds = fields.Function(lambda r: r.total_cpu_ms / 1000,
                                        metadata={"description": "TotalCPU: user + system time of all steps"})
    cpu_efficiency = fields.Function(lambda r: r.value().cpu_efficiency, allow_none=True,
                                     metadata={"description": "TotalCPU / CPUTime"})
    max_rss_kib = fields.Int(allow_none=True, metadata={"description": "largest MaxRSS of any step"})
    requested_mem_kib = fields.Int(allow_none=True, metadata={"description": "ReqMem"})
    memory_efficiency = fields.Function(lambda r: r.value().memory_efficiency, allow_none=True,
                                        metadata={"description": "MaxRSS / ReqMem"})
    gpus = fields.Int()
    gpu_seconds = fields.Int(metadata={"description": "GPUs x elapsed"})


class JobDetailSchema(JobSchema):
    script = fields.Str()
    output = fields.Function(lambda job: [{"file": t.file, "stream": t.stream, "tail": t.text}
                                          for t in output_tails(job)],
                             metadata={"description": "the last 16 KiB of each output and error file"})
    efficiency = fields.Nested(EfficiencySchema, allow_none=True,
                               metadata={"description": "once the job has ended and accounting has it"})


class ResubmitSchema(Schema):
    values = fields.Dict(keys=fields.Str(), load_default=dict,
                         metadata={"description": "parameters to change; the others are the job's"})
    job_name = fields.Str(load_default=None, validate=validate.Length(max=200))
    partition_id = fields.Int(load_default=None, validate=validate.Range(1, 2**31 - 1))


@blp.route("/templates")
@blp.response(200, TemplateSchema(many=True))
def list_templates():
    """Templates that load; broken ones are listed for staff on the web page."""
    return sorted(job_templates()[0].values(), key=lambda t: t.name)


@blp.route("/templates/<template>")
@blp.response(200, TemplateSchema)
def get_template(template: str):
    return job_template(template) or abort(404)


def _plan(request_data):
    plan = plan_by_ids(current_user, request_data["template"], request_data["project_id"],
                       request_data["partition_id"], request_data["values"], request_data["job_name"])
    return plan or abort(404, message=_("No such template, project or partition."))


@blp.route("/preview", methods=["POST"])
@blp.arguments(JobRequestSchema)
@blp.response(200, PreviewSchema)
def preview(request_data):
    """Check a request and show the exact script, its largest cost and the grant's remaining minutes."""
    return _plan(request_data)


@blp.route("", methods=["POST"])
@blp.arguments(JobRequestSchema)
@blp.response(201, JobSchema)
@blp.alt_response(422, description="The request breaks a limit; errors name the limit and the value")
@blp.alt_response(503, description="Slurm did not accept the job")
def submit(request_data):
    """Submit a job as the caller's Unix account, charged to the project's grant."""
    return _submitted(_plan(request_data), lambda plan: submit_job(plan, current_user))


def _submitted(plan, submit):
    """422 with the errors of a plan that does not pass, 503 when Slurm refuses, else the new job."""
    if not plan.ok:
        abort(422, message=_("The job was not submitted."), errors=plan.errors)
    try:
        return submit(plan)
    except (JobError, SchedulerError) as exc:
        abort(503, message=_("Slurm did not accept the job: %(error)s", error=str(exc)))


class JobListArgs(PageArgs):
    q = fields.Str(metadata={"description": "search job name, Slurm job id, Unix user, submitter's name or e-mail"})
    state = fields.Str(metadata={"description": "Slurm state as last read, e.g. PENDING, RUNNING, COMPLETED"})
    project = fields.Str(metadata={"description": "project code"})
    partition = fields.Str(metadata={"description": "partition name"})
    submitted_after = fields.Date(metadata={"description": "submitted on or after this day (UTC)"})
    submitted_before = fields.Date(metadata={"description": "submitted on or before this day (UTC)"})
    sort = fields.Str(metadata={"description": "newest (default), oldest, state, project"})


@list_endpoint(blp, "", JobListArgs, JobSchema(many=True), listing)
def list_jobs(page):
    """Jobs of the caller's projects (staff: all), a page at a time, filtered like the jobs page.

    The state is the one last read from Slurm (``state_seen_at``): listing never asks Slurm.
    """
    return paginate(listing.ordered(listing.filtered(current_user, page), page), page)


@blp.route("/<int:job_id>")
@blp.response(200, JobDetailSchema)
def get_job(job_id: int):
    job = visible_job(current_user, job_id) or abort(404)
    return job


@blp.route("/<int:job_id>/cancel", methods=["POST"])
@blp.response(200, JobSchema)
def cancel(job_id: int):
    job = visible_job(current_user, job_id) or abort(404)
    try:
        cancel_job(job, current_user)  # someone who may not: CancelNotAllowed, a 403
    except SchedulerError as exc:
        abort(503, message=_("Slurm did not cancel the job: %(error)s", error=str(exc)))
    return job


def _resubmission(job_id: int, request_data):
    job = visible_job(current_user, job_id) or abort(404)
    partition = None
    if request_data["partition_id"] is not None:
        partition = db.session.get(Partition, request_data["partition_id"]) or abort(
            404, message=_("No such partition."))
    plan = plan_resubmission(current_user, job, request_data["values"], request_data["job_name"], partition)
    return job, plan or abort(404, message=_("The job's template no longer exists."))


@blp.route("/<int:job_id>/resubmit/preview", methods=["POST"])
@blp.arguments(ResubmitSchema)
@blp.response(200, PreviewSchema)
def preview_resubmission(request_data, job_id: int):
    """Check the job again with some values changed, and show the exact script."""
    return _resubmission(job_id, request_data)[1]


@blp.route("/<int:job_id>/resubmit", methods=["POST"])
@blp.arguments(ResubmitSchema)
@blp.response(201, JobSchema)
@blp.alt_response(422, description="The changed request breaks a limit")
@blp.alt_response(503, description="Slurm did not accept the job")
def resubmit(request_data, job_id: int):
    """Submit a new job like this one (template, project, partition, parameters) with the given changes,
    as the caller's Unix account."""
    job, plan = _resubmission(job_id, request_data)
    return _submitted(plan, lambda checked: resubmit_job(checked, current_user, job))
