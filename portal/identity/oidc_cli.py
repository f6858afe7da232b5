"""``flask oidc``: check the configured identity providers before people try to sign in."""
from __future__ import annotations

import click
import requests
from flask import current_app
from flask.cli import AppGroup

oidc_cli = AppGroup("oidc", help="Check the OpenID Connect identity providers.")


@oidc_cli.command("check")
def check() -> None:
    """Read each provider's discovery document and keys, as a sign-in would, and report."""
    from portal.identity.oidc import SignInRefused, metadata, providers

    configured = providers()
    if not configured:
        click.echo("No identity providers are configured (PORTAL_OIDC_PROVIDERS).")
        return
    failures = 0
    for provider in configured:
        click.echo(f"{provider.name} ({provider.label}): {provider.issuer}")
        try:
            document = metadata(provider)
            response = requests.get(document["jwks_uri"], timeout=(provider.connect_timeout, provider.timeout))
            response.raise_for_status()
            keys = response.json().get("keys", [])
        except (SignInRefused, requests.RequestException, ValueError, KeyError) as exc:
            failures += 1
            click.echo(f"  FAILED: {exc} (the log above says more)", err=True)
            continue
        methods = document.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
        notes = [f"{len(keys)} signing key(s)",
                 "userinfo: " + ("yes" if document.get("userinfo_endpoint") else "no"),
                 "logout: " + ("yes" if document.get("end_session_endpoint") else "no")]
        click.echo("  OK: " + ", ".join(notes))
        if provider.token_endpoint_auth_method not in methods:
            failures += 1
            click.echo(f"  FAILED: token_endpoint_auth_method {provider.token_endpoint_auth_method!r} is not "
                       f"offered; the provider offers {', '.join(methods)}", err=True)
        if "S256" not in document.get("code_challenge_methods_supported", ["S256"]):
            click.echo("  WARNING: the provider does not announce PKCE with S256", err=True)
    current_app.logger.info("oidc check: %d provider(s), %d failure(s)", len(configured), failures)
    if failures:
        raise SystemExit(1)
