"""Which grants are active now. Kept apart from the service so `accounts.service.actor_for` can
load them without importing the catalog and datastore layers."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaifang.access.models import Grant

CITY_ZONE = ZoneInfo("Asia/Shanghai")  # grant terms and deadlines are the city's calendar days


def city_today() -> date:
    return datetime.now(CITY_ZONE).date()


def active_grant_ids(db: Session, user_id: int, today: date | None = None) -> dict[int, int]:
    """entry id -> grant id of the user's grants in force today. Expiry is a date comparison, so a
    grant stops working at midnight (city time) of its end date without any job running."""
    day = today or city_today()
    rows = db.execute(
        select(Grant.entry_id, Grant.id)
        .where(
            Grant.user_id == user_id,
            Grant.revoked_at.is_(None),
            Grant.starts_on <= day,
            Grant.ends_on > day,
        )
        .order_by(Grant.id)
    )
    return {entry_id: grant_id for entry_id, grant_id in rows}
