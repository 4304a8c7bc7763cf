"""Charts as inline SVG, rendered on the server: no script, no CDN. Every chart has its axes and
figures written on it; each mark's tooltip repeats its exact value."""

from __future__ import annotations

import datetime as dt

from markupsafe import Markup, escape

from cx360.privacy.small_groups import Few
from cx360.web.format import when

LABEL_CHARS = 26  # a label longer than this is cut with an ellipsis; its tooltip holds it whole


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _tick(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 or float(v).is_integer() else f"{v:,.2f}"


def _known(v) -> float:
    """A value as drawn: a count withheld as `< k` (cx360.privacy.small_groups) draws nothing."""
    return 0 if isinstance(v, Few) else v


def histogram(
    bins: list[tuple[float, float, int]], *, width: int = 420, height: int = 140, label: str = "", unit: str = "people"
) -> Markup:
    """Bars of an equal-width histogram over a y axis of counts and an x axis of the measure."""
    if not bins:
        return Markup("")
    top = max(n for _, _, n in bins) or 1
    left, bottom = 44, 30  # room for the count axis and the measure axis
    plot_w, plot_h = width - left - 8, height
    bar = plot_w / len(bins)
    parts = [
        f'<svg class="chart histogram" viewBox="0 0 {width} {height + bottom + 8}" role="img" '
        f'aria-label="{escape(label)}">',
        *_count_axes(left, width, height, top, unit),
    ]
    for i, (lo, hi, n) in enumerate(bins):
        h = (plot_h - 4) * n / top
        parts.append(
            f'<rect x="{left + i * bar + 1:.1f}" y="{height + 8 - h:.1f}" '
            f'width="{max(bar - 2, 1):.1f}" height="{h:.1f}">'
            f"<title>{_tick(lo)} to {_tick(hi)}: {n:,} {unit}</title></rect>"
        )
    mid = (bins[0][0] + bins[-1][1]) / 2
    for x, v, anchor in (
        (left, bins[0][0], "start"),
        (left + plot_w / 2, mid, "middle"),
        (width - 8, bins[-1][1], "end"),
    ):
        parts.append(f'<text class="tick" x="{x:.1f}" y="{height + 22}" text-anchor="{anchor}">{_tick(v)}</text>')
    parts.append(
        f'<text class="axis-title" x="{left + plot_w / 2:.1f}" y="{height + bottom + 6}" text-anchor="middle">'
        f"{escape(label)}</text></svg>"
    )
    return Markup("".join(parts))


def bars(
    items: list[tuple[str, float]], *, width: int = 420, row: int = 20, percent: bool = False, name=lambda k: k
) -> Markup:
    """Horizontal bars with their labels (shown through `name`) and values (as shares with `percent`)."""
    items = [(name(k), v) for k, v in items]
    if not items:
        return Markup("")
    top = max(_known(v) for _, v in items) or 1
    label_w, value_w = 170, 64
    height = row * len(items)
    parts = [f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img">']
    for i, (key, v) in enumerate(items):
        w = (width - label_w - value_w) * _known(v) / top
        y = i * row
        shown = str(v) if isinstance(v, Few) else f"{v:.1%}" if percent else _tick(v)
        parts.append(
            f'<text x="0" y="{y + 14}"><title>{escape(key)}</title>{escape(_short(str(key)))}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row - 8}">'
            f"<title>{escape(key)}: {shown}</title></rect>"
            f'<text x="{label_w + w + 4:.1f}" y="{y + 14}">{shown}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def line(points: list[tuple[dt.datetime, float]], *, width: int = 560, height: int = 140, unit: str = "") -> Markup:
    """A step line of a value over time (a segment's size after each evaluation), with both axes."""
    if not points:
        return Markup("")
    left, bottom = 50, 24
    t0, t1 = points[0][0], points[-1][0]
    span = (t1 - t0).total_seconds() or 1.0
    top = max(v for _, v in points) or 1
    plot_w = width - left - 10

    def x(t: dt.datetime) -> float:
        return left + plot_w * ((t - t0).total_seconds() / span if len(points) > 1 else 0.5)

    def y(v: float) -> float:
        return 8 + (height - 8) * (1 - v / top)

    path, prev = [], None
    for t, v in points:
        path.append(f"{'M' if prev is None else 'H'}{x(t):.1f}" + ("" if prev is None else f"V{y(v):.1f}"))
        if prev is None:
            path[-1] += f" {y(v):.1f}"
        prev = v
    parts = [
        f'<svg class="chart line" viewBox="0 0 {width} {height + bottom}" role="img">',
        f'<line class="axis" x1="{left}" y1="8" x2="{left}" y2="{height}"/>',
        f'<line class="axis" x1="{left}" y1="{height}" x2="{width - 10}" y2="{height}"/>',
        f'<text class="tick" x="{left - 4}" y="{height + 3}" text-anchor="end">0</text>',
        f'<text class="tick" x="{left - 4}" y="14" text-anchor="end">{top:,.0f}</text>',
        f'<path d="{" ".join(path)}"/>',
    ]
    for t, v in points:
        parts.append(
            f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="3"><title>{when(t)}: {v:,.0f} {unit}</title></circle>'
        )
    parts.append(f'<text class="tick" x="{left}" y="{height + 16}">{when(t0)}</text>')
    if len(points) > 1:
        parts.append(f'<text class="tick" x="{width - 10}" y="{height + 16}" text-anchor="end">{when(t1)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


TONES = ("positive", "neutral", "negative")


def tone_columns(periods: list[dict], *, width: int = 560, height: int = 140, unit: str = "mentions") -> Markup:
    """Stacked columns of mentions per period, split by tone (rows of cx360.listening.service.Trend's
    `periods`, summed over terms), over a y axis of counts and an x axis of periods, with a legend."""
    per: dict = {}
    for r in periods:
        counts = per.setdefault(r["period"], dict.fromkeys(TONES, 0))
        for t in TONES:
            a, b = counts[t], r[t]  # a withheld count (`< k`) keeps the sum withheld
            counts[t] = a if isinstance(a, Few) else b if isinstance(b, Few) else a + (b or 0)
    if not per:
        return Markup("")
    top = max(sum(map(_known, c.values())) for c in per.values()) or 1
    left, bottom = 44, 40  # room for the count axis, and for the period axis and the legend
    plot_w = width - left - 8
    col = plot_w / len(per)
    parts = [
        f'<svg class="chart columns" viewBox="0 0 {width} {height + bottom + 8}" role="img" '
        f'aria-label="{unit} per period by tone">',
        *_count_axes(left, width, height, top, unit),
    ]
    for i, (period, counts) in enumerate(per.items()):
        x, base = left + i * col + 1, height + 8
        shown = sum(map(_known, counts.values()))
        group = [f'<g class="period" data-period="{when(period)}" data-mentions="{shown}">']
        for t in TONES:
            h = (height - 4) * _known(counts[t]) / top
            if counts[t]:  # a withheld count (`< k`) keeps its tooltip and draws nothing
                n = counts[t] if isinstance(counts[t], Few) else f"{counts[t]:,}"
                group.append(
                    f'<rect class="{t}" x="{x:.1f}" y="{base - h:.1f}" width="{max(col - 2, 1):.1f}" '
                    f'height="{h:.1f}"><title>{when(period)}: {n} {t}</title></rect>'
                )
            base -= h
        parts.append("".join(group) + "</g>")
    shown = range(len(per)) if len(per) <= 6 else (0, len(per) - 1)  # every period while their dates fit
    for i in shown:
        parts.append(
            f'<text class="tick" x="{left + (i + 0.5) * col:.1f}" y="{height + 22}" text-anchor="middle">'
            f"{when(list(per)[i])}</text>"
        )
    for i, t in enumerate(TONES):
        x = left + i * 90
        parts.append(
            f'<rect class="{t} legend" x="{x}" y="{height + bottom - 6}" width="10" height="10"/>'
            f'<text x="{x + 14}" y="{height + bottom + 3}">{t}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def funnel(steps) -> Markup:
    """A funnel's steps as bars of the people who entered each (cx360.funnels.compute.Step)."""
    return bars([(f"Step {s.step}", s.entered) for s in steps])


def items(rows: list[dict], key: str, value: str, *, name=lambda k: k) -> list[tuple]:
    """(key, value) pairs of rows for `bars` or `line`, the key shown through `name` (a label formatter)."""
    return [(name(r[key]), r[value] or 0) for r in rows]


def _count_axes(left: int, width: int, height: int, top: int, unit: str) -> list[str]:
    """The y axis of counts (0 to `top`, titled with `unit`) and the x axis, as SVG elements."""
    return [
        f'<line class="axis" x1="{left}" y1="8" x2="{left}" y2="{height + 8}"/>',
        f'<line class="axis" x1="{left}" y1="{height + 8}" x2="{width - 8}" y2="{height + 8}"/>',
        f'<text class="tick" x="{left - 4}" y="{height + 11}" text-anchor="end">0</text>',
        f'<text class="tick" x="{left - 4}" y="14" text-anchor="end">{top:,}</text>',
        f'<text class="axis-title" x="10" y="{height / 2 + 8}" text-anchor="middle" '
        f'transform="rotate(-90 10 {height / 2 + 8})">{unit}</text>',
    ]
