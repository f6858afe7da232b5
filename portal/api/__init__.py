"""The JSON API under ``/api/``, described by the OpenAPI document at ``/api/openapi.json``.

Each feature package contributes a flask-smorest blueprint in its ``api.py``, registered by
:mod:`portal.routes`; access rules are the same functions the web pages use. Here: the API's
settings, its security schemes, and what the endpoints share (paging, schemas).
"""
from __future__ import annotations

from flask import Flask

from portal.extensions import api

API_SETTINGS = {
    "API_TITLE": "HPC allocation portal API",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
}


def init_api(app: Flask) -> None:
    for key, value in API_SETTINGS.items():
        app.config.setdefault(key, value)
    api.init_app(app)
    api.spec.components.security_scheme("session", {"type": "apiKey", "in": "cookie", "name": "session"})
    api.spec.components.security_scheme("token", {"type": "http", "scheme": "bearer",
                                                   "description": "A personal API token (hpcp_...)"})
