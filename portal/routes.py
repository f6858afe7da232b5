"""Every page and JSON API blueprint, registered in one place.

Each feature package has the same inside: ``views.py`` (its pages, blueprint ``bp``) and
``api.py`` (its endpoints under ``/api/``, blueprint ``blp``), both calling the rules in its
``operations.py``. The identity package has two more page blueprints (the signed-in person's
account, staff's people pages) and the grants package one (the Slurm status page).
"""
from __future__ import annotations

from flask import Flask


def register_pages(app: Flask) -> None:
    from portal.audit import views as audit
    from portal.benchmarks import views as benchmarks
    from portal.calls import views as calls
    from portal.grants import status as slurm_status
    from portal.grants import views as grants
    from portal.identity import account, people
    from portal.identity import views as identity
    from portal.jobs import views as jobs
    from portal.projects import views as projects
    from portal.proposals import views as proposals
    from portal.reviews import views as reviews
    from portal.sites import views as sites
    from portal.web import views as web

    for module in (web, identity, account, people, calls, proposals, reviews, projects, grants, slurm_status, jobs,
                   sites, benchmarks, audit):
        app.register_blueprint(module.bp)


def register_api(app: Flask) -> None:
    from portal.api import init_api
    from portal.benchmarks import api as benchmarks
    from portal.calls import api as calls
    from portal.extensions import api
    from portal.grants import api as grants
    from portal.identity import api as identity
    from portal.jobs import api as jobs
    from portal.projects import api as projects
    from portal.proposals import api as proposals
    from portal.reviews import api as reviews
    from portal.sites import api as sites

    init_api(app)
    for prefix, blueprint in (("tokens", identity.tokens_blp), ("me", identity.me_blp), ("calls", calls.blp),
                              ("proposals", proposals.blp), ("reviews", reviews.blp), ("sites", sites.blp),
                              ("projects", projects.blp), ("grants", grants.blp), ("jobs", jobs.blp),
                              ("benchmarks", benchmarks.blp), ("benchmarks/acceptance", benchmarks.acceptance_blp)):
        api.register_blueprint(blueprint, url_prefix=f"/api/{prefix}")
