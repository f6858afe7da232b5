from flask_babel import gettext as _
from flask_smorest import Blueprint, abort

from portal.api.schemas import SiteSchema
from portal.extensions import db
from portal.identity.access import staff_required
from portal.sites.models import Site
from portal.sites.operations import all_sites, sync_partitions
from portal.slurm.errors import SchedulerError, SchedulerUnreachable
from portal.transactions import keep_on_error

blp = Blueprint("api_sites", __name__, description="Hosting sites and their Slurm partitions")


@blp.route("")
@blp.response(200, SiteSchema(many=True))
def list_sites():
    """All sites with the partition limits last read from Slurm."""
    return all_sites()


@blp.route("/<int:site_id>")
@blp.response(200, SiteSchema)
def get_site(site_id: int):
    return db.get_or_404(Site, site_id)


@blp.route("/<int:site_id>/sync", methods=["POST"])
@blp.response(200, SiteSchema)
@blp.alt_response(503, description="The site's Slurm cluster could not be reached")
@staff_required
def sync_site(site_id: int):
    """Read the partitions and their limits from the site's live Slurm cluster (staff)."""
    site = db.get_or_404(Site, site_id)
    try:
        sync_partitions(site)
    except SchedulerUnreachable as exc:
        keep_on_error()  # the error note on the site outlives the error response
        abort(503, message=_("Slurm is unreachable: %(error)s", error=exc))
    except SchedulerError as exc:
        keep_on_error()
        abort(502, message=_("Slurm refused: %(error)s", error=exc))
    return site
