"""Geometry for the dashboard's weekly chart (no chart library, no CDN: the page draws itself).

The bars are an SVG stretched to the plot's width (preserveAspectRatio="none"), so the chart fits
a phone and a desktop alike; the axis labels are HTML around it, positioned in percent of the
plot, so their text keeps its real size at every width instead of shrinking with the drawing.
"""

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from affiliates.selectors import WeekTotal
from core.currencies import exponent

PLOT_HEIGHT = 140  # viewBox units; the best possible bar (the axis top) is this tall
BAR_WIDTH = 30
BAR_GAP = 10
MAX_TICK_STEPS = 4  # at most 5 labels on the value axis: 0 and up to 4 steps
NICE_MULTIPLES = (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10))


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    week: WeekTotal


@dataclass(frozen=True)
class Tick:
    """A value-axis label and its grid line: `value` in the currency, `percent` up the plot."""

    value: Decimal
    y: Decimal  # viewBox units, for the grid line
    percent: Decimal  # from the bottom, for the HTML label


@dataclass(frozen=True)
class WeeklyChart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[Tick]
    peak: Decimal
    best_week: WeekTotal | None


def weekly_chart(weeks: list[WeekTotal], *, currency: str) -> WeeklyChart:
    """Bars scaled to the value axis's top (a round figure at or above the best week); a week with
    a commission stays visible (at least 2 units)."""
    peak = max((week.total for week in weeks), default=Decimal(0))
    step = tick_step(peak, currency=currency)
    top = step * max(1, int((peak / step).to_integral_value(rounding=ROUND_CEILING))) if peak > 0 else Decimal(0)
    bars = []
    for index, week in enumerate(weeks):
        height = 0 if top <= 0 else max(2 if week.total > 0 else 0, int(week.total / top * PLOT_HEIGHT))
        x = index * (BAR_WIDTH + BAR_GAP) + BAR_GAP // 2
        bars.append(Bar(x, PLOT_HEIGHT - height, BAR_WIDTH, height, week))
    ticks = [_tick(step * i, top) for i in range(int(top / step) + 1)] if top > 0 else [_tick(Decimal(0), top)]
    best = max(weeks, key=lambda week: week.total) if peak > 0 else None
    width = max(1, len(weeks) * (BAR_WIDTH + BAR_GAP))
    return WeeklyChart(width=width, height=PLOT_HEIGHT, bars=bars, ticks=ticks, peak=peak, best_week=best)


def tick_step(peak: Decimal, *, currency: str) -> Decimal:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving at most MAX_TICK_STEPS steps up
    to the peak, never finer than the currency's minor unit (no 0.5 yen)."""
    minor_unit = Decimal(1).scaleb(-exponent(currency))
    if peak <= 0:
        return minor_unit
    raw = peak / MAX_TICK_STEPS
    magnitude = Decimal(1).scaleb(raw.adjusted())
    steps = (magnitude * multiple for multiple in NICE_MULTIPLES)
    return next((step for step in steps if step >= raw and step % minor_unit == 0), minor_unit)


def _tick(value: Decimal, top: Decimal) -> Tick:
    share = value / top if top > 0 else Decimal(0)
    return Tick(
        value=value,
        y=(PLOT_HEIGHT - share * PLOT_HEIGHT).quantize(Decimal("0.1")),
        percent=(share * 100).quantize(Decimal("0.1")),
    )
