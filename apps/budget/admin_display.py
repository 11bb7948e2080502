"""How the admin shows budgets, statuses, dayparting and charts: presentation only, no rule.

Everything here turns values the services and the rule already decided into HTML (escaped with
`format_html`) or short text. Charts are inline SVG drawn on the server: no script, no CDN.
"""

from collections.abc import Iterable, Sequence
from decimal import ROUND_FLOOR, Decimal
from itertools import groupby
from typing import NamedTuple

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.services import Transition

# A bar turns amber from here on, before the red of a reached budget.
WARN_PERCENT = 80
DAY_ABBREVIATIONS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def money(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def percent_used(used: Decimal, budget: Decimal) -> int:
    """Whole percent of the budget spent, rounded down: 100 appears only once the budget is reached.

    A budget of 0 is reached from the start (SPEC: "may not spend").
    """
    if budget <= 0:
        return 100
    return int((used * 100 / budget).to_integral_value(rounding=ROUND_FLOOR))


def budget_bar(used: Decimal, budget: Decimal) -> SafeString:
    """A bar of spend against budget with its percentage; red once the budget is reached."""
    percent = percent_used(used, budget)
    # The same comparison as the status rule: at or over the budget is reached.
    if used >= budget:
        level = "over"
    elif percent >= WARN_PERCENT:
        level = "warn"
    else:
        level = "ok"
    return format_html(
        '<div class="budget-usage budget-{}" title="{} of {}">'
        '<span class="budget-bar"><span class="budget-fill" style="width: {}%"></span></span>'
        '<span class="budget-percent">{}%</span> <span class="budget-amounts">{} / {}</span></div>',
        level,
        money(used),
        money(budget),
        min(percent, 100),
        percent,
        money(used),
        money(budget),
    )


def reason_label(reason: str) -> str:
    return str(PauseReason(reason).label) if reason else ""


def status_badge(status: str, reason: str) -> SafeString:
    """The status as a coloured badge, followed by the pause reason in words."""
    badge = format_html(
        '<span class="status-badge status-{}">{}</span>', status.lower(), CampaignStatus(status).label
    )
    if not reason:
        return badge
    return format_html('{} <span class="pause-reason">{}</span>', badge, reason_label(reason))


def transition_text(transition: Transition) -> str:
    """ "ACTIVE -> PAUSED (Daily budget reached)"."""
    text = f"{transition.old_status} -> {transition.new_status}"
    if transition.reason:
        text += f" ({reason_label(transition.reason)})"
    return text


# --- Dayparting ----------------------------------------------------------------------------------


class DayWindows(NamedTuple):
    day_of_week: int
    hours: tuple[tuple[int, int], ...]


def _day_range(first: int, last: int) -> str:
    if first == last:
        return DAY_ABBREVIATIONS[first]
    return f"{DAY_ABBREVIATIONS[first]}–{DAY_ABBREVIATIONS[last]}"


def dayparting_summary(windows: Iterable[tuple[int, int, int]]) -> str:
    """One line for a campaign's windows, e.g. "Mon–Fri 09–17, Sat 10–12 & 14–16".

    Consecutive days with identical windows collapse into a range. No windows: it may run any time.
    """
    by_day = [
        DayWindows(day, tuple(sorted((start, end) for _day, start, end in rows)))
        for day, rows in groupby(sorted(windows), key=lambda window: window[0])
    ]
    if not by_day:
        return "Any time"
    runs: list[tuple[int, int, tuple[tuple[int, int], ...]]] = []
    for entry in by_day:
        if runs and runs[-1][1] == entry.day_of_week - 1 and runs[-1][2] == entry.hours:
            first, _last, hours = runs[-1]
            runs[-1] = (first, entry.day_of_week, hours)
        else:
            runs.append((entry.day_of_week, entry.day_of_week, entry.hours))
    return ", ".join(
        f"{_day_range(first, last)} " + " & ".join(f"{start:02d}–{end:02d}" for start, end in hours)
        for first, last, hours in runs
    )


# --- Charts --------------------------------------------------------------------------------------


class ChartBar(NamedTuple):
    label: str  # under the bar (may be empty to thin out the axis)
    tooltip: str  # the bar's full name, shown on hover with its amount
    amount: Decimal


CHART_WIDTH = 720
CHART_HEIGHT = 220
PLOT_LEFT = 64  # room for the amounts on the vertical axis
PLOT_TOP = 12
PLOT_BOTTOM = 28  # room for the labels under the bars
TENTH = Decimal("0.1")


def _coordinate(value: Decimal) -> str:
    return str(value.quantize(TENTH))


def bar_chart(
    bars: Sequence[ChartBar], *, title: str, limit: Decimal | None = None, limit_label: str = ""
) -> SafeString:
    """A bar chart as inline SVG; `limit` draws a dashed line (a budget) across it.

    Geometry is computed in Decimal, so no amount ever passes through a float.
    """
    plot_width = Decimal(CHART_WIDTH - PLOT_LEFT - 8)
    plot_height = Decimal(CHART_HEIGHT - PLOT_TOP - PLOT_BOTTOM)
    baseline = Decimal(PLOT_TOP) + plot_height
    top = max([bar.amount for bar in bars] + ([limit] if limit is not None else []) + [Decimal(0)])
    scale = plot_height / top if top > 0 else Decimal(0)
    slot = plot_width / max(len(bars), 1)

    def y_of(amount: Decimal) -> Decimal:
        return baseline - amount * scale

    rects = format_html_join(
        "",
        '<g class="chart-bar"><rect x="{}" y="{}" width="{}" height="{}"><title>{}: {}</title></rect>'
        '<text class="chart-label" x="{}" y="{}" text-anchor="middle">{}</text></g>',
        (
            (
                _coordinate(PLOT_LEFT + slot * index + slot * Decimal("0.1")),
                _coordinate(y_of(bar.amount)),
                _coordinate(slot * Decimal("0.8")),
                _coordinate(bar.amount * scale),
                bar.tooltip,
                money(bar.amount),
                _coordinate(PLOT_LEFT + slot * index + slot / 2),
                _coordinate(baseline + 16),
                bar.label,
            )
            for index, bar in enumerate(bars)
        ),
    )
    empty_note = SafeString("")
    if all(bar.amount == 0 for bar in bars):
        empty_note = format_html(
            '<text class="chart-empty" x="{}" y="{}" text-anchor="middle">No spend in this period</text>',
            _coordinate(PLOT_LEFT + plot_width / 2),
            _coordinate(PLOT_TOP + plot_height / 2),
        )
    limit_line = SafeString("")
    if limit is not None:
        limit_line = format_html(
            '<g class="chart-limit"><line x1="{}" x2="{}" y1="{}" y2="{}"></line>'
            '<text x="{}" y="{}" text-anchor="start">{} {}</text></g>',
            PLOT_LEFT,
            CHART_WIDTH - 8,
            _coordinate(y_of(limit)),
            _coordinate(y_of(limit)),
            PLOT_LEFT + 4,
            _coordinate(y_of(limit) - 4),
            limit_label,
            money(limit),
        )
    return format_html(
        '<svg class="spend-chart" role="img" viewBox="0 0 {} {}" width="{}" height="{}"'
        ' xmlns="http://www.w3.org/2000/svg"><title>{}</title>'
        '<g class="chart-axis"><line x1="{}" x2="{}" y1="{}" y2="{}"></line>'
        '<text x="{}" y="{}" text-anchor="end">{}</text>'
        '<text x="{}" y="{}" text-anchor="end">0.00</text></g>'
        "{}{}{}</svg>",
        CHART_WIDTH,
        CHART_HEIGHT,
        CHART_WIDTH,
        CHART_HEIGHT,
        title,
        PLOT_LEFT,
        CHART_WIDTH - 8,
        _coordinate(baseline),
        _coordinate(baseline),
        PLOT_LEFT - 6,
        PLOT_TOP + 10,
        money(top),
        PLOT_LEFT - 6,
        _coordinate(baseline),
        rects,
        limit_line,
        empty_note,
    )
