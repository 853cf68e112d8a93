"""The refund report as one self-contained HTML page: inline SVG and CSS, no script and no
network resources, so it opens anywhere, offline, and can be attached to an email or ticket.
Every piece of text from the data goes through html.escape."""

from __future__ import annotations

import math
from html import escape
from pathlib import Path
from typing import Any

from client.render import when as format_moment
from client.report_text import (
    OUTCOMES,
    duplicates_line,
    duplicates_of,
    format_duration,
    format_period,
)
from workflows.money import format_minor
from workflows.read_models import RefundReport, SeriesBucket

COLOURS = {"completed": "#2e7d32", "cancelled": "#9e9e9e", "open": "#f0a500", "p50": "#1565c0"}
SVG_NS = "http://www.w3.org/2000/svg"
WIDTH, HEIGHT = 800, 280
LEFT, RIGHT, TOP, BOTTOM = 80, 16, 36, 52
"""Plot margins: room for the legend above, tick labels and axis titles left and below."""
MAX_X_LABELS = 12
MAX_BAR_WIDTH = 48.0
DURATION_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
                  21600, 43200, 86400, 172800, 432000, 604800)  # fmt: skip
"""Round steps for a time axis: seconds, minutes, hours, days, a week."""

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; color: #212121; margin: 2rem; max-width: 60rem; }
h1 { font-size: 1.4rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.1rem; margin-top: 2rem; }
.period { color: #616161; margin-top: 0; }
.figures { display: flex; flex-wrap: wrap; gap: 0.75rem; }
.figure { border: 1px solid #e0e0e0; border-radius: 6px; padding: 0.5rem 0.9rem; }
.figure .value { display: block; font-size: 1.3rem; font-weight: 600; }
.figure .label { color: #616161; font-size: 0.85rem; }
.figure.alarm { border-color: #c62828; background: #ffebee; color: #b71c1c; }
.banner { background: #c62828; color: #ffffff; font-weight: 700; padding: 0.8rem 1rem; }
.empty { font-size: 1.1rem; color: #616161; padding: 2rem 0; }
table { border-collapse: collapse; }
th, td { padding: 0.2rem 0.8rem; text-align: right; border-bottom: 1px solid #eeeeee; }
th:first-child, td:first-child { text-align: left; }
svg text { font: 11px system-ui, sans-serif; fill: #424242; }
svg .axis-title { font-size: 12px; fill: #212121; }
""".strip()


def write_chart(report: RefundReport, path: Path) -> Path:
    """Write the report page to `path` and return it."""
    path = Path(path)
    path.write_text(render_html(report), encoding="utf-8")
    return path


def render_html(report: RefundReport) -> str:
    """The whole page as a string: headline figures, the two charts, counts by reason."""
    title = "refundflow report"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>\n{CSS}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="period">{escape(format_period(report))}<br>'
        f"generated {escape(format_moment(report.generated_at))}</p>",
    ]
    duplicates = report.duplicate_refunds
    if duplicates:
        said = duplicates_line(*duplicates_of(report))
        parts.append(f'<p class="banner">{escape(said)}</p>')
    parts.append(_headline(report))
    if report.refunds == 0:
        parts.append('<p class="empty">no refunds in this period</p>')
    else:
        unit = report.bucket
        parts += [
            f"<h2>Refunds per {escape(unit)} by outcome</h2>",
            _outcome_bars(report.series, unit),
            f"<h2>Median (p50) time to refund per {escape(unit)}</h2>",
            _p50_line(report.series, unit),
            "<h2>By reason</h2>",
            _reason_table(report),
        ]
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


# --- headline ---------------------------------------------------------------------------


def _headline(report: RefundReport) -> str:
    by_state = report.by_state
    ttr = report.time_to_refund_seconds
    open_ = sum(n for state, n in by_state.items() if state not in ("completed", "cancelled"))
    duplicates = report.duplicate_refunds
    figures = [
        (str(report.refunds), "refunds", False),
        (str(by_state.get("completed", 0)), "completed", False),
        (str(by_state.get("cancelled", 0)), "cancelled", False),
        (str(open_), "open", False),
        *(
            (format_minor(m.refunded, m.currency), "refunded (completed)", False)
            for m in report.money
        ),
        *(
            (format_minor(m.open, m.currency), "open, may still be paid", False)
            for m in report.money
        ),
        (format_duration(ttr.p50), f"p50 time to refund ({ttr.count} measured)", False),
        (format_duration(ttr.p90), "p90 time to refund", False),
        (str(report.sla_breaches), "SLA breaches (escalated by timer)", False),
        (f"{report.escalation_rate * 100:.2f}%", "escalation rate", False),
        (f"{report.reopen_rate * 100:.2f}%", "reopen rate (asked again after a refusal)", False),
        (duplicates_line(*duplicates_of(report)), "duplicate refunds", duplicates > 0),
    ]
    cells = []
    for value, label, alarm in figures:
        cls = "figure alarm" if alarm else "figure"
        cells.append(
            f'<div class="{cls}"><span class="value">{escape(value)}</span>'
            f'<span class="label">{escape(label)}</span></div>'
        )
    return '<div class="figures">\n' + "\n".join(cells) + "\n</div>"


# --- charts -----------------------------------------------------------------------------


def _outcome_bars(series: list[SeriesBucket], unit: str) -> str:
    peak = max((sum(b.by_outcome().values()) for b in series), default=0)
    top, ticks = _nice_ticks(peak)
    plot = _Plot(len(series), top)
    out = [_svg_open(f"refunds per {unit} by outcome")]
    out += _y_axis(plot, ticks, _count, "refunds")
    out += _x_axis(plot, series, unit)
    out += _legend([(o, COLOURS[o]) for o in OUTCOMES])
    for i, bucket in enumerate(series):
        base = 0
        counts = bucket.by_outcome()
        for outcome in OUTCOMES:
            n = counts[outcome]
            if n == 0:
                continue
            y_top, y_bottom = plot.y(base + n), plot.y(base)
            tip = f"{_label(bucket.start.isoformat(), unit, full=True)}: {n} {outcome}"
            out.append(
                f'<rect x="{plot.bar_x(i):.1f}" y="{y_top:.1f}" width="{plot.bar_width:.1f}"'
                f' height="{y_bottom - y_top:.1f}" fill="{COLOURS[outcome]}">'
                f"<title>{escape(tip)}</title></rect>"
            )
            base += n
    out.append("</svg>")
    return "\n".join(out)


def _p50_line(series: list[SeriesBucket], unit: str) -> str:
    values = [b.p50_time_to_refund_seconds for b in series]
    if all(v is None for v in values):
        return '<p class="empty">no completed refunds in this period</p>'
    top, ticks = _nice_ticks(max(v for v in values if v is not None), DURATION_STEPS)
    plot = _Plot(len(series), top)
    out = [_svg_open(f"median time to refund per {unit}")]
    out += _y_axis(plot, ticks, format_duration, "p50 time to refund")
    out += _x_axis(plot, series, unit)
    out += _legend([("p50 time to refund (buckets without completed refunds are gaps)",
                     COLOURS["p50"])])  # fmt: skip
    path: list[str] = []
    pen_down = False
    for i, value in enumerate(values):
        if value is None:
            pen_down = False
            continue
        path.append(f"{'L' if pen_down else 'M'}{plot.centre_x(i):.1f},{plot.y(value):.1f}")
        pen_down = True
    out.append(
        f'<path d="{" ".join(path)}" fill="none" stroke="{COLOURS["p50"]}" stroke-width="2"/>'
    )
    for i, (bucket, value) in enumerate(zip(series, values, strict=True)):
        if value is None:
            continue
        tip = f"{_label(bucket.start.isoformat(), unit, full=True)}: p50 {format_duration(value)}"
        out.append(
            f'<circle cx="{plot.centre_x(i):.1f}" cy="{plot.y(value):.1f}" r="3.5"'
            f' fill="{COLOURS["p50"]}"><title>{escape(tip)}</title></circle>'
        )
    out.append("</svg>")
    return "\n".join(out)


class _Plot:
    """Maps bucket indexes and values to SVG coordinates inside the margins."""

    def __init__(self, buckets: int, top: float) -> None:
        self.buckets = max(buckets, 1)
        self.top = top or 1
        self.slot = (WIDTH - LEFT - RIGHT) / self.buckets
        self.bar_width = min(max(self.slot * 0.8, 1.0), MAX_BAR_WIDTH)

    def y(self, value: float) -> float:
        return HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * value / self.top

    def bar_x(self, i: int) -> float:
        return LEFT + i * self.slot + (self.slot - self.bar_width) / 2

    def centre_x(self, i: int) -> float:
        return LEFT + (i + 0.5) * self.slot


def _svg_open(label: str) -> str:
    return (
        f'<svg xmlns="{SVG_NS}" width="{WIDTH}" height="{HEIGHT}"'
        f' viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}">'
    )


def _y_axis(plot: _Plot, ticks: list[float], fmt: Any, title: str) -> list[str]:
    out = [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#616161"/>',
        f'<text class="axis-title" transform="translate(14,{(TOP + HEIGHT - BOTTOM) / 2:.1f})'
        f' rotate(-90)" text-anchor="middle">{escape(title)}</text>',
    ]
    for tick in ticks:
        y = plot.y(tick)
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#eeeeee"/>'
        )
        out.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt(tick))}</text>'
        )
    return out


def _x_axis(plot: _Plot, series: list[SeriesBucket], unit: str) -> list[str]:
    baseline = HEIGHT - BOTTOM
    out = [
        f'<line x1="{LEFT}" y1="{baseline}" x2="{WIDTH - RIGHT}" y2="{baseline}"'
        ' stroke="#616161"/>',
        f'<text class="axis-title" x="{(LEFT + WIDTH - RIGHT) / 2:.1f}" y="{HEIGHT - 8}"'
        f' text-anchor="middle">{escape(f"requested (UTC, per {unit})")}</text>',
    ]
    for i in range(0, len(series), _label_every(series, unit)):
        out.append(
            f'<text x="{plot.centre_x(i):.1f}" y="{baseline + 16}" text-anchor="middle">'
            f"{escape(_label(series[i].start.isoformat(), unit))}</text>"
        )
    return out


LABEL_CHAR_PX = 6.5
"""About how wide one character of an 11 px tick label is (digits, '-', 'h')."""
LABEL_GAP_PX = 12.0


def _label_every(series: list[SeriesBucket], unit: str) -> int:
    """Label every n-th bucket: at most MAX_X_LABELS, and no closer than a label is wide
    plus a gap (hour labels, '03-02 14h', ran together at twelve, a trial)."""
    if not series:
        return 1
    widest = max(len(_label(b.start.isoformat(), unit)) for b in series) * LABEL_CHAR_PX
    fit = max(int((WIDTH - LEFT - RIGHT) // (widest + LABEL_GAP_PX)), 1)
    return math.ceil(len(series) / min(fit, MAX_X_LABELS)) or 1


def _legend(entries: list[tuple[str, str]]) -> list[str]:
    out = []
    x = LEFT
    for name, colour in entries:
        out.append(f'<rect x="{x}" y="10" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{x + 17}" y="20">{escape(name)}</text>')
        x += 30 + 7 * len(name)
    return out


def _nice_ticks(peak: float, steps: tuple[int, ...] = ()) -> tuple[float, list[float]]:
    """An axis top and up to about five round ticks: from `steps` when one is big enough,
    otherwise 1, 2 or 5 times a power of ten (never below 1: counts and seconds)."""
    if peak <= 0:
        return 1, [0, 1]
    raw = peak / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next((m for m in steps if m >= raw), 0) or next(
        m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw
    )
    step = max(step, 1)
    top = math.ceil(peak / step) * step
    count = round(top / step)
    return top, [step * k for k in range(count + 1)]


def _count(value: float) -> str:
    return f"{value:g}"


def _label(start: str, unit: str, full: bool = False) -> str:
    """'2026-03-02T14:00:00+00:00' -> '03-02' per day, '03-02 14h' per hour."""
    day = start[:10] if full else start[5:10]
    return f"{day} {start[11:13]}h" if unit == "hour" else day


def _reason_table(report: RefundReport) -> str:
    by_reason = report.by_reason
    states = [s for s in report.by_state if any(s in c for c in by_reason.values())]
    head = "".join(f"<th>{escape(s)}</th>" for s in [*states, "total"])
    rows = [f"<tr><th>reason</th>{head}</tr>"]
    for reason, counts in by_reason.items():
        cells = [counts.get(s, 0) for s in states]
        row = "".join(f"<td>{n}</td>" for n in [*cells, sum(cells)])
        rows.append(f"<tr><td>{escape(reason)}</td>{row}</tr>")
    return "<table>\n" + "\n".join(rows) + "\n</table>"
