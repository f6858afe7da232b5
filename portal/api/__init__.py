"""The JSON API under ``/api/``, described by the OpenAPI document at ``/api/openapi.json``.

Each domain package contributes a flask-smorest blueprint; access rules are the same
functions the web pages use.
"""
from __future__ import annotations

from flask import Flask
from flask_smorest import Blueprint

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
    from portal.api import tokens

    api.register_blueprint(tokens.blp, url_prefix="/api/tokens")
    from portal.api import benchmarks, calls, me, projects, proposals, reviews, sites

    for prefix, module in (("calls", calls), ("proposals", proposals), ("reviews", reviews)):
        api.register_blueprint(module.blp, url_prefix=f"/api/{prefix}")

    for prefix, module in (("me", me), ("sites", sites), ("projects", projects),
                           ("benchmarks", benchmarks)):
        blueprint: Blueprint = module.blp
        api.register_blueprint(blueprint, url_prefix=f"/api/{prefix}")
    from portal.api import jobs

    api.register_blueprint(jobs.blp, url_prefix="/api/jobs")
    from portal.benchmarks import api as acceptance_api

    api.register_blueprint(acceptance_api.blp, url_prefix="/api/benchmarks/acceptance")
