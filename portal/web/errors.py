"""Error pages: HTML for people, JSON for the API."""
from flask import Flask, render_template
from werkzeug.exceptions import HTTPException

from portal.extensions import api
from portal.identity.access import is_api_request


def register_error_handlers(app: Flask) -> None:
    # flask-smorest answers every HTTP error with JSON; keep that for /api/ only.
    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException):
        if is_api_request():
            return api.handle_http_exception(error)
        return render_template("error.html", error=error), error.code
