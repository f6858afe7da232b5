"""E-mails about proposals: queued in the outbox, sent once the change is committed.

Each message is composed in its recipient's language (``queue_mail_to`` calls the lambda once
per language, with that language active).
"""
from __future__ import annotations

from flask import current_app, has_request_context, url_for
from flask_babel import gettext as _

from portal.formatting import format_moment
from portal.mail import queue_mail_to


def _link(endpoint: str, **values) -> str:
    if has_request_context():
        return url_for(endpoint, _external=True, **values)
    with current_app.test_request_context():  # the command line: the path alone
        return url_for(endpoint, **values)


def notify_submitted(proposal) -> None:
    link = _link("proposals.detail", proposal_id=proposal.id)
    queue_mail_to(proposal.pi.email, lambda: (_("Proposal submitted: %(title)s", title=proposal.title), _(
        "Your proposal \u201c%(title)s\u201d to the call \u201c%(call)s\u201d was submitted.\n\n%(link)s\n",
        title=proposal.title, call=proposal.call.title, link=link)))
    queue_mail_to(current_app.config["STAFF_EMAIL"], lambda: (_("Proposal submitted: %(title)s", title=proposal.title), _(
        "%(pi)s submitted \u201c%(title)s\u201d to the call \u201c%(call)s\u201d.\n\n%(link)s\n",
        pi=proposal.pi.name, title=proposal.title, call=proposal.call.title, link=link)))


def notify_invited(invitation, token: str) -> None:
    proposal = invitation.proposal
    link = _link("proposals.invitation", token=token)
    queue_mail_to(invitation.email, lambda: (
        _("Invitation to join the proposal \u201c%(title)s\u201d", title=proposal.title), _(
            "%(pi)s invites you to join the proposal \u201c%(title)s\u201d as %(role)s.\n\n"
            "Sign in with this e-mail address and open:\n%(link)s\n",
            pi=proposal.pi.name, title=proposal.title, role=_("co-PI") if invitation.role.value == "co_pi" else _("member"), link=link)))


def notify_review_requested(assignment) -> None:
    proposal = assignment.proposal
    link = _link("reviews.detail", assignment_id=assignment.id)
    queue_mail_to(assignment.reviewer.email, lambda: (_("Review requested: %(title)s", title=proposal.title), _(
        "You are asked to review the proposal \u201c%(title)s\u201d (call \u201c%(call)s\u201d).\n"
        "First declare whether you have a conflict of interest:\n%(link)s\n",
        title=proposal.title, call=proposal.call.title, link=link)))


def notify_reviews_released(proposal) -> None:
    link = _link("proposals.detail", proposal_id=proposal.id)
    queue_mail_to(proposal.pi.email, lambda: (_("Reviews of \u201c%(title)s\u201d: you may reply", title=proposal.title), _(
        "The reviews of your proposal are available. You may reply until %(deadline)s UTC.\n\n%(link)s\n",
        deadline=format_moment(proposal.reply_deadline), link=link)))


def notify_decision(proposal) -> None:
    from portal.proposals.models import ProposalState

    link = _link("proposals.detail", proposal_id=proposal.id)

    def compose() -> tuple[str, str]:
        if proposal.state is ProposalState.AWARDED:
            return (_("Compute awarded: %(title)s", title=proposal.title),
                    _("Your proposal \u201c%(title)s\u201d was awarded.\n\n%(link)s\n", title=proposal.title, link=link))
        return (_("Decision on \u201c%(title)s\u201d", title=proposal.title),
                _("Your proposal \u201c%(title)s\u201d was not awarded.\n\n%(feedback)s\n\n%(link)s\n",
                  title=proposal.title, feedback=proposal.decision_feedback, link=link))

    queue_mail_to(proposal.pi.email, compose)
