"""What a request brings in: refused when the database cannot store it (PostgreSQL text cannot hold NUL
characters), and posted forms read for the rules to judge."""
from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from flask import abort, request
from flask_babel import gettext as _
from flask_wtf import FlaskForm

AnyForm = TypeVar("AnyForm", bound=FlaskForm)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def refuse_nul_characters():
    """A 400 for a NUL in the path, query, form fields or JSON body (file contents may hold any byte)."""
    found = ("\x00" in request.path or b"\x00" in unquote_to_bytes(request.query_string)
             or (request.method in ("POST", "PUT", "PATCH")
                 and (_has_nul(list(request.form.values())) or (request.is_json and _has_nul(request.get_json(silent=True))))))
    if found:
        abort(400, _("Text may not contain NUL characters."))


def posted(form_class: type[AnyForm]) -> AnyForm:
    """The posted form, its fields coerced (numbers, dates, choices). Its own verdict is not asked
    for: the rule the view then calls judges the values and names what is wrong (``Problems``),
    the same for a page, the API and the CLI. (CSRF was checked before the view ran.)"""
    form = form_class()
    form.validate()
    return form
