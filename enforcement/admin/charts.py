"""Small charts the console draws on the server, as SVG shapes a template renders (no script, no library).

``refusal_chart``: a key's refusals at the edge per window, one bar per window at its place in time, the
windows over the reporting threshold in red, the threshold as a dashed line."""

from datetime import UTC, datetime

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
