"""``flask`` commands for operators. They call the same operations as the web pages."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from portal.extensions import db
from portal.identity.models import Role, User
from portal.sites.models import Site
from portal.slurm.errors import SchedulerError
from portal.transactions import commit, roll_back

users_cli = AppGroup("users", help="Manage people and their roles.")
sites_cli = AppGroup("sites", help="Manage hosting sites and their Slurm partitions.")
demo_cli = AppGroup("demo", help="Demo data.")
benchmarks_cli = AppGroup("benchmarks", help="Acceptance benchmark results.")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--role", "roles", multiple=True, type=click.Choice([r.value for r in Role]))
@click.option("--unix-username")
def create_user(email: str, name: str, password: str, roles: tuple[str, ...], unix_username: str | None):
    """Create a user who signs in with a local password."""
    from portal.identity.providers import create_local_user

    if db.session.scalar(select(User).where(User.email == email.lower())) is not None:
        raise click.ClickException(f"A user with e-mail {email} already exists.")
    user = create_local_user(email, name, password, roles=[Role(r) for r in roles], unix_username=unix_username)
    commit()
    click.echo(f"Created user {user.id} <{user.email}>")


def _person(email: str) -> User:
    from portal.identity.operations import user_by_email

    user = user_by_email(email)
    if user is None:
        raise click.ClickException(f"No user with e-mail {email}.")
    return user


def _account_change(change, done: str) -> None:
    """Run an operation on one account and commit, or report why not (exit status 1)."""
    from portal.identity.operations import AccountError

    try:
        change()
    except AccountError as exc:
        roll_back()
        raise click.ClickException(str(exc)) from None
    commit()
    click.echo(done)


@users_cli.command("show")
@click.argument("email")
def show_user(email: str):
    """Show a person's account: state, profile, identity links and roles."""
    click.echo(_describe(_person(email)))


def _describe(user: User) -> str:
    from portal.identity.oidc import provider_named
    from portal.identity.operations import country_name

    def when(moment) -> str:
        return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "never"

    state = "active" if user.active else f"disabled on {when(user.disabled_at)}: {user.disabled_reason}"
    if user.profile_verified_at is None:
        verified = "not verified"
    else:
        verifier = db.session.get(User, user.profile_verified_by_id) if user.profile_verified_by_id else None
        verified = f"verified {when(user.profile_verified_at)}" + (f" by {verifier.email}" if verifier else "")
    country = f"{user.country} ({country_name(user.country)})" if user.country else "-"
    lines = [f"{user.name} <{user.email}> (user {user.id})", f"  account:       {state}",
             f"  e-mail:        {'verified' if user.email_verified else 'NOT verified by the identity provider'}",
             f"  password:      {'yes' if user.password_hash else 'no'}",
             f"  unix user:     {user.unix_username or '-'}",
             f"  organisation:  {user.affiliation or '-'}", f"  country:       {country}",
             f"  profile:       from {user.profile_source or 'unknown source'}, {verified}",
             f"  ORCID:         {user.orcid or '-'}", "  identities:"]
    for link in user.identity_links:
        provider = provider_named(link.provider)
        label = f"{provider.label} ({link.provider})" if provider else f"{link.provider or '?'} (not configured)"
        lines.append(f"    {label}: issuer {link.issuer} subject {link.subject}, linked {when(link.created_at)}, "
                     f"last sign-in {when(link.last_sign_in_at)}")
    if not user.identity_links:
        lines.append("    none")
    lines.append("  roles:")
    for grant in sorted(user.role_grants, key=lambda g: g.role.value):
        source = f"from {grant.source[5:]} claims" if grant.source.startswith("oidc:") else "granted by staff"
        lines.append(f"    {grant.role.value}: {source}")
    if not user.role_grants:
        lines.append("    none")
    return "\n".join(lines)


