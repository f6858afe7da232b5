from flask import g
from flask_babel import gettext as _
from flask_login import current_user
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate

from portal.api.schemas import UserSchema
from portal.identity.models import TokenScope
from portal.identity.tokens import MAX_DAYS, create_token, own_token, revoke_token, tokens_of

me_blp = Blueprint("api_me", __name__, description="The signed-in user")


@me_blp.route("")
@me_blp.response(200, UserSchema)
def me():
    """Who am I: the signed-in user and their roles."""
    return current_user


tokens_blp = Blueprint("api_tokens", __name__, description="The caller's personal API tokens")


class TokenSchema(Schema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    display_prefix = fields.Str(dump_only=True, metadata={"description": "The token's first characters"})
    scope = fields.Enum(TokenScope, by_value=True, required=True)
    created_at = fields.DateTime(dump_only=True)
    expires_at = fields.DateTime(dump_only=True)
    last_used_at = fields.DateTime(dump_only=True, allow_none=True)
    revoked_at = fields.DateTime(dump_only=True, allow_none=True)


class NewTokenSchema(TokenSchema):
    days = fields.Int(required=True, load_only=True, validate=validate.Range(min=1, max=MAX_DAYS))
    token = fields.Str(dump_only=True, metadata={"description": "The secret: returned once, never again"})


@tokens_blp.route("")
@tokens_blp.response(200, TokenSchema(many=True))
def list_tokens():
    """The caller's tokens, newest first (never the secrets)."""
    return tokens_of(current_user)


@tokens_blp.route("", methods=["POST"])
@tokens_blp.arguments(NewTokenSchema)
@tokens_blp.response(201, NewTokenSchema)
@tokens_blp.alt_response(403, description="Tokens are created from a signed-in session, not with another token")
def create(data):
    """Create a token. The response holds the secret: the only time it is shown."""
    if g.get("api_token") is not None:
        # A leaked token must not be able to mint itself successors.
        abort(403, message=_("Create tokens from a signed-in session, not with another token."))
    token, secret = create_token(current_user, data["name"], data["scope"], data["days"])
    token.token = secret  # type: ignore[attr-defined]
    return token


@tokens_blp.route("/<int:token_id>", methods=["DELETE"])
@tokens_blp.response(204)
def revoke(token_id: int):
    """Revoke one of the caller's tokens (a read-write token may revoke itself)."""
    token = own_token(current_user, token_id) or abort(404)
    revoke_token(token, acting_user=current_user)
