"""Authorisation: every endpoint is closed unless it says otherwise.

``enforce_sign_in`` runs before every request and refuses anonymous access to any endpoint
not marked :func:`public`, so a new route cannot be left open by forgetting a decorator.
Role checks are added per view with :func:`require_role`.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, current_app, jsonify, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.identity.models import Role

F = TypeVar("F", bound=Callable[..., Any])

PUBLIC_ATTR = "_portal_public"


def public(view: F) -> F:
    """Mark a view as reachable without signing in."""
    setattr(view, PUBLIC_ATTR, True)
    return view


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def _unauthenticated():
    if is_api_request():
        response = jsonify(code=401, status="Unauthorized", message=_("Sign in first."))
        response.status_code = 401
        return response
    return redirect(url_for("identity.login", next=request.full_path.rstrip("?")))


def enforce_sign_in():
    if request.endpoint is None:
        return None  # 404 / 405 handled by Flask
    if request.endpoint == "static" or request.endpoint.startswith("api-docs."):
        return None
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
