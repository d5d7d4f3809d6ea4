"""The operator's holiday table: days that override `chinesecalendar` (a late notice, a local
adjustment, or a year the package does not know yet). Changes are the operator's and audited."""

from __future__ import annotations

from datetime import date

from chinese_calendar.constants import holidays as known_holidays
from sqlalchemy import select
from sqlalchemy.orm import Session

from kaifang.access.models import HolidayOverride
from kaifang.accounts.permissions import Actor, require_operator
from kaifang.audit.service import record
from kaifang.audit.tags import Tag
from kaifang.errors import InvalidInput, NotFound

KNOWN_UNTIL = max(known_holidays).year  # the last year whose State Council notice the package holds


def list_holidays(db: Session, actor: Actor) -> list[HolidayOverride]:
    require_operator(actor)
    return list(db.scalars(select(HolidayOverride).order_by(HolidayOverride.day)))


def set_holiday(db: Session, actor: Actor, day: str, is_workday: bool, name: str) -> HolidayOverride:
    """Mark a day as a holiday or a (make-up) working day; a day already in the table is updated."""
    require_operator(actor)
    try:
        parsed = date.fromisoformat(day.strip())
    except ValueError:
        raise InvalidInput(
            "请填写日期，格式为 YYYY-MM-DD", fields={"day": "日期格式应为 YYYY-MM-DD"}
        ) from None
    name = name.strip()[:100]
    if not name:
        raise InvalidInput("请填写名称，如“春节”或“国庆节调休上班”", fields={"name": "请填写名称"})
    row = db.scalar(select(HolidayOverride).where(HolidayOverride.day == parsed))
    if row is None:
        row = HolidayOverride(day=parsed, is_workday=is_workday, name=name)
        db.add(row)
    else:
        row.is_workday, row.name = is_workday, name
    db.flush()
    record(
        db,
        actor,
        Tag.access_holiday_set,
        "holiday",
        parsed.isoformat(),
        summary={"after": {"is_workday": is_workday, "name": name}},
    )
    return row


def delete_holiday(db: Session, actor: Actor, holiday_id: int) -> None:
    require_operator(actor)
    row = db.get(HolidayOverride, holiday_id)
    if row is None:
        raise NotFound("未找到该日期")
    record(
        db,
        actor,
        Tag.access_holiday_removed,
        "holiday",
        row.day.isoformat(),
        summary={"before": {"is_workday": row.is_workday, "name": row.name}},
    )
    db.delete(row)
