"""The applicant's pages: write, invite, upload evidence, submit, read reviews and reply."""

import io

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from portal.calls.operations import visible_call
from portal.clock import utcnow
from portal.extensions import db
from portal.formatting import format_number
from portal.identity.access import require_role, staff_required
from portal.identity.models import Role, User
from portal.problems import Problems
from portal.projects.models import ProjectRole
from portal.proposals import decisions, listing
from portal.proposals import operations as ops
from portal.proposals.forms import ActionForm, AdmissibilityForm, AssignForm, AwardForm, InviteForm, ProposalForm, RejectForm, ReplyForm, TechnicalForm
from portal.proposals.models import Proposal
from portal.reviews.operations import assign_reviewer, reviewers_available, reviews_of
from portal.web.input import posted
from portal.web.listing import csv_response, page_request, paginate

bp = Blueprint("proposals", __name__, url_prefix="/proposals")


def _form_errors(form) -> dict[str, str]:
    return {name: "; ".join(str(m) for m in messages) for name, messages in form.errors.items()}


def _proposal_form(call, proposal=None, *, stored: bool | None = None) -> ProposalForm:
    """The form with what was posted, or with what is stored (``stored``; by default on GET)."""
    stored = (request.method == "GET") if stored is None else stored
    form = ProposalForm(obj=proposal) if proposal is not None and stored else ProposalForm()
    form.track.choices = [SelectChoice("", _("Choose a track"))] + [SelectChoice(t.value, t.label) for t in call.track_list]
    if proposal is not None and stored:
        form.storage_tib.data = f"{proposal.storage_tib:g}"
    return form


def _stored_requests(proposal) -> dict[str, str]:
    return {f"request-{r.partition_id}": f"{r.requested_hours:g}" for r in proposal.requests}


def _posted(form: ProposalForm, call) -> tuple[dict, dict]:
    data = {name: getattr(form, name).data for name in ops.TEXT_FIELDS}
    data["storage_tib"] = form.storage_tib.data
    requests = {o.partition_id: request.form.get(f"request-{o.partition_id}", "") for o in call.offers}
    # A tampered form may name partitions the call does not offer: report them, do not ignore them.
    for key in request.form:
        if key.startswith("request-") and key[8:] not in {str(o.partition_id) for o in call.offers}:
            requests[key[8:]] = request.form[key]
    return data, requests


def _store_evidence(form: ProposalForm, proposal) -> None:
    upload = form.evidence.data
    if upload and getattr(upload, "filename", ""):
        ops.attach_evidence(proposal, current_user, upload.filename, upload.mimetype, upload.read())


@bp.route("/")
def index():
    """Proposals the signed-in person may see, a page at a time, searchable and filterable."""
    page = page_request(listing.FILTERS, listing.SORTS)
    proposals = paginate(listing.shown_as_rows(listing.ordered(listing.filtered(current_user, page), page)), page)
    return render_template("proposals/index.html", proposals=proposals, page=page, choices=listing.filter_choices())


@bp.route("/export.csv")
def export():
    """What the list's filter shows, as CSV."""
    page = page_request(listing.FILTERS, listing.SORTS)
    return csv_response(f"proposals-{utcnow().date().isoformat()}.csv", [_(h) for h in listing.CSV_HEADER],
                        listing.shown_as_rows(listing.ordered(listing.filtered(current_user, page), page)),
                        listing.csv_row)


@bp.route("/new/<int:call_id>", methods=["GET", "POST"])
@require_role(Role.PI)
def new(call_id: int):
    call = visible_call(current_user, call_id) or abort(404)
    return _proposal_page(call, None, lambda data, requests: ops.create_proposal(call, current_user, data, requests),
                          _("Draft saved."))


@bp.route("/<int:proposal_id>")
def detail(proposal_id: int):
    proposal = ops.visible_proposal(current_user, proposal_id) or abort(404)
    from portal.reviews.operations import submitted_reviews

    released = proposal.reply_deadline is not None
    return render_template(
        "proposals/detail.html", proposal=proposal, now=utcnow(), history=ops.history_for(proposal, current_user),
        reviews=submitted_reviews(proposal) if released or current_user.is_staff else [],
        invite_form=InviteForm(), action_form=ActionForm(), reply_form=ReplyForm(),
        staff=staff_context(proposal) if current_user.is_staff else None, errors={})