@users_cli.command("link")
@click.argument("email")
@click.option("--provider", required=True, help="A configured identity provider's name.")
@click.option("--subject", required=True, help="The person's subject (sub) at the provider.")
def link_user(email: str, provider: str, subject: str):
    """Link an identity provider account to a person."""
    from portal.identity.operations import link_identity

    user = _person(email)
    _account_change(lambda: link_identity(user, provider, subject, acting_user=None),
                    f"Linked {provider} subject {subject} to {user.email}.")


@users_cli.command("unlink")
@click.argument("email")
@click.option("--provider", required=True)
@click.option("--subject", help="Which subject, when the person has several at the provider.")
@click.option("--force", is_flag=True, help="Even if it is the last way the person can sign in.")
def unlink_user(email: str, provider: str, subject: str | None, force: bool):
    """Remove an identity provider account from a person."""
    from portal.identity.operations import find_link, unlink_identity

    user = _person(email)

    def change():
        link = find_link(user, provider, subject)
        unlink_identity(user, link.id, acting_user=None, force=force)

    _account_change(change, f"Unlinked {provider} from {user.email}.")


@users_cli.command("disable")
@click.argument("email")
@click.option("--reason", required=True)
def disable_account(email: str, reason: str):
    """Disable an account: signed out at once, tokens refused, Slurm associations removed at the next sync."""
    from portal.identity.operations import disable_user

    user = _person(email)
    _account_change(lambda: disable_user(user, reason, acting_user=None), f"Disabled {user.email}.")


@users_cli.command("enable")
@click.argument("email")
def enable_account(email: str):
    """Enable a disabled account again."""
    from portal.identity.operations import enable_user

    user = _person(email)
    _account_change(lambda: enable_user(user, acting_user=None), f"Enabled {user.email}.")


@users_cli.command("verify-profile")
@click.argument("email")
def verify_user_profile(email: str):
    """Record that staff checked the person's organisation and country."""
    from portal.identity.operations import verify_profile

    user = _person(email)
    _account_change(lambda: verify_profile(user, acting_user=None), f"Verified the profile of {user.email}.")


@sites_cli.command("add")
@click.argument("name")
@click.option("--cluster", required=True, help="Slurm ClusterName of the site.")
@click.option("--slurm-conf", help="Path to the cluster's slurm.conf (cli adapter; with rest: its sacctmgr fallback).")
@click.option("--adapter", type=click.Choice(["cli", "rest"]), default="cli", show_default=True,
              help="How the portal reaches Slurm: its command-line clients, or slurmrestd with a JWT.")
@click.option("--rest-url", help="slurmrestd's URL (rest adapter), e.g. https://slurm.example.org:6820.")
@click.option("--rest-token-file", help="Path of the file holding the portal's slurmrestd token (rest adapter).")
@click.option("--rest-api-version", default="v0.0.38", show_default=True, help="slurmrestd's OpenAPI version.")
def add_site(name: str, cluster: str, slurm_conf: str | None, adapter: str, rest_url: str | None,
             rest_token_file: str | None, rest_api_version: str):
    """Register a site (a Slurm cluster)."""
    from portal.sites.operations import create_site

    if adapter == "rest" and not (rest_url and rest_token_file):
        raise click.UsageError("the rest adapter needs --rest-url and --rest-token-file")
    site = create_site(name, cluster, slurm_conf=slurm_conf, scheduler_adapter=adapter, rest_url=rest_url,
                       rest_token_file=rest_token_file, rest_api_version=rest_api_version)
    commit()
    click.echo(f"Created site {site.id} {site.name}")


@sites_cli.command("set-pool")
@click.argument("site_name")
@click.argument("partition_name")
@click.argument("pool", required=False)
def set_pool(site_name: str, partition_name: str, pool: str | None):
    """Group a partition into POOL (one budget per grant across the pool's partitions); no POOL: its own."""
    from portal.sites.models import Partition
    from portal.sites.operations import set_partition_pool

    partition = db.session.scalar(select(Partition).join(Site).where(Site.name == site_name,
                                                                      Partition.name == partition_name))
    if partition is None:
        raise click.ClickException(f"No partition {partition_name!r} at site {site_name!r}.")
    try:
        set_partition_pool(partition, pool)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    commit()
    click.echo(f"{partition.label}: pool {partition.pool_name}; Slurm follows at the next sync")


