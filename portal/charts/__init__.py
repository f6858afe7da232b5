"""Server-rendered SVG charts.

Charts are drawn on the server as SVG: they need no JavaScript, no asset from another host,
and no inline style (the Content-Security-Policy forbids it), and they print.
"""
from portal.charts.svg import Band, Point, Series, line_chart

__all__ = ["Band", "Point", "Series", "line_chart"]
