"""Error pages: HTML for people, JSON for the API."""
from flask import Flask, render_template
from flask_babel import lazy_gettext as _l
from flask_smorest import abort
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from portal.extensions import api
from portal.identity.access import is_api_request
from portal.problems import Problems

# Werkzeug names errors, and explains them by default, in English: the page says it in the reader's language.
TITLES = {400: _l("Bad request"), 403: _l("Forbidden"), 404: _l("Not found"), 405: _l("Method not allowed"),
          409: _l("Conflict"), 413: _l("Request too large"), 422: _l("The request could not be processed"),
          429: _l("Too many requests"), 500: _l("Internal server error"), 503: _l("Service unavailable")}
EXPLANATIONS = {
    400: _l("The request was not understood. Reload the page and try again."),
    403: _l("You do not have access to this page."),
    404: _l("There is nothing here, or you may not see it."),
    405: _l("This page cannot be used that way."),
    413: _l("The request is too large."),
    429: _l("Too many requests. Wait a little and try again."),
    500: _l("Something went wrong on our side. Try again later; if it keeps happening, contact the facility staff."),
    503: _l("A service the portal needs is not available now. Try again later."),
}


def _explanation(error: HTTPException) -> str:
    if isinstance(error, CSRFError):
        return str(_l("The form expired; reload the page and try again."))
    if error.description == type(error).description:  # Werkzeug's default, not the view's own words
        return str(EXPLANATIONS.get(error.code, error.description))
    return error.description


def register_error_handlers(app: Flask) -> None:
    # flask-smorest answers every HTTP error with JSON; keep that for /api/ only.
    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException):
        if is_api_request():
            return api.handle_http_exception(error)
        return render_template("error.html", error=error, title=TITLES.get(error.code, error.name),
                               explanation=_explanation(error)), error.code

    # A rule's refusal that the view did not show itself (every API endpoint leaves it here):
    # 422, 409 or the rule's own status, with the message per field; the request's
    # transaction is rolled back because the status is an error (portal/transactions.py).
    @app.errorhandler(Problems)
    def handle_problems(problems: Problems):
        in_api = is_api_request()
        message = problems.errors.get("") or (_l("Nothing was changed; see errors.") if in_api else problems.message)
        try:
            abort(problems.http_status, message=str(message), errors=problems.errors)
        except HTTPException as error:
            if not in_api:
                error.description = str(message)
            return handle_http_exception(error)
