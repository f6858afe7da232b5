"""The burn-down chart: hours used so far and a dashed forecast at the current rate."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask_babel import gettext as _
from markupsafe import Markup

from portal.charts import Band, Point, Series, line_chart
from portal.grants.models import Grant
from portal.grants.summary import ResourceTotal, daily_use, forecast


def _at(day: date) -> datetime:
    return datetime.combine(day, time())


def burn_down_chart(grant: Grant, total: ResourceTotal, today: date,
                    days: list[tuple[date, float]] | None = None) -> Markup:
    """Cumulative use per day from the grant's start, the award as a line, and the forecast.

    ``days``: the pool's daily use when the caller read it already (the dashboard reads every
    shown pool's in one query); else it is read here."""
    used, points = 0.0, [Point(_at(grant.start_date), 0.0)]
    for day, hours in (daily_use(total) if days is None else days):
        used += hours
        points.append(Point(_at(day), used, label=f"{day.isoformat()}: {used:,.1f} {total.unit}"))
    now = min(today, grant.end_date)
    if points[-1].x < _at(now):
        points.append(Point(_at(now), used))
    outlook = forecast(grant, total, today)
    until = min(outlook.exhausted_on or grant.end_date, grant.end_date)
    ahead = [Point(_at(now), used)]
    if until > now:
        ahead.append(Point(_at(until), min(used + outlook.rate_per_day * (until - now).days, max(total.awarded, used))))
    return line_chart(
        [Series(_("Used"), points), Series(_("Forecast at the current rate"), ahead, dashed=True)],
        title=_("%(unit)s used on %(partitions)s", unit=total.unit, partitions=", ".join(total.partitions)),
        y_label=total.unit, y_from_zero=True,
        band=Band(low=0, high=total.awarded, line=total.awarded, label=_("Awarded")),
        x_min=_at(grant.start_date), x_max=_at(grant.end_date + timedelta(days=1)))