@bp.route("/<int:proposal_id>/edit", methods=["GET", "POST"])
def edit(proposal_id: int):
    proposal = _applicant_proposal(proposal_id)
    if not proposal.can_edit(current_user, utcnow()):
        flash(_("This proposal cannot be changed now."), "error")
        return redirect(url_for("proposals.detail", proposal_id=proposal.id))

    def save(data, requests):
        ops.update_proposal(proposal, current_user, data, requests)
        return proposal

    return _proposal_page(proposal.call, proposal, save, _("Saved."))


def _proposal_page(call, proposal, save, success: str):
    """The proposal form: on a valid POST ``save(data, requests)``, then store the evidence file."""
    form = _proposal_form(call, proposal)
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        data, requests = _posted(form, call)
        try:
            saved = save(data, requests)
            _store_evidence(form, saved)
        except Problems as exc:
            errors = exc.errors  # the request rolls back: nothing was stored
        else:
            flash(success, "info")
            return redirect(url_for("proposals.detail", proposal_id=saved.id))
    elif request.method == "POST":
        errors = _form_errors(form)
    values = request.form if request.method == "POST" or proposal is None else _stored_requests(proposal)
    return render_template("proposals/edit.html", form=form, call=call, proposal=proposal,
                           errors=errors, values=values), 422 if errors else 200


def _applicant_proposal(proposal_id: int):
    proposal = ops.visible_proposal(current_user, proposal_id) or abort(404)
    if not proposal.is_applicant(current_user):
        abort(403)
    return proposal


def _after(proposal, action, success: str):
    """Run ``action``: on success flash ``success`` and go back to the proposal; else show why (nothing changed)."""
    try:
        action()
    except Problems as exc:
        return render_template("proposals/refused.html", proposal=proposal, errors=exc.errors), \
            409 if exc.conflict else 422
    flash(success, "info")
    return redirect(url_for("proposals.detail", proposal_id=proposal.id))


@bp.route("/<int:proposal_id>/submit", methods=["POST"])
def submit(proposal_id: int):
    proposal = _applicant_proposal(proposal_id)
    try:
        ops.submit_proposal(proposal, current_user)
    except Problems as exc:
        if exc.conflict or not proposal.can_edit(current_user, utcnow()):
            return render_template("proposals/refused.html", proposal=proposal, errors=exc.errors), 409
        # Show each problem next to its field, on the form that fixes it.
        return render_template("proposals/edit.html", form=_proposal_form(proposal.call, proposal, stored=True),
                               call=proposal.call, proposal=proposal, errors=exc.errors,
                               values=_stored_requests(proposal)), 422
    flash(_("Proposal submitted."), "info")
    return redirect(url_for("proposals.detail", proposal_id=proposal.id))


@bp.route("/<int:proposal_id>/invite", methods=["POST"])
def invite(proposal_id: int):
    proposal = _applicant_proposal(proposal_id)
    form = posted(InviteForm)
    role = ProjectRole(form.role.data) if form.role.data in {r.value for r in ProjectRole} else None
    return _after(proposal, lambda: ops.invite_member(proposal, current_user, form.email.data or "", role),
                  _("Invitation sent to %(email)s.", email=form.email.data))


@bp.route("/<int:proposal_id>/reply", methods=["POST"])
def reply(proposal_id: int):
    proposal = _applicant_proposal(proposal_id)
    form = posted(ReplyForm)
    return _after(proposal, lambda: ops.reply_to_reviews(proposal, current_user, form.reply.data),
                  _("Reply sent."))


