"""``flask slurm``: reconcile Slurm with the grants, ingest usage, report drift."""
from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from portal.extensions import db
from portal.sites.models import Site
from portal.transactions import commit, roll_back

slurm_cli = AppGroup("slurm", help="Make Slurm enforce the grants; read usage back.")


def _sites(names: tuple[str, ...]) -> list[Site]:
    query = select(Site).order_by(Site.name)
    if names:
        query = query.where(Site.name.in_(names))
    sites = list(db.session.scalars(query))
    if names and len(sites) != len(set(names)):
        raise click.ClickException(f"Unknown site(s): {', '.join(sorted(set(names) - {s.name for s in sites}))}")
    return sites


@slurm_cli.command("sync")
@click.argument("names", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Print the sacctmgr commands without running them.")
def sync(names: tuple[str, ...], dry_run: bool):
    """Bring each site's Slurm accounts, users and limits to what the grants say."""
    from portal.grants.operations import expire_due_grants
    from portal.grants.reconcile import reconcile_site

    if not dry_run:
        for grant in expire_due_grants():
            click.echo(f"Grant {grant.id} ({grant.project.code}) expired on {grant.end_date}.")
        commit()
    failed = 0
    for site in _sites(names):
        outcome = reconcile_site(site, dry_run=dry_run, full=True)
        if outcome.run is None:
            click.echo(f"{site.name}: another worker is reconciling it; skipped.")
            continue
        verb = "would run" if dry_run else "ran"
        click.echo(f"{site.name}: {verb} {len(outcome.commands)} command(s)")
        for command in outcome.commands:
            click.echo(f"  {command}")
        if not outcome.run.succeeded:
            failed += 1
            click.echo(f"  FAILED (change kept pending): {outcome.run.error}", err=True)
    if failed:
        raise click.ClickException(f"{failed} site(s) could not be brought up to date.")


@slurm_cli.command("run")
@click.option("--seconds", type=float, default=None, help="Stop after this many seconds (default: run until SIGTERM).")
def run_service(seconds: float | None):
    """Run the reconciler service: applies changes as they are committed, keeps job states,
    usage, alerts and mail up to date, and checks for drift. Stop it with SIGTERM."""
    from flask import current_app

    from portal.grants.service import ReconcilerService, Schedule

    service = ReconcilerService(current_app._get_current_object(), Schedule.from_config(current_app.config),
                                echo=lambda line: click.echo(line, err=True))
    service.run(max_seconds=seconds)


@slurm_cli.command("ingest")
@click.argument("names", nargs=-1)
def ingest(names: tuple[str, ...]):
    """Read new job usage from each site's Slurm accounting into the ledger."""
    from portal.grants.alerts import send_usage_alerts
    from portal.grants.ingest import ingest_site
    from portal.slurm.errors import SchedulerError

    failed = 0
    for site in _sites(names):
        bar_holder: dict = {}

        def start_bar(records, site=site, bar_holder=bar_holder):
            bar_holder["bar"] = click.progressbar(length=len(records), label=f"{site.name}: storing jobs",
                                                  show_pos=True)
            bar_holder["bar"].__enter__()

        try:
            result = ingest_site(site, on_records=start_bar, progress=lambda n, held=bar_holder: held["bar"].update(n))
        except SchedulerError as exc:
            roll_back()
            failed += 1
            click.echo(f"{site.name}: FAILED: {exc}", err=True)
            continue
        finally:
            if "bar" in bar_holder:
                bar_holder["bar"].__exit__(None, None, None)
        alerts = send_usage_alerts()
        commit()
        click.echo(f"{site.name}: {result.records} job(s) read, {result.charged} charged to a grant,"
                   f" {len(alerts)} alert(s) sent")
    if failed:
        raise click.ClickException(f"{failed} site(s) could not be read.")


@slurm_cli.command("drift")
@click.argument("names", nargs=-1)
@click.option("--remove", is_flag=True, help="Remove what the portal did not ask for.")
def drift_report(names: tuple[str, ...], remove: bool):
    """List accounts and users Slurm has under the portal's accounts that the portal does not."""
    from portal.grants.reconcile import desired_state, read_actual, reconcile_site
    from portal.sites.operations import scheduler_for
    from portal.slurm.accounting import drift

    for site in _sites(names):
        found = drift(desired_state(site), read_actual(site, scheduler_for(site)))
        commit()  # pool account names given by desired_state
        click.echo(f"{site.name}: {len(found.accounts)} account(s), {len(found.associations)} user association(s)"
                   f" not in the portal; {len(found.limits) + len(found.user_limits)} limit(s) changed by hand")
        for spec in found.accounts:
            click.echo(f"  account {spec.name} (parent {spec.parent})")
        for account, user, partition in found.associations:
            click.echo(f"  user {user} in {account}" + (f" on partition {partition}" if partition else ""))
        for account, limit, wanted, have in found.limits:
            click.echo(f"  account {account}: {limit} is {have}, the portal awarded {wanted}")
        for (account, user, partition), limits in found.user_limits:
            click.echo(f"  user {user} in {account}" + (f" on partition {partition}" if partition else "")
                       + f" has limits set by hand: {limits}")
        if remove and found:
            outcome = reconcile_site(site, remove_drift=True)
            click.echo(f"  removed and reset with {len(outcome.commands)} command(s)"
                       + ("" if outcome.run and outcome.run.succeeded else f"; FAILED: {outcome.run and outcome.run.error}"))