@sites_cli.command("sync")
@click.argument("names", nargs=-1)
def sync_sites(names: tuple[str, ...]):
    """Read partitions and their limits from each site's Slurm cluster."""
    from portal.sites.operations import sync_partitions

    query = select(Site).order_by(Site.name)
    if names:
        query = query.where(Site.name.in_(names))
    sites = list(db.session.scalars(query))
    failed = 0
    with click.progressbar(sites, label="Reading partitions", show_pos=True,
                           item_show_func=lambda s: s.name if s else "") as bar:
        for site in bar:
            try:
                partitions = sync_partitions(site)
                commit()
                click.echo(f"  {site.name}: {len(partitions)} partitions")
            except SchedulerError as exc:
                commit()  # keep the error note
                failed += 1
                click.echo(f"  {site.name}: FAILED: {exc}", err=True)
    if failed:
        raise click.ClickException(f"{failed} site(s) could not be read.")


@demo_cli.command("seed")
@click.option("--site-name", default="Demo cluster")
@click.option("--cluster", required=True, help="Slurm ClusterName of the local cluster.")
@click.option("--slurm-conf", help="Path to the local cluster's slurm.conf.")
@click.option("--no-jobs", is_flag=True, help="Do not run the demo jobs (no usage from Slurm).")
def seed(site_name: str, cluster: str, slurm_conf: str | None, no_jobs: bool):
    """Seed a living facility on the local Slurm cluster: people, calls, proposals, reviews,
    grants synced into Slurm, real jobs and their usage, a benchmark history, mail. Running it
    again changes nothing."""
    from portal.demo import DEMO_LOGINS, SeedReport, seed_demo

    report = SeedReport()
    try:
        site = seed_demo(site_name=site_name, slurm_cluster=cluster, slurm_conf=slurm_conf, run_jobs=not no_jobs,
                         report=report)
    except SchedulerError as exc:
        raise click.ClickException(f"Could not read partitions from Slurm: {exc}") from exc
    commit()
    click.echo(f"Site {site.name}: partitions {', '.join(p.name for p in site.partitions)}")
    for line in report.done:
        click.echo(f"  {line}")
    for line in report.labelled:
        click.echo(f"  NOT REAL (back-dated demo data): {line}")
    for line in report.problems:
        click.echo(f"  PROBLEM: {line}", err=True)
    if not report.done:
        click.echo("  Already seeded: nothing changed.")
    click.echo("Demo logins (e-mail / password / roles):")
    for login in DEMO_LOGINS:
        click.echo(f"  {login.email:24} {login.password:15} {', '.join(r.value for r in login.roles)}")


@demo_cli.command("mail-sink")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), required=True)
def mail_sink(host: str, port: int):
    """Catch the portal's mail on a local SMTP port; staff read it at /mail/caught."""
    from portal.mailsink.operations import mailbox_path, serve

    try:
        import aiosmtpd  # noqa: F401  (a development extra)
    except ImportError:
        raise click.ClickException("The mail sink needs aiosmtpd: pip install aiosmtpd") from None
    click.echo(f"Catching mail on {host}:{port} into {mailbox_path()}")
    serve(host, port, mailbox_path())


@demo_cli.command("generate")
@click.option("--projects", type=click.IntRange(min=1), required=True, help="How many projects.")
@click.option("--usage-per-project", type=click.IntRange(min=0), default=100, show_default=True,
              help="Job rows in the usage ledger per project.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same facility.")
