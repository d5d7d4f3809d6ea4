"""The Art. 10 deadline in Chinese working days (rule: day one is the first working day after
acceptance; the decision is due by the end of the second)."""

from __future__ import annotations

from datetime import date

import pytest

from kaifang.access.models import HolidayOverride
from kaifang.access.workdays import Calendar, due_date, load_calendar


@pytest.mark.parametrize(
    ("accepted", "due"),
    [
        (date(2026, 9, 30), date(2026, 10, 9)),  # 国庆节 and 中秋节 in between
        (date(2026, 10, 9), date(2026, 10, 12)),  # make-up working Saturday 10-10 is day one
        (date(2026, 2, 13), date(2026, 2, 24)),  # make-up Saturday 02-14, then the Spring Festival
        (date(2026, 11, 25), date(2026, 11, 27)),  # an ordinary week
    ],
)
def test_due_date_in_a_known_year(accepted: date, due: date) -> None:
    result = due_date(Calendar(), accepted)
    assert result.day == due
    assert not result.estimated


def test_a_year_the_package_does_not_know_falls_back_and_warns() -> None:
    """12-31 is day one; 2027-01-01 is 元旦 by the fallback, then the weekend; Monday is day two."""
    result = due_date(Calendar(), date(2026, 12, 30))
    assert result.day == date(2027, 1, 4)
    assert result.estimated


def test_fallback_knows_labour_day_and_national_day() -> None:
    assert due_date(Calendar(), date(2027, 4, 29)).day == date(2027, 5, 6)  # 4-30, then 5-6 after 劳动节
    assert due_date(Calendar(), date(2027, 9, 30)).day == date(2027, 10, 11)  # 10-8, 10-11


def test_an_operator_holiday_moves_the_due_date(db) -> None:
    db.add(HolidayOverride(day=date(2026, 11, 26), is_workday=False, name="临时调整"))
    db.flush()
    assert due_date(load_calendar(db), date(2026, 11, 25)).day == date(2026, 11, 30)


def test_an_operator_working_day_in_an_unknown_year_counts(db) -> None:
    """The operator loads a make-up working Saturday for 2027 before the package knows the year."""
    db.add(HolidayOverride(day=date(2027, 1, 2), is_workday=True, name="元旦调休上班"))
    db.flush()
    result = due_date(load_calendar(db), date(2026, 12, 30))
    assert result.day == date(2027, 1, 2)
    assert result.estimated
