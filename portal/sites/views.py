from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from portal.extensions import db
from portal.identity.access import staff_required
from portal.sites.models import Partition, ResourceKind, Site
from portal.sites.operations import all_sites, set_partition_kind, sync_partitions
from portal.slurm.errors import SchedulerError

bp = Blueprint("sites", __name__, url_prefix="/sites")


@bp.route("/")
def index():
    return render_template("sites/index.html", sites=all_sites(), form=FlaskForm())


@bp.route("/<int:site_id>/sync", methods=["POST"])
@staff_required
def sync(site_id: int):
    site = db.get_or_404(Site, site_id)
    form = FlaskForm()
    if form.validate_on_submit():
        try:
            partitions = sync_partitions(site)
        except SchedulerError as exc:
            flash(_("Could not read partitions from %(site)s: %(error)s", site=site.name, error=exc), "error")
        else:
            flash(_("Read %(count)d partitions from %(site)s.", count=len(partitions), site=site.name), "info")
    return redirect(url_for("sites.index"))


@bp.route("/partitions/<int:partition_id>/kind", methods=["POST"])
@staff_required
def set_kind(partition_id: int):
    partition = db.get_or_404(Partition, partition_id)
    form = FlaskForm()
    try:
        kind = ResourceKind(request.form.get("resource_kind", ""))
    except ValueError:
        flash(_("Choose CPU or GPU."), "error")
        return redirect(url_for("sites.index"))
    if form.validate_on_submit():
        set_partition_kind(partition, kind)
        flash(_("%(partition)s now counts %(kind)s hours.", partition=partition.label, kind=kind.value.upper()), "info")
    return redirect(url_for("sites.index"))