@click.option("--force", is_flag=True, help="Add to a database that already holds projects.")
def generate(projects: int, usage_per_project: int, seed: int, force: bool):
    """Generate a synthetic facility: projects with people, awarded proposals, grants and usage."""
    import time

    from portal.demo_facility import FacilityNotEmpty, SchemaNotCurrent, generate_facility, refresh_planner_statistics

    started = time.perf_counter()
    try:
        with click.progressbar(length=projects, label="Projects", show_pos=True) as bar:
            stats = generate_facility(projects, usage_per_project, seed, progress=bar.update, force=force)
        clock = time.perf_counter()
        commit()
    except (FacilityNotEmpty, SchemaNotCurrent) as exc:
        roll_back()
        raise click.ClickException(str(exc) + ("" if isinstance(exc, SchemaNotCurrent) else
                                               " Use --force to add to it anyway.")) from None
    stats.seconds["commit"] = time.perf_counter() - clock
    clock = time.perf_counter()
    refresh_planner_statistics()
    stats.seconds["planner statistics"] = time.perf_counter() - clock
    for stage, seconds in stats.seconds.items():
        click.echo(f"  {stage:24} {seconds:8.1f} s")
    click.echo(f"{stats.projects} projects, {stats.users} people, {stats.memberships} memberships, "
               f"{stats.grants} grants ({stats.active_grants} active, {stats.expired_grants} expired), "
               f"{stats.allocations} allocations ({stats.near_exhaustion} at 90 % or more), "
               f"{stats.usage_rows} usage rows in {time.perf_counter() - started:.1f} s")
    click.echo(f"Every generated person signs in with the password {stats.password!r}; "
               f"staff: {stats.staff_email}.")


tokens_cli = AppGroup("tokens", help="Personal API tokens.")


@tokens_cli.command("create")
@click.option("--email", required=True, help="The user the token acts as.")
@click.option("--scope", type=click.Choice(["read", "read-write"]), default="read", show_default=True)
@click.option("--days", type=int, default=30, show_default=True, help="Days until it expires (at most 365).")
@click.option("--name", default="command line", show_default=True)
def create_api_token(email: str, scope: str, days: int, name: str):
    """Create an API token and print it once."""
    from portal.identity.models import TokenScope
    from portal.identity.tokens import TokenError, create_token

    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"No user with e-mail {email}.")
    try:
        token, secret = create_token(user, name, TokenScope(scope), days)
    except TokenError as exc:
        raise click.ClickException(str(exc)) from exc
    commit()
    click.echo(f"Token {token.id} ({scope}, expires {token.expires_at:%Y-%m-%d} UTC). Shown only once:", err=True)
    click.echo(secret)


@benchmarks_cli.command("upload")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--as", "email", required=True, help="E-mail of the staff member uploading.")
def upload_benchmarks(files: tuple[str, ...], email: str):
    """Store mpi_examples result files and judge them against the references."""
    from pathlib import Path

    from portal.benchmarks.operations import BenchmarkError, ingest_result
    from portal.benchmarks.upload import read_result_upload

    user = db.session.scalar(select(User).where(User.email == email.lower()))
    if user is None or not user.is_staff:
        raise click.ClickException(f"{email} is not a staff member.")
    failed = 0
    with click.progressbar(files, label="Uploading results", show_pos=True) as bar:
        for name in bar:
            try:
                run = ingest_result(read_result_upload(Path(name).read_bytes()), user)
            except BenchmarkError as exc:
                roll_back()
                failed += 1
                click.echo(f"\n  {name}: refused: {exc}", err=True)
                continue
            commit()
            click.echo(f"\n  {name}: run {run.id} {run.system}/{run.partition} {run.verdict.value}")
    if failed:
        raise click.ClickException(f"{failed} file(s) refused.")


mail_cli = AppGroup("mail", help="Outgoing e-mail.")


@mail_cli.command("send-pending")
def send_pending_mail():
    """Retry e-mail that the mail server did not accept earlier."""
    from portal.mail import send_pending

    click.echo(f"Sent {send_pending()} message(s).")


def register_cli(app: Flask) -> None:
    app.cli.add_command(tokens_cli)
    from portal.grants.cli import slurm_cli

    app.cli.add_command(slurm_cli)
    from portal.jobs.cli import jobs_cli

    app.cli.add_command(jobs_cli)
    for group in (users_cli, sites_cli, demo_cli, benchmarks_cli, mail_cli):
        app.cli.add_command(group)
