"""Refuse input the database cannot store: PostgreSQL text cannot hold NUL characters."""
from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from flask import abort, request
from flask_babel import gettext as _


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
