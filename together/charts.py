"""Server-side SVG charts for the dashboard (issue 19): no CDN, no script.

Each function takes figures already computed by a selector (it does no
arithmetic of money rules, only geometry) and returns a `Chart`: the SVG
(`role="img"`, a `<title>` and `<desc>` it is labelled by) and the data table
behind it (columns and formatted rows), which templates/charts/chart.html renders
under the picture in a <details> that print opens. The SVG scales to its box
(viewBox, width 100%); colours come from static/css/charts.css classes
(`tone-*`), so print and high-contrast styles can change them.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 480
HEIGHT = 200


@dataclass
class Chart:
    id: str
    title: str
    description: str
    svg: SafeString
    columns: list[str]
    rows: list[list[str]]
    numeric: list[bool] = field(default_factory=list)  # per column: right-aligned
    kind: str = "columns"
    legend: list[tuple[str, str]] = field(default_factory=list)  # (label, tone) per series shown

    @property
    def head(self) -> list[tuple[str, bool]]:
        return [(c, bool(self.numeric[i]) if i < len(self.numeric) else False) for i, c in enumerate(self.columns)]

    @property
    def body(self) -> list[list[tuple[str, bool]]]:
        return [[(c, bool(self.numeric[i]) if i < len(self.numeric) else False) for i, c in enumerate(row)] for row in self.rows]


def _svg(chart_id: str, title: str, description: str, body: str, *, height: int = HEIGHT, width: int = WIDTH) -> SafeString:
    return mark_safe(
        f'<svg class="chart-svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-t">{escape(title)}</title><desc id="{chart_id}-d">{escape(description)}</desc>{body}</svg>'
    )


def _nice_max(value: int) -> int:
    """A round axis maximum at or above `value`, four equal steps of 1, 2, 2.5 or 5 × a power of ten."""
    if value <= 0:
        return 4
    quarter = -(-value // 4)
    magnitude = 10 ** (len(str(int(quarter))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if quarter <= step * magnitude:
            return int(step * magnitude * 4)
    return 40 * magnitude


def _short(cents: int) -> str:
    """An axis label: $1.2k, $35k, $1.5M (whole dollars under $1,000)."""
    dollars = cents / 100
    if dollars >= 1_000_000:
        return f"${dollars / 1_000_000:.1f}M".replace(".0M", "M")
    if dollars >= 1_000:
        return f"${dollars / 1_000:.1f}k".replace(".0k", "k")
    return f"${dollars:,.0f}" if dollars == int(dollars) else f"${dollars:,.2f}"


def columns(*, chart_id: str, title: str, description: str, categories: Sequence[str], series: Sequence[dict],
            compare: Sequence[dict] | None = None, fmt: Callable[[int], str], axis: Callable[[int], str] = _short,
            count_label: str | None = None, counts: Sequence[int] | None = None, labels: Sequence[str] | None = None) -> Chart:
    """Stacked columns per category. `series`: [{label, values, tone}] stacked bottom-up;
    `compare` (optional): the same for a second set drawn as a narrower column to the
    left of each (e.g. last year). The table has one row per category: each series,
    their total, then the compared ones and their total; `counts` adds a count column.
    `labels`: shorter names for the axis than the table's (default: the categories)."""
    compare = list(compare or [])
    totals = [sum(s["values"][i] for s in series) for i in range(len(categories))]
    compare_totals = [sum(s["values"][i] for s in compare) for i in range(len(categories))] if compare else []
    highest = max([*totals, *compare_totals, 0])
    top = _nice_max(highest)
    left, right, bottom, top_pad = 46, 6, 22, 8
    plot_w, plot_h = WIDTH - left - right, HEIGHT - bottom - top_pad
    slot = plot_w / max(1, len(categories))
    parts = []
    for k in range(5):  # gridlines and axis labels at 0, ¼, ½, ¾, 1 (nothing to scale: 0 alone, not $0.01 to $0.04)
        value = top * k / 4
        y = top_pad + plot_h - plot_h * k / 4
        label = f'<text class="axis" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{escape(axis(int(value)))}</text>'
        parts.append(f'<line class="grid" x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     + (label if highest or k == 0 else ""))

    def stack(x: float, w: float, stack_series: Sequence[dict], i: int, extra: str = "") -> None:
        y = top_pad + plot_h
        for s in stack_series:
            h = plot_h * s["values"][i] / top
            if h <= 0:
                continue
            y -= h
            parts.append(f'<rect class="tone-{s["tone"]}{extra}" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}">'
                         f'<title>{escape(categories[i])}: {escape(s["label"])} {escape(fmt(s["values"][i]))}</title></rect>')

    label_every = 1 if len(categories) <= 13 else max(1, len(categories) // 8)
    for i, category in enumerate(categories):
        x0 = left + slot * i
        if compare:
            stack(x0 + slot * 0.12, slot * 0.3, compare, i, " compare")
            stack(x0 + slot * 0.44, slot * 0.44, series, i)
        else:
            stack(x0 + slot * 0.15, slot * 0.7, series, i)
        if i % label_every == 0:  # every other label is "minor": a narrow screen hides it (charts.css)
            minor = " minor" if i % (2 * label_every) else ""
            parts.append(f'<text class="axis{minor}" x="{x0 + slot / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">{escape((labels or categories)[i])}</text>')
    parts.append(f'<line class="baseline" x1="{left}" x2="{WIDTH - right}" y1="{top_pad + plot_h}" y2="{top_pad + plot_h}"/>')

    header = [*(s["label"] for s in series)] + (["Total"] if len(series) > 1 else [])
    header += [*(s["label"] for s in compare)] + (["Total compared"] if len(compare) > 1 else [])
    header += [count_label] if counts is not None and count_label else []
    rows = []
    for i, category in enumerate(categories):
        cells = [fmt(s["values"][i]) for s in series] + ([fmt(totals[i])] if len(series) > 1 else [])
        cells += [fmt(s["values"][i]) for s in compare] + ([fmt(compare_totals[i])] if len(compare) > 1 else [])
        cells += [f"{counts[i]:,}"] if counts is not None and count_label else []
        rows.append([category, *cells])
    legend = [(s["label"], s["tone"]) for s in series] + [(s["label"], f'{s["tone"]} compare') for s in compare]
    return Chart(chart_id, title, description, _svg(chart_id, title, description, "".join(parts)),
                 ["", *header], rows, [False, *([True] * len(header))], legend=legend if len(legend) > 1 else [])


def _label(x: float, y: float, text: str) -> str:
    """An axis label beside a marker at `x`: to its right in the left half, to its left in the right half."""
    if x <= WIDTH / 2:
        return f'<text class="axis" x="{x + 4:.1f}" y="{y}" text-anchor="start">{escape(text)}</text>'
    return f'<text class="axis" x="{x - 4:.1f}" y="{y}" text-anchor="end">{escape(text)}</text>'


def progress(*, chart_id: str, title: str, raised: int, goal: int | None, fmt: Callable[[int], str],
             percent: int | None) -> Chart:
    """A bar toward a goal. Over the goal the bar is full and a marker shows where the
    goal sits; `percent` is the caller's (whole percent of the goal raised)."""
    height, bar_y, bar_h = 46, 4, 18
    parts = [f'<rect class="track" x="0" y="{bar_y}" width="{WIDTH}" height="{bar_h}" rx="4"/>']
    if goal:
        over = raised > goal
        filled = WIDTH if over else WIDTH * raised / goal
        parts.append(f'<rect class="tone-{"over" if over else "progress"}" x="0" y="{bar_y}" width="{filled:.1f}" height="{bar_h}" rx="4"/>')
        if over:
            gx = WIDTH * goal / raised
            parts.append(f'<line class="goal-marker" x1="{gx:.1f}" x2="{gx:.1f}" y1="0" y2="{bar_y + bar_h + 4}"/>'
                         + _label(gx, height - 4, f"goal {fmt(goal)}"))
        else:
            parts.append(f'<text class="axis" x="{WIDTH}" y="{height - 4}" text-anchor="end">goal {escape(fmt(goal))}</text>')
        if not over or gx <= WIDTH / 2:
            parts.append(f'<text class="axis" x="{WIDTH if over else 0}" y="{height - 4}" text-anchor="{"end" if over else "start"}">'
                         f'{percent} %</text>')
        description = f"{fmt(raised)} raised of a {fmt(goal)} goal: {percent} %."
    else:
        description = f"{fmt(raised)} raised; no goal set."
    svg = _svg(chart_id, title, description, "".join(parts), height=height)
    rows = [["Raised", fmt(raised)], ["Goal", fmt(goal) if goal else "none"]]
    if goal:
        rows.append(["Of the goal", f"{percent} %"])
    return Chart(chart_id, title, description, svg, ["", "Value"], rows, [False, True], kind="progress")


def gauge(*, chart_id: str, title: str, used: int, cap: int | None, threshold: int | None, remaining: int | None,
          fmt: Callable[[int], str], period: str) -> Chart:
    """How much of a cap a donor's counted total uses, with the disclosure threshold
    marked. `remaining` is compliance.rules' room left (asked by the selector)."""
    height, bar_y, bar_h = 58, 20, 16
    scale = max(cap or 0, threshold or 0, used, 1)
    parts = [f'<rect class="track" x="0" y="{bar_y}" width="{WIDTH}" height="{bar_h}" rx="3"/>']
    fill = WIDTH * min(used, scale) / scale
    tone = "over" if cap and used >= cap else ("warn" if cap and used * 100 >= cap * 80 else "progress")
    parts.append(f'<rect class="tone-{tone}" x="0" y="{bar_y}" width="{fill:.1f}" height="{bar_h}" rx="3"/>')
    if threshold is not None:
        tx = min(WIDTH * threshold / scale, WIDTH - 1)
        parts.append(f'<line class="threshold-marker" x1="{tx:.1f}" x2="{tx:.1f}" y1="{bar_y - 4}" y2="{bar_y + bar_h + 4}"/>'
                     + _label(tx, 14, f"threshold {fmt(threshold)}"))
    if cap is not None:
        cx = min(WIDTH * cap / scale, WIDTH - 1)
        parts.append(f'<line class="cap-marker" x1="{cx:.1f}" x2="{cx:.1f}" y1="{bar_y - 4}" y2="{bar_y + bar_h + 4}"/>'
                     + _label(cx, height - 4, f"cap {fmt(cap)}"))
    description = f"{fmt(used)} counted in {period}"
    if cap is not None:
        description += f", {fmt(remaining or 0)} of the {fmt(cap)} cap left"
    if threshold is not None:
        description += f"; disclosure threshold {fmt(threshold)}"
    description += "."
    rows = [["Counted", fmt(used)], ["Disclosure threshold", fmt(threshold) if threshold is not None else "none"],
            ["Cap", fmt(cap) if cap is not None else "none"], ["Room left", fmt(remaining) if remaining is not None else "—"]]
    return Chart(chart_id, title, description, _svg(chart_id, title, description, "".join(parts), height=height),
                 ["", "Value"], rows, [False, True], kind="gauge")


def timeline(*, chart_id: str, title: str, description: str, items: Sequence[dict], start: dt.date, end: dt.date,
             today: dt.date, columns_: Sequence[str]) -> Chart:
    """Dots on a date axis from `start` to `end` (today marked). `items`: [{date, tone,
    label, cells}] — `cells` is the item's table row (`columns_` its header)."""
    height, axis_y = 90, 60
    span = max(1, (end - start).days)
    parts = [f'<line class="baseline" x1="8" x2="{WIDTH - 8}" y1="{axis_y}" y2="{axis_y}"/>']

    def x_of(day: dt.date) -> float:
        return 8 + (WIDTH - 16) * min(max((day - start).days, 0), span) / span

    month = dt.date(start.year, start.month, 1)
    while month <= end:
        if month >= start:
            mx = x_of(month)
            parts.append(f'<line class="grid" x1="{mx:.1f}" x2="{mx:.1f}" y1="{axis_y - 3}" y2="{axis_y + 3}"/>'
                         f'<text class="axis" x="{mx:.1f}" y="{axis_y + 16}" text-anchor="middle">{month:%b}</text>')
        month = dt.date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    if start <= today <= end:
        tx = x_of(today)
        parts.append(f'<line class="today-marker" x1="{tx:.1f}" x2="{tx:.1f}" y1="6" y2="{axis_y + 4}"/>'
                     f'<text class="axis" x="{tx + 3:.1f}" y="12">today</text>')
    stacked: dict[int, int] = {}
    for item in items:
        x = x_of(item["date"])
        slot = int(x // 8)
        level = stacked.get(slot, 0)
        stacked[slot] = level + 1
        y = axis_y - 8 - 9 * min(level, 4)
        parts.append(f'<circle class="tone-{item["tone"]}" cx="{x:.1f}" cy="{y:.1f}" r="4"><title>{escape(item["label"])}</title></circle>')
    rows = [list(item["cells"]) for item in items]
    return Chart(chart_id, title, description, _svg(chart_id, title, description, "".join(parts), height=height),
                 list(columns_), rows, [False] * len(columns_), kind="timeline")


def month_labels(months: Sequence[dt.date]) -> list[str]:
    """Short axis labels for months: "Mar", with the year on the first and on each January ("Jan 26")."""
    return [f"{m:%b %y}" if i == 0 or m.month == 1 else f"{m:%b}" for i, m in enumerate(months)]
