"""Authorisation: every endpoint is closed unless it says otherwise.

``enforce_sign_in`` runs before every request and refuses anonymous access to any endpoint
not marked :func:`public`, so a new route cannot be left open by forgetting a decorator.
Role checks are added per view with :func:`require_role`.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, current_app, g, jsonify, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.formatting import format_moment
from portal.identity.models import Role

F = TypeVar("F", bound=Callable[..., Any])

PUBLIC_ATTR = "_portal_public"


def public(view: F) -> F:
    """Mark a view as reachable without signing in."""
    setattr(view, PUBLIC_ATTR, True)
    return view


OWN_CREDENTIAL_ATTR = "_portal_own_credential"


def own_credential(view: F) -> F:
    """Mark a view that checks a bearer credential of its own (an acceptance run's upload token):
    reachable without signing in, the personal API-token check left to the view, and no CSRF
    token needed, since such a view never reads the session cookie."""
    setattr(view, PUBLIC_ATTR, True)
    setattr(view, OWN_CREDENTIAL_ATTR, True)
    return view


def _view_marked(attr: str) -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, attr, False) or getattr(getattr(view, "view_class", None), attr, False))


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def json_error(code: int, status: str, message: str):
    response = jsonify(code=code, status=status, message=message)
    response.status_code = code
    return response


def _unauthenticated():
    if is_api_request():
        return json_error(401, "Unauthorized", _("Sign in first."))
    return redirect(url_for("identity.login", next=request.full_path.rstrip("?")))


def enforce_sign_in():
    if request.endpoint is None:
        return None  # 404 / 405 handled by Flask
    if request.endpoint == "static" or request.endpoint.startswith("api-docs."):
        return None
    if _view_marked(OWN_CREDENTIAL_ATTR):
        return None
    if is_api_request() and bearer_secret() is not None:
        refusal = authenticate_bearer()
        if refusal is not None:
            return refusal
    view = current_app.view_functions.get(request.endpoint)
    if view is not None and getattr(view, PUBLIC_ATTR, False):
        return None
    # flask-smorest wraps MethodViews; the class carries the marker there.
    view_class = getattr(view, "view_class", None)
    if view_class is not None and getattr(view_class, PUBLIC_ATTR, False):
        return None
    if not current_user.is_authenticated:
        return _unauthenticated()
    return None


def require_role(*roles: Role) -> Callable[[F], F]:
    """Allow the view only to users holding one of ``roles`` (admins count as staff)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return _unauthenticated()
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_roles = roles  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


staff_required = require_role(Role.STAFF)
admin_required = require_role(Role.ADMIN)


def bearer_secret() -> str | None:
    scheme, _sep, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def authenticate_bearer():
    """Check the request's API token; on success it is ``g.api_token``, otherwise a JSON refusal.

    Failures count against the caller's address, so tokens cannot be guessed at speed.
    """
    from portal.audit.operations import record
    from portal.identity.ratelimit import client_address, configured, exceeded, hit, too_many_requests
    from portal.identity.tokens import find_token, touch_token

    if session.get("_user_id") is not None:
        return json_error(400, "Bad Request", _("Send either a session cookie or an API token, not both."))
    limit = configured("TOKEN_RATE_LIMIT")
    bucket = f"token-failures:{client_address()}"
    verdict = exceeded(bucket, limit)
    if not verdict.allowed:
        return too_many_requests(verdict)
    token = find_token(bearer_secret() or "")
    if token is None or not token.is_usable:
        if token is None:
            message = _("This API token is not valid.")
        elif token.revoked_at is not None:
            message = _("This API token was revoked.")
        elif token.is_expired:
            message = _("This API token expired on %(date)s (UTC).", date=format_moment(token.expires_at))
        else:
            message = _("The account this API token belongs to is disabled.")
        record("token.refused", token.user if token else None, f"token:{token.id}" if token else "",
               {"reason": message, "path": request.path}, independent=True)
        hit(bucket, limit)
        response = json_error(401, "Unauthorized", message)
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    if not token.scope.allows(request.method):
        return json_error(403, "Forbidden", _("This API token may only read; create a read-write token to make changes."))
    touch_token(token)
    g.api_token = token
    return None


def load_user_from_request(_request):
    """Flask-Login's request loader: the owner of the API token checked in :func:`enforce_sign_in`."""
    token = g.get("api_token")
    return token.user if token is not None else None


def protect_from_csrf():
    """CSRF protection on every state-changing request that a cookie signs in.

    Requests signed in with an API token carry no cookie a browser could send for an attacker,
    so they need none; cookie-authenticated API calls send the token in ``X-CSRFToken``.
    """
    from portal.extensions import csrf

    if g.get("api_token") is not None or not current_app.config.get("WTF_CSRF_ENABLED", True):
        return None
    if _view_marked(OWN_CREDENTIAL_ATTR):
        return None
    csrf.protect()
    return None
