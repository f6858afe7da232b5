"""A real OpenID Connect provider on loopback, built with Authlib's server side, for the tests.

It publishes a discovery document and its keys, runs the authorization code flow with PKCE
(S256 required) and single-use codes, and signs RS256 ID tokens. It signs the user in without
asking, as ``provider.user``. ``provider.misbehave`` holds knobs that make it lie in one way:
a different nonce, an expired token, a signature by a key it does not publish, another issuer.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core import grants as oidc_grants
from authlib.oidc.core.models import AuthorizationCodeMixin
from flask import Flask, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

KID = "test-key-1"


@dataclass
class Misbehaviour:
    nonce: str | None = None  # put this nonce in the ID token instead of the one asked for
    lifetime: int = 300  # seconds the ID token is valid; negative: already expired
    issuer: str | None = None  # claim to be this issuer
    foreign_key: bool = False  # sign with a key that is not published (same key id)
    # Put only "sub" into the ID token and everything else into userinfo (as node oidc-provider
    # does by default, ``conformIdTokenClaims``).
    claims_in_userinfo_only: bool = False
    userinfo_sub: str | None = None  # answer userinfo about this subject instead
    token_delay: float = 0.0  # seconds the token endpoint waits before answering


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list[str] = field(default_factory=list)

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s in {"openid", "email", "profile"})

    def check_redirect_uri(self, redirect_uri):
        # Any loopback callback of the portal under test (its port is chosen at random).
        return redirect_uri in self.redirect_uris or redirect_uri.startswith("http://127.0.0.1:") \
            or redirect_uri.startswith("http://localhost/")

    def check_client_secret(self, client_secret):
        return client_secret == self.client_secret

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post") if endpoint == "token" else True

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class AuthCode(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: dict[str, Any]
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time


class OidcTestProvider:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig", "alg": "RS256"})
        self.foreign_key = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig", "alg": "RS256"})
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, AuthCode] = {}
        self.access_tokens: dict[str, dict[str, Any]] = {}
        # Sessions at the provider, by ``sid``: True while signed in, False once ended by logout.
        self.sessions: dict[str, bool] = {}
        self.token_auth_methods: list[str] = []  # how the client authenticated at /token, in order
        self.logout_requests: list[dict[str, str]] = []
        self.misbehave = Misbehaviour()
        self.user: dict[str, Any] = {}
        self.app = self._build_app()
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.reset()

    # -- test controls -------------------------------------------------------------------
    def start(self) -> OidcTestProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def reset(self) -> None:
        self.misbehave = Misbehaviour()
        self.codes.clear()
        self.access_tokens.clear()
        self.sessions.clear()
        self.token_auth_methods.clear()
        self.logout_requests.clear()
        self.user = {"sub": "a1b2c3-subject", "name": "Eglė Šimkūnaitė", "email": "egle@uni.example.lt",
                     "email_verified": True, "schac_home_organization": "uni.example.lt"}
        self.discovery_reads = 0

    def add_client(self, client_id: str, client_secret: str) -> Client:
        client = Client(client_id, client_secret)
        self.clients[client_id] = client
        return client

    def portal_config(self, name: str = "test", client_id: str = "portal", **overrides: Any) -> dict[str, Any]:
        """A ``PORTAL_OIDC_PROVIDERS`` entry for this provider (registering the client)."""
        secret = f"{client_id}-secret"
        self.add_client(client_id, secret)
        return {"name": name, "label": "Test IdP", "issuer": self.issuer, "client_id": client_id,
                "client_secret": secret, **overrides}

    # -- the provider ----------------------------------------------------------------------
    def _build_app(self) -> Flask:
        provider = self
        app = Flask("oidc_test_provider")
        def save_token(token, request):
            provider.access_tokens[token["access_token"]] = dict(request.user)

        server = AuthorizationServer(app, query_client=self.clients.get, save_token=save_token)

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code, request):
                data = request.payload.data
                provider.codes[code] = AuthCode(
                    code=code, client_id=request.client.client_id, redirect_uri=request.payload.redirect_uri,
                    scope=request.scope, user=dict(request.user), nonce=data.get("nonce"),
                    code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"), auth_time=int(time.time()))

            def query_authorization_code(self, code, client):
                item = provider.codes.get(code)
                return item if item is not None and item.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code):
                provider.codes.pop(authorization_code.code, None)  # single use: a replay finds nothing

            def authenticate_user(self, authorization_code):
                return authorization_code.user

        class OpenIDCode(oidc_grants.OpenIDCode):
            def exists_nonce(self, nonce, request):
                return False

            def resolve_client_private_key(self, client):
                return provider.foreign_key if provider.misbehave.foreign_key else provider.key

            def get_client_algorithm(self, client):
                return "RS256"

            def get_encode_header(self, client):
                return {"alg": "RS256", "kid": KID}

            def get_client_claims(self, client):
                now = int(time.time())
                lifetime = provider.misbehave.lifetime
                return {"iss": provider.misbehave.issuer or provider.issuer, "aud": [client.get_client_id()],
                        "iat": now if lifetime > 0 else now + lifetime - 60, "exp": now + lifetime}

            def get_authorization_code_claims(self, authorization_code):
                claims = super().get_authorization_code_claims(authorization_code)
                if provider.misbehave.nonce is not None:
                    claims["nonce"] = provider.misbehave.nonce
                claims["sid"] = authorization_code.user.get("sid")
                return claims

            def generate_user_info(self, user, scope):
                if provider.misbehave.claims_in_userinfo_only:
                    return UserInfo({"sub": user["sub"]})
                return UserInfo({k: v for k, v in user.items() if k != "sid"})

        server.register_grant(CodeGrant, [OpenIDCode(require_nonce=True), CodeChallenge(required=True)])

        @app.get("/.well-known/openid-configuration")
        def discovery():
            provider.discovery_reads += 1
            base = provider.issuer
            return jsonify(issuer=base, authorization_endpoint=f"{base}/authorize", token_endpoint=f"{base}/token",
                           jwks_uri=f"{base}/jwks", response_types_supported=["code"],
                           subject_types_supported=["public"], id_token_signing_alg_values_supported=["RS256"],
                           code_challenge_methods_supported=["S256"], scopes_supported=["openid", "email", "profile"],
                           token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
                           userinfo_endpoint=f"{base}/userinfo", end_session_endpoint=f"{base}/logout")

        @app.get("/jwks")
        def jwks():
            return jsonify(keys=[provider.key.as_dict(private=False)])

        @app.get("/authorize")
        def authorize():
            # A new session at the provider for each sign-in (no one is asked anything here).
            sid = secrets.token_hex(8)
            provider.sessions[sid] = True
            user = {**provider.user, "sid": sid}
            try:
                grant = server.get_consent_grant(end_user=user)
            except OAuth2Error as error:
                return server.handle_error_response(None, error)
            return server.create_authorization_response(grant=grant, grant_user=user)

        @app.post("/token")
        def token():
            provider.token_auth_methods.append(
                "client_secret_basic" if request.authorization else
                "client_secret_post" if request.form.get("client_secret") else "none")
            if provider.misbehave.token_delay:
                time.sleep(provider.misbehave.token_delay)
            return server.create_token_response()

        @app.get("/userinfo")
        def userinfo():
            scheme, _sep, value = request.headers.get("Authorization", "").partition(" ")
            user = provider.access_tokens.get(value) if scheme.lower() == "bearer" else None
            if user is None:
                return jsonify(error="invalid_token"), 401
            claims = {k: v for k, v in user.items() if k != "sid"}
            if provider.misbehave.userinfo_sub is not None:
                claims["sub"] = provider.misbehave.userinfo_sub
            return jsonify(claims)

        @app.get("/logout")
        def logout():
            """RP-initiated logout: end the session the ID token hint names, then go back."""
            provider.logout_requests.append(dict(request.args))
            hint = request.args.get("id_token_hint")
            if hint:
                token = jwt.decode(hint, provider.key)  # only tokens this provider signed
                provider.sessions[token.claims["sid"]] = False
            target = request.args.get("post_logout_redirect_uri")
            client = provider.clients.get(request.args.get("client_id", ""))
            if target and client is not None and client.check_redirect_uri(target):
                return redirect(f"{target}{'&' if '?' in target else '?'}{urlencode({'state': request.args.get('state', '')})}")
            return "signed out"

        return app


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcTestProvider]:
    provider = OidcTestProvider().start()
    yield provider
    provider.stop()


def provider_answer(client, name: str = "test") -> str:
    """Start signing in and let the provider answer; returns the callback path with code and state."""
    start = client.get(f"/login/oidc/{name}")
    assert start.status_code == 302, start.get_data(as_text=True)
    authorize = start.headers["Location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["state"][0] and query["nonce"][0]
    answer = requests.get(authorize, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    callback = urlsplit(answer.headers["Location"])
    return f"{callback.path}?{callback.query}"
