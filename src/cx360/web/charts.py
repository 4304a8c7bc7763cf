"""Charts as inline SVG, rendered on the server: no script, no CDN."""

from __future__ import annotations

from markupsafe import Markup, escape


def histogram(bins: list[tuple[float, float, int]], *, width: int = 420, height: int = 140, label: str = "") -> Markup:
    """Bars of an equal-width histogram; each bar's tooltip gives its range and count."""
    if not bins:
        return Markup("")
    top = max(n for _, _, n in bins) or 1
    bar = width / len(bins)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height + 18}" role="img" aria-label="{escape(label)}">']
    for i, (lo, hi, n) in enumerate(bins):
        h = (height - 4) * n / top
        parts.append(
            f'<rect x="{i * bar + 1:.1f}" y="{height - h:.1f}" width="{bar - 2:.1f}" height="{h:.1f}">'
            f"<title>{lo:,.2f} to {hi:,.2f}: {n:,}</title></rect>"
        )
    parts.append(f'<text x="0" y="{height + 14}">{bins[0][0]:,.2f}</text>')
    parts.append(f'<text x="{width}" y="{height + 14}" text-anchor="end">{bins[-1][1]:,.2f}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bars(items: list[tuple[str, float]], *, width: int = 420, row: int = 18) -> Markup:
    """Horizontal bars with their labels and values."""
    if not items:
        return Markup("")
    top = max(v for _, v in items) or 1
    height = row * len(items)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img">']
    for i, (name, value) in enumerate(items):
        w = (width - 200) * value / top
        y = i * row
        parts.append(
            f'<text x="0" y="{y + 13}">{escape(name)[:24]}</text>'
            f'<rect x="160" y="{y + 3}" width="{w:.1f}" height="{row - 6}">'
            f"<title>{escape(name)}: {value:,.2f}</title></rect>"
            f'<text x="{164 + w:.1f}" y="{y + 13}">{value:,.0f}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
