from flask_login import current_user
from flask_smorest import Blueprint

from portal.api.schemas import UserSchema

blp = Blueprint("api_me", __name__, description="The signed-in user")


@blp.route("")
@blp.response(200, UserSchema)
def me():
    """Who am I: the signed-in user and their roles."""
    return current_user
