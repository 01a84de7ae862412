"""Real calendar months: no 30-day buckets, end-of-month clamping, leap years."""

from datetime import UTC, datetime

import pytest

from loyalty.anniversaries import add_months, anniversary_at, completed_anniversaries


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (at(2025, 1, 31, 10), 1, at(2025, 2, 28, 10)),  # Jan 31 + 1 month in a common year
        (at(2024, 1, 31, 10), 1, at(2024, 2, 29, 10)),  # ... and in a leap year
        (at(2025, 3, 31), 1, at(2025, 4, 30)),
        (at(2024, 2, 29), 12, at(2025, 2, 28)),  # a leap-day start in a common year
        (at(2024, 2, 29), 48, at(2028, 2, 29)),  # ... and four years on
        (at(2025, 12, 15), 1, at(2026, 1, 15)),
        (at(2025, 1, 15), -1, at(2024, 12, 15)),
        (at(2025, 3, 31), -13, at(2024, 2, 29)),
    ],
)
def test_add_months_keeps_the_day_and_clamps_to_the_month_end(start, months, expected):
    assert add_months(start, months) == expected


@pytest.mark.parametrize(
    ("start", "now", "expected"),
    [
        (at(2024, 5, 31, 12), at(2025, 5, 31, 11, 59, 59), 0),
        (at(2024, 5, 31, 12), at(2025, 5, 31, 12), 1),
        (at(2024, 6, 1), at(2025, 5, 31, 23, 59, 59), 0),  # 365 days on, but not a calendar year
        (at(2024, 6, 1), at(2025, 6, 1, 0, 0, 1), 1),
        (at(2024, 2, 29, 9), at(2025, 2, 28, 9), 1),
        (at(2024, 2, 29, 9), at(2025, 2, 28, 8, 59), 0),
        (at(2023, 1, 31), at(2025, 1, 30, 23), 1),
        (at(2023, 1, 31), at(2025, 1, 31), 2),
        (at(2025, 1, 1), at(2024, 1, 1), 0),  # a start in the future
    ],
)
def test_completed_anniversaries_counts_calendar_years(start, now, expected):
    assert completed_anniversaries(start, now) == expected


def test_thirty_day_buckets_would_disagree_with_the_calendar():
    # 12 x 30 days = 360 days: the seed incident's arithmetic calls this a year; the calendar does not.
    start = at(2024, 6, 1)
    assert completed_anniversaries(start, at(2025, 5, 27)) == 0
    assert anniversary_at(start, 1) == at(2025, 6, 1)
