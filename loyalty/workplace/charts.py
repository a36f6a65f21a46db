"""Small charts drawn on the server as inline SVG: no JavaScript, no inline styles.

Each function returns safe markup: an ``<svg role="img">`` whose ``<title>`` (and
``aria-labelledby``) says in words what the chart shows, so a screen reader, a test or a
person with images off reads the figures too. Shapes carry presentation attributes
(``x``, ``y``, ``width``, ``height``, ``points``) and CSS classes only; colours come from
``static/loyalty/workplace.css`` (the strict Content-Security-Policy refuses ``style=""``).
Every value in the markup is escaped.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

_ids = itertools.count(1)


def _title_id(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def _n(value: float) -> str:
    """A coordinate, short: ``12`` or ``12.5``."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def bar_chart(
    series: Sequence[tuple[str, int]],
    *,
    title: str,
    width: int = 240,
    height: int = 60,
    css: str = "",
) -> SafeString:
    """Vertical bars, one per ``(label, value)`` in ``series`` (oldest first), scaled to the
    largest value. Each bar has its own ``<title>`` (``label: value``) as a tooltip;
    negative values are drawn as zero height. An empty series draws the frame alone."""
    chart_id = _title_id("chart")
    top = max([value for _, value in series] + [0])
    count = max(len(series), 1)
    slot = width / count
    gap = min(2.0, slot / 4)
    bars = []
    for index, (label, value) in enumerate(series):
        shown = max(value, 0)
        bar_height = (shown / top) * (height - 1) if top else 0
        bars.append(
            (
                _n(index * slot + gap / 2),
                _n(height - bar_height),
                _n(max(slot - gap, 0.5)),
                _n(bar_height),
                "bar bar-zero" if not shown else "bar",
                f"{label}: {value:,}",
            )
        )
    return format_html(
        '<svg class="chart chart-bars{}" role="img" aria-labelledby="{}" viewBox="0 0 {} {}" width="{}" '
        'height="{}" xmlns="http://www.w3.org/2000/svg"><title id="{}">{}</title>'
        '<line class="axis" x1="0" y1="{}" x2="{}" y2="{}"/>{}</svg>',
        f" {css}" if css else "",
        chart_id,
        width,
        height,
        width,
        height,
        chart_id,
        title,
        height,
        width,
        height,
        format_html_join(
            "",
            '<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
            ((cls, x, y, w, h, tip) for x, y, w, h, cls, tip in bars),
        ),
    )


def sparkline(
    values: Sequence[int],
    *,
    title: str,
    width: int = 120,
    height: int = 24,
    css: str = "",
) -> SafeString:
    """A line through ``values`` (oldest first), scaled between their minimum and maximum,
    with a dot on the last value. Fewer than two values draw a flat line."""
    chart_id = _title_id("spark")
    points = list(values) or [0]
    if len(points) == 1:
        points = points * 2
    low, high = min(points), max(points)
    span = (high - low) or 1
    step = width / (len(points) - 1)
    pad = 2
    coordinates = [
        (index * step, pad + (height - 2 * pad) * (1 - (value - low) / span)) for index, value in enumerate(points)
    ]
    line = " ".join(f"{_n(x)},{_n(y)}" for x, y in coordinates)
    last_x, last_y = coordinates[-1]
    return format_html(
        '<svg class="chart chart-spark{}" role="img" aria-labelledby="{}" viewBox="0 0 {} {}" width="{}" '
        'height="{}" xmlns="http://www.w3.org/2000/svg"><title id="{}">{}</title>'
        '<polyline class="line" fill="none" points="{}"/><circle class="dot" cx="{}" cy="{}" r="2"/></svg>',
        f" {css}" if css else "",
        chart_id,
        width,
        height,
        width,
        height,
        chart_id,
        title,
        line,
        _n(min(last_x, width - 2)),
        _n(last_y),
    )


def describe(series: Sequence[tuple[str, int]], *, what: str) -> str:
    """A chart's title in words: ``Points issued per day, 2026-11-06 to 2026-12-05: total
    1,234, highest 300 on 2026-12-01.``"""
    if not series:
        return f"{what}: no data."
    total = sum(value for _, value in series)
    best_label, best = max(series, key=lambda item: item[1])
    span = f"{series[0][0]} to {series[-1][0]}" if len(series) > 1 else series[0][0]
    text = f"{what}, {span}: total {total:,}"
    return text + (f", highest {best:,} on {best_label}." if best > 0 else ".")
