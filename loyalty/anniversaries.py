"""Calendar-month arithmetic for anniversaries (no 30-day buckets anywhere).

Anniversary n of a Pro period that began at `start` falls at `add_months(start, 12 * n)`: the same
day of the month and the same time of day, clamped to the last day of a shorter month. So a period
begun on 29 February has its anniversaries on 28 February in common years and on 29 February in
leap years (and, for monthly steps, 31 January + 1 month is 28 or 29 February). All arithmetic is
done in the datetime's own timezone (UTC in this project), so "the same day" is a UTC day.
"""

import calendar
from datetime import datetime, timedelta

MONTHS_PER_ANNIVERSARY = 12
# No anniversary is shorter than this, so `start <= now - MIN_YEAR` is a safe SQL pre-filter.
MIN_YEAR = timedelta(days=365)


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def anniversary_at(start: datetime, number: int) -> datetime:
    return add_months(start, MONTHS_PER_ANNIVERSARY * number)


def completed_anniversaries(start: datetime, now: datetime) -> int:
    """The highest n with anniversary_at(start, n) <= now; 0 before the first anniversary."""
    months = (now.year - start.year) * 12 + (now.month - start.month)
    number = max(months // MONTHS_PER_ANNIVERSARY, 0)
    # The month difference may count a year whose day or time has not come yet.
    while number > 0 and anniversary_at(start, number) > now:
        number -= 1
    return number
