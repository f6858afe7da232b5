"""A small line chart in SVG: time on x, a value on y, optional error bars and a band."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 760, 320
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 20, 20, 50
PALETTE = ("#0b4f9c", "#c2410c", "#15803d", "#7c3aed", "#be123c")


@dataclass(frozen=True)
class Point:
    x: datetime
    y: float
    error: float | None = None  # half-height of the error bar (e.g. one standard deviation)
    flagged: bool = False  # drawn as a hollow red marker (e.g. a failed check)
    label: str = ""  # tooltip


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[Point]
    dashed: bool = False


@dataclass(frozen=True)
class Band:
    """A horizontal range to draw behind the data (e.g. a reference with its tolerance)."""
    low: float | None
    high: float | None
    label: str = ""
    line: float | None = None  # the reference value itself


@dataclass
class _Scale:
    lo: float
    hi: float
    out_lo: float
    out_hi: float

    def __call__(self, v: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.out_lo + (v - self.lo) / span * (self.out_hi - self.out_lo)


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _fmt(v: float) -> str:
    from portal.formatting import format_number

    return format_number(v)


@dataclass
class _Canvas:
    parts: list[str] = field(default_factory=list)

    def add(self, tag: str, text: str | None = None, **attrs) -> None:
        rendered = " ".join(f'{k.rstrip("_").replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
        self.parts.append(f"<{tag} {rendered}>{escape(text)}</{tag}>" if text is not None else f"<{tag} {rendered}/>")


def line_chart(series: Sequence[Series], *, title: str, y_label: str,
               band: Band | None = None, y_from_zero: bool = False,
               x_min: datetime | None = None, x_max: datetime | None = None) -> Markup:
    """Render ``series`` as an SVG line chart; returns markup safe to place in a template."""
    points = [p for s in series for p in s.points]
    canvas = _Canvas()
    canvas.add("title", title)
    if not points:
        canvas.add("text", "—", x=WIDTH / 2, y=HEIGHT / 2, text_anchor="middle", fill="#5b6475")
        return _wrap(canvas, title)
    xs = [p.x.timestamp() for p in points]
    x_lo = x_min.timestamp() if x_min else min(xs)
    x_hi = x_max.timestamp() if x_max else max(xs)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 3600, x_hi + 3600
    ys = [p.y + (p.error or 0) for p in points] + [p.y - (p.error or 0) for p in points]
    if band:
        ys += [v for v in (band.low, band.high, band.line) if v is not None]
    y_lo, y_hi = (0.0 if y_from_zero else min(ys)), max(ys)
    pad = (y_hi - y_lo) * 0.08 or abs(y_hi) * 0.1 or 1.0
    y_lo, y_hi = (y_lo if y_from_zero else y_lo - pad), y_hi + pad
    sx = _Scale(x_lo, x_hi, MARGIN_LEFT, WIDTH - MARGIN_RIGHT)
    sy = _Scale(y_lo, y_hi, HEIGHT - MARGIN_BOTTOM, MARGIN_TOP)

    if band:
        top = sy(band.high if band.high is not None else y_hi)
        bottom = sy(band.low if band.low is not None else y_lo)
        canvas.add("rect", x=MARGIN_LEFT, y=top, width=WIDTH - MARGIN_LEFT - MARGIN_RIGHT,
                   height=max(bottom - top, 0), fill="#15803d", fill_opacity="0.10", class_="band")
        if band.line is not None:
            canvas.add("line", x1=MARGIN_LEFT, x2=WIDTH - MARGIN_RIGHT, y1=sy(band.line), y2=sy(band.line),
                       stroke="#15803d", stroke_dasharray="6 4", class_="reference")
        if band.label:
            canvas.add("text", band.label, x=WIDTH - MARGIN_RIGHT - 4, y=top + 14, text_anchor="end",
                       fill="#15803d", font_size="12")
    for tick in _nice_ticks(y_lo, y_hi):
        y = sy(tick)
        canvas.add("line", x1=MARGIN_LEFT, x2=WIDTH - MARGIN_RIGHT, y1=y, y2=y, stroke="#e3e6ee")
        canvas.add("text", _fmt(tick), x=MARGIN_LEFT - 6, y=y + 4, text_anchor="end", font_size="11", fill="#5b6475")
    for tick in _nice_ticks(x_lo, x_hi, 4):
        x = sx(tick)
        when = datetime.fromtimestamp(tick).strftime("%Y-%m-%d" if x_hi - x_lo > 3 * 86400 else "%m-%d %H:%M")
        canvas.add("text", when, x=x, y=HEIGHT - MARGIN_BOTTOM + 18, text_anchor="middle", font_size="11", fill="#5b6475")
    canvas.add("text", y_label, x=14, y=MARGIN_TOP + (HEIGHT - MARGIN_TOP - MARGIN_BOTTOM) / 2, font_size="12",
               fill="#1d2330", text_anchor="middle",
               transform=f"rotate(-90 14 {MARGIN_TOP + (HEIGHT - MARGIN_TOP - MARGIN_BOTTOM) / 2})")
    canvas.add("line", x1=MARGIN_LEFT, x2=MARGIN_LEFT, y1=MARGIN_TOP, y2=HEIGHT - MARGIN_BOTTOM, stroke="#5b6475")
    canvas.add("line", x1=MARGIN_LEFT, x2=WIDTH - MARGIN_RIGHT, y1=HEIGHT - MARGIN_BOTTOM,
               y2=HEIGHT - MARGIN_BOTTOM, stroke="#5b6475")

    for index, s in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        ordered = sorted(s.points, key=lambda p: p.x)
        path = " ".join(f"{'M' if i == 0 else 'L'}{sx(p.x.timestamp()):.1f},{sy(p.y):.1f}" for i, p in enumerate(ordered))
        canvas.add("path", d=path, fill="none", stroke=colour, stroke_width="2", class_="series",
                   **({"stroke_dasharray": "5 4"} if s.dashed else {}))
        for p in ordered:
            x, y = sx(p.x.timestamp()), sy(p.y)
            if p.error:
                canvas.add("line", x1=x, x2=x, y1=sy(p.y - p.error), y2=sy(p.y + p.error), stroke=colour)
            canvas.parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" class="point{" flagged" if p.flagged else ""}" '
                f'fill="{"#fff" if p.flagged else colour}" stroke="{"#a4161a" if p.flagged else colour}" stroke-width="2">'
                f"<title>{escape(p.label or _fmt(p.y))}</title></circle>")
        canvas.add("text", s.name, x=MARGIN_LEFT + 8 + 160 * index, y=HEIGHT - 10, fill=colour, font_size="12")
    return _wrap(canvas, title)


def _wrap(canvas: _Canvas, title: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" class="chart">' + "".join(canvas.parts) + "</svg>")
