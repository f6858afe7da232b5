import json

from flask_babel import gettext as _

from portal.benchmarks.operations import InvalidResult


def read_result_upload(raw: bytes) -> dict:
    """Parse an uploaded result file; a clear InvalidResult for anything that is not JSON."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidResult([_("The file is not JSON: %(error)s", error=exc)]) from exc
