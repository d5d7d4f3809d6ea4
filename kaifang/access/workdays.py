"""Chinese working days for the Art. 10 deadline: two working days after acceptance.

Rule: day one is the first working day after the day of acceptance; the decision is due by the
end of the second working day. Working days come from `chinesecalendar` (statutory holidays and
make-up working days, 调休), overridden by the operator's holiday table. For a year the package
does not know, the fallback is weekends plus the fixed-date statutory holidays (元旦 1/1, 劳动节
5/1–5/5, 国庆节 10/1–10/7) plus the operator's table, and the result carries a warning so the
operator loads that year's State Council notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import chinese_calendar
from sqlalchemy import select
from sqlalchemy.orm import Session

from kaifang.access.models import HolidayOverride

DECISION_WORKING_DAYS = 2
# Fixed-date statutory holidays used when the package has no data for a year: (month, first, last).
FALLBACK_HOLIDAYS = ((1, 1, 1), (5, 1, 5), (10, 1, 7))


@dataclass(frozen=True)
class DueDate:
    """The due date, and whether it was counted with the fallback for an unknown year."""

    day: date
    estimated: bool


class Calendar:
    """Working days with the operator's overrides taking precedence over the package."""

    def __init__(self, overrides: dict[date, bool] | None = None) -> None:
        self.overrides = overrides or {}
        self.estimated = False

    def is_workday(self, day: date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            self.estimated = True
            return _fallback_is_workday(day)

    def working_days_after(self, start: date, count: int) -> date:
        """The `count`-th working day after `start`. Terminates: the operator's table is finite and
        both the package and the fallback have working days every week outside long holidays."""
        day, found = start, 0
        while found < count:
            day += timedelta(days=1)
            found += self.is_workday(day)
        return day


def _fallback_is_workday(day: date) -> bool:
    if day.weekday() >= 5:
        return False
    return not any(day.month == m and first <= day.day <= last for m, first, last in FALLBACK_HOLIDAYS)


def load_calendar(db: Session) -> Calendar:
    """The calendar with every operator override (a few dozen rows at most)."""
    rows = db.execute(select(HolidayOverride.day, HolidayOverride.is_workday))
    return Calendar({day: is_workday for day, is_workday in rows})


def due_date(calendar: Calendar, accepted_on: date) -> DueDate:
    """The end of the second working day after the day of acceptance."""
    calendar.estimated = False
    day = calendar.working_days_after(accepted_on, DECISION_WORKING_DAYS)
    return DueDate(day, calendar.estimated)
