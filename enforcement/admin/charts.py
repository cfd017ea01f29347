"""Small charts the console draws on the server, as SVG shapes a template renders (no script, no library).

``refusal_chart``: a key's refusals at the edge per window, one bar per window at its place in time, the
windows over the reporting threshold in red, the threshold as a dashed line."""

from datetime import UTC, datetime
from html import escape

from django.utils.safestring import mark_safe

WIDTH, HEIGHT, AXIS = 480, 72, 14
MAX_WINDOWS = 144  # a day of ten-minute windows


def _label(ms: int) -> str:
    return f"{datetime.fromtimestamp(ms / 1000, tz=UTC):%m-%d %H:%M}"


def refusal_chart(counts: dict[int, int], *, now_ms: int, window_ms: int, threshold: int) -> dict | None:
    """The chart of ``counts`` (window start in ms -> refusals) up to the window running at ``now_ms``, at most
    ``MAX_WINDOWS`` back; None when there is nothing in that span to draw."""
    last = now_ms // window_ms * window_ms
    first = max(min(counts, default=last), last - (MAX_WINDOWS - 1) * window_ms)
    shown = {start: count for start, count in counts.items() if first <= start <= last and count > 0}
    if not shown:
        return None
    slots = (last - first) // window_ms + 1
    slot = WIDTH / slots
    top = max(max(shown.values()), threshold * 1.25)
    bars = []
    for start, count in sorted(shown.items()):
        height = max(1.0, count / top * HEIGHT)
        bars.append({
            "x": round((start - first) // window_ms * slot, 2), "y": round(HEIGHT - height, 2),
            "width": round(max(1.0, slot - 1), 2), "height": round(height, 2), "over": count > threshold,
            "title": f"{_label(start)}-{_label(start + window_ms)[6:]} UTC: {count} refusals",
        })
    return {
        "width": WIDTH, "height": HEIGHT, "full_height": HEIGHT + AXIS, "bars": bars,
        "threshold": threshold, "threshold_y": round(HEIGHT - threshold / top * HEIGHT, 2),
        "first": f"{_label(first)} UTC", "last": f"{_label(last + window_ms)} UTC", "peak": max(shown.values()),
        "over": sum(bar["over"] for bar in bars),
    }


# ---------------------------------------------------------------- the metrics page's charts

PALETTE = ["#417690", "#e8a33d", "#5aa469", "#c4514d", "#8e6bb8", "#3fa7b5", "#b5883f", "#7f7f7f"]
PLOT_LEFT, PLOT_WIDTH, PLOT_HEIGHT, PLOT_TOP = 44, 430, 150, 8
MAX_SERIES = 6  # the largest series are drawn; the rest are summed as "other"


def _nice_top(value: float) -> float:
    """The axis' top: 1, 2 or 5 times a power of ten, at or above ``value``."""
    if value <= 0:
        return 1
    power = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _top_series(series: dict[str, list[float]]) -> dict[str, list[float]]:
    ranked = sorted(series, key=lambda name: (-sum(series[name]), name))
    if len(ranked) <= MAX_SERIES:
        return {name: series[name] for name in ranked}
    kept = {name: series[name] for name in ranked[: MAX_SERIES - 1]}
    rest = [series[name] for name in ranked[MAX_SERIES - 1:]]
    kept[f"other ({len(rest)})"] = [sum(values) for values in zip(*rest, strict=True)]
    return kept


def daily_chart(title: str, days: list[str], series: dict[str, list[float]], *, stacked: bool = True) -> dict:
    """Figures per day: stacked columns (``stacked``) or lines, one colour per series (the largest
    ``MAX_SERIES``), with a legend of totals. Each series is one SVG path, however many days: a year stays light."""
    series = _top_series({name: values for name, values in series.items() if any(values)})
    n = max(len(days), 1)
    slot = PLOT_WIDTH / n
    if stacked:
        peak = max((sum(values) for values in zip(*series.values(), strict=True)), default=0) if series else 0
    else:
        peak = max((max(values) for values in series.values()), default=0)
    top = _nice_top(peak)
    scale = PLOT_HEIGHT / top
    paths, base = [], [0.0] * n
    for index, (name, values) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        if stacked:
            parts = []
            for i, value in enumerate(values):
                if value:
                    height = value * scale
                    y = PLOT_TOP + PLOT_HEIGHT - base[i] - height
                    parts.append(f"M{PLOT_LEFT + i * slot:.1f} {y:.1f}h{max(slot - 0.6, 0.6):.1f}v{height:.1f}"
                                 f"h-{max(slot - 0.6, 0.6):.1f}z")
                    base[i] += height
            d = "".join(parts)
        else:
            d = "M" + "L".join(f"{PLOT_LEFT + (i + 0.5) * slot:.1f} {PLOT_TOP + PLOT_HEIGHT - v * scale:.1f}"
                               for i, v in enumerate(values))
        paths.append({"name": name, "colour": colour, "d": d, "total": _fmt(sum(values)), "stacked": stacked})
    ticks = [{"y": round(PLOT_TOP + PLOT_HEIGHT - PLOT_HEIGHT * f, 1), "label": _fmt(top * f)} for f in (0, 0.5, 1)]
    labels = []
    if days:
        for i in sorted({0, (n - 1) // 2, n - 1}):
            anchor = "end" if i == n - 1 and n > 1 else "start" if i == 0 and n > 1 else "middle"
            labels.append({"x": round(PLOT_LEFT + (i + 0.5) * slot, 1), "label": days[i][5:], "anchor": anchor})
    height = PLOT_TOP + PLOT_HEIGHT + 20
    parts = ['<g class="axis">']
    for tick in ticks:
        parts.append(f'<line x1="{PLOT_LEFT}" x2="{PLOT_LEFT + PLOT_WIDTH}" y1="{tick["y"]}" y2="{tick["y"]}"></line>'
                     f'<text x="{PLOT_LEFT - 4}" y="{tick["y"]}" text-anchor="end" dy="4">{tick["label"]}</text>')
    for label in labels:
        parts.append(f'<text x="{label["x"]}" y="{height - 4}" text-anchor="{label["anchor"]}">'
                     f'{escape(label["label"])}</text>')
    parts.append("</g>")
    for path in paths:
        paint = (f'fill="{path["colour"]}"' if stacked else f'fill="none" stroke="{path["colour"]}" stroke-width="2"')
        parts.append(f'<path d="{path["d"]}" {paint}><title>{escape(path["name"])}: {path["total"]}</title></path>')
    return {"kind": "daily", "title": title, "paths": paths, "legend": [
        {"name": f'{path["name"]} ({path["total"]})', "colour": path["colour"]} for path in paths],
        "height": height, "empty": not paths, "svg": _svg(title, height, parts)}


def _svg(title: str, height: float, parts: list[str]) -> str:
    """The chart's SVG: built here, escaped here, one string (a year of days renders in no time)."""
    return mark_safe(  # noqa: S308 - every text in it is escaped above
        f'<svg role="img" aria-label="{escape(title)}" width="480" height="{height}" viewBox="0 0 480 {height}">'
        + "".join(parts) + "</svg>")


GROUP_LABEL, GROUP_BAR, GROUP_AREA = 160, 12, 260


def grouped_bars(title: str, rows: dict[str, dict[str, float | None]], *, unit: str = "",
                 marker: float | None = None, marker_label: str = "") -> dict:
    """Horizontal bars, a group per row (a severity, a staff member ...) and a colour per series, each bar with its
    value; ``marker`` draws a dashed line at that value (a threshold)."""
    names = list(dict.fromkeys(name for row in rows.values() for name in row))
    values = [v for row in rows.values() for v in row.values() if v is not None]
    top = max([*values, marker or 0, 0]) or 1
    groups, y = [], 6
    for label, row in rows.items():
        bars = []
        for index, name in enumerate(names):
            value = row.get(name)
            bars.append({"name": name, "colour": PALETTE[index % len(PALETTE)], "y": y + index * (GROUP_BAR + 2),
                         "width": round(GROUP_AREA * (value or 0) / top, 1), "value": value,
                         "text": "n/a" if value is None else f"{_fmt(value)}{unit}"})
        groups.append({"label": label, "y": y, "text_y": y + (len(names) * (GROUP_BAR + 2)) / 2 + 4, "bars": bars})
        y += len(names) * (GROUP_BAR + 2) + 10
    marker_x = None if marker is None else round(GROUP_LABEL + GROUP_AREA * marker / top, 1)
    parts = []
    for group in groups:
        label = group["label"]
        short = label if len(label) <= 26 else label[:25] + "\u2026"
        parts.append(f'<text x="0" y="{group["text_y"]}" style="font-size: 11px">{escape(short)}'
                     f'<title>{escape(label)}</title></text>')
        for bar in group["bars"]:
            parts.append(f'<rect x="{GROUP_LABEL}" y="{bar["y"]}" width="{bar["width"]}" height="{GROUP_BAR}" '
                         f'fill="{bar["colour"]}"><title>{escape(label)}, {escape(bar["name"])}: {escape(bar["text"])}'
                         f'</title></rect><text x="{GROUP_LABEL + round(bar["width"]) + 4}" y="{bar["y"] + 10}" '
                         f'style="font-size: 11px">{escape(bar["text"])}</text>')
    if marker_x is not None:
        parts.append(f'<line class="marker" x1="{marker_x}" x2="{marker_x}" y1="0" y2="{y}">'
                     f'<title>{escape(marker_label)}</title></line>')
    legend = [{"name": name, "colour": PALETTE[index % len(PALETTE)]} for index, name in enumerate(names)]
    if marker_label:
        legend.append({"name": marker_label, "colour": "#c4514d"})
    return {"kind": "grouped", "title": title, "groups": groups, "legend": legend, "height": y,
            "empty": not any(values), "svg": _svg(title, y, parts)}