@bp.route("/<int:proposal_id>/evidence")
def evidence(proposal_id: int):
    proposal = ops.visible_proposal(current_user, proposal_id) or abort(404)
    file = proposal.evidence or abort(404)
    return send_file(io.BytesIO(file.data), mimetype=file.content_type, as_attachment=True,
                     download_name=file.filename)


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def invitation(token: str):
    found = ops.find_invitation(token, current_user)
    if found is None:
        abort(404)
    form = ActionForm()
    if form.validate_on_submit():
        return _after(found.proposal, lambda: ops.accept_invitation(found, current_user),
                      _("You joined the proposal."))
    return render_template("proposals/invitation.html", invitation=found, form=form)




@bp.app_errorhandler(413)
def too_large(error):
    """An upload over MAX_CONTENT_LENGTH: say so plainly; the request stored nothing."""
    from flask import current_app

    from portal.identity.access import is_api_request, json_error

    limit = current_app.config["PROPOSAL_UPLOAD_MAX_BYTES"] / 2**20
    message = _("The upload is too large: files of at most %(limit)s MiB are accepted. Nothing was saved.",
                limit=format_number(limit))
    if is_api_request():
        return json_error(413, "Payload Too Large", message)
    return render_template("proposals/too_large.html", message=message), 413


def staff_context(proposal: Proposal) -> dict:
    assign = AssignForm()
    assign.reviewer.choices = [SelectChoice(u.id, u.name) for u in reviewers_available()]
    return {"admissibility": AdmissibilityForm(), "technical": TechnicalForm(), "assign": assign,
            "award": AwardForm(start_date=proposal.call.allocation_start, end_date=proposal.call.allocation_end),
            "reject": RejectForm(), "action": ActionForm(), "assignments": reviews_of(proposal)}


def _load(proposal_id: int) -> Proposal:
    return db.get_or_404(Proposal, proposal_id)


def _partition_values(prefix: str) -> dict[str, str]:
    return {key[len(prefix):]: value for key, value in request.form.items() if key.startswith(prefix) and value}


@bp.route("/<int:proposal_id>/admissibility", methods=["POST"])
@staff_required
def admissibility(proposal_id: int):
    proposal, form = _load(proposal_id), posted(AdmissibilityForm)
    return _after(proposal, lambda: decisions.check_admissibility(proposal, current_user, form.admissible.data == "yes",
                                                                  form.comment.data or ""),
                  _("Admissibility recorded."))


@bp.route("/<int:proposal_id>/technical", methods=["POST"])
@staff_required
def technical(proposal_id: int):
    proposal, form = _load(proposal_id), posted(TechnicalForm)
    return _after(proposal, lambda: decisions.assess_technically(
        proposal, current_user, form.feasible.data == "yes", form.comment.data or "",
        _partition_values("recommend-")), _("Technical assessment recorded."))


@bp.route("/<int:proposal_id>/reviewers", methods=["POST"])
@staff_required
def assign(proposal_id: int):
    proposal = _load(proposal_id)
    raw = request.form.get("reviewer", "")
    reviewer = db.session.get(User, int(raw)) if raw.isdigit() and len(raw) < 10 else None
    return _after(proposal, lambda: assign_reviewer(proposal, current_user, reviewer), _("Reviewer assigned."))


@bp.route("/<int:proposal_id>/release", methods=["POST"])
@staff_required
def release(proposal_id: int):
    proposal = _load(proposal_id)
    return _after(proposal, lambda: decisions.release_reviews(proposal, current_user),
                  _("Reviews released; the right-to-reply window is open."))


@bp.route("/<int:proposal_id>/award", methods=["POST"])
@staff_required
def award(proposal_id: int):
    proposal, form = _load(proposal_id), posted(AwardForm)
    return _after(proposal, lambda: decisions.award_proposal(
        proposal, current_user, start_date=form.start_date.data, end_date=form.end_date.data,
        hours=_partition_values("award-"), confirm_over_award=form.confirm_over_award.data),
        _("Awarded: the grant is created."))


@bp.route("/<int:proposal_id>/reject", methods=["POST"])
@staff_required
def reject(proposal_id: int):
    proposal, form = _load(proposal_id), posted(RejectForm)
    return _after(proposal, lambda: decisions.reject_proposal(proposal, current_user, form.feedback.data or ""),
                  _("Rejected; the applicants were told."))
