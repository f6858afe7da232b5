"""URL converters."""
from __future__ import annotations

from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1  # the largest value of the database's INTEGER primary keys


class DatabaseIdConverter(IntegerConverter):
    """``<int:...>`` in every route: an id too large for the database is a 404, not a database error.

    flask-smorest documents the bound as the parameter's ``maximum`` in the OpenAPI description.
    """

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)
