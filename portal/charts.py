"""Geometry for the dashboard's inline SVG chart (no chart library, no CDN: the page draws itself)."""

from dataclasses import dataclass
from decimal import Decimal

from affiliates.selectors import WeekTotal

CHART_HEIGHT = 140
BAR_WIDTH = 30
BAR_GAP = 10
LABEL_SPACE = 20


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    label_x: int
    week: WeekTotal


@dataclass(frozen=True)
class WeeklyChart:
    width: int
    height: int
    plot_height: int
    peak: Decimal
    bars: list[Bar]


def weekly_chart(weeks: list[WeekTotal]) -> WeeklyChart:
    """Bars scaled to the best week; a week with a commission stays visible (at least 2 px)."""
    peak = max((week.total for week in weeks), default=Decimal(0))
    bars = []
    for index, week in enumerate(weeks):
        height = 0 if peak <= 0 else max(2 if week.total > 0 else 0, int(week.total / peak * CHART_HEIGHT))
        x = index * (BAR_WIDTH + BAR_GAP)
        bars.append(Bar(x, CHART_HEIGHT - height, BAR_WIDTH, height, x + BAR_WIDTH // 2, week))
    width = max(1, len(weeks) * (BAR_WIDTH + BAR_GAP) - BAR_GAP)
    return WeeklyChart(width=width, height=CHART_HEIGHT + LABEL_SPACE, plot_height=CHART_HEIGHT, peak=peak, bars=bars)
