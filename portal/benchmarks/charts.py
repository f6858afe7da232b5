"""The history chart of one metric: measured values over time against the reference band."""
from __future__ import annotations

from flask_babel import gettext as _
from markupsafe import Markup

from portal.benchmarks.models import MetricStatus
from portal.benchmarks.operations import HistoryPoint
from portal.charts import Band, Point, Series, line_chart
from portal.formatting import format_number


def history_chart(key: str, history: list[HistoryPoint]) -> Markup:
    points = [Point(h.measured_at, h.mean, h.stdev, flagged=h.status is MetricStatus.FAIL,
                    label=f"{h.measured_at:%Y-%m-%d %H:%M}: {format_number(h.mean)} {h.unit} ({h.status.value})")
              for h in history]
    latest = history[-1] if history else None
    band = None
    if latest is not None and latest.reference is not None:
        band = Band(latest.lower_bound, latest.upper_bound, line=latest.reference,
                    label=_("reference %(value)s %(unit)s", value=format_number(latest.reference), unit=latest.unit))
    unit = latest.unit if latest else ""
    return line_chart([Series(key, points)], title=_("History of %(key)s", key=key), y_label=unit, band=band)
