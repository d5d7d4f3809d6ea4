"""Which grants are active now, and whether the user is suspended (Art. 29: a suspension freezes
every grant and refuses the account). Kept apart from the services so `accounts.service` can load
them without importing the catalog and datastore layers."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, SQLColumnExpression, bindparam, select
from sqlalchemy.orm import Session

from kaifang.access.models import Grant, Suspension, SuspensionStatus
from kaifang.accounts.models import Organisation
from kaifang.errors import PermissionDenied

CITY_ZONE = ZoneInfo("Asia/Shanghai")  # grant terms and deadlines are the city's calendar days


def city_today() -> date:
    return datetime.now(CITY_ZONE).date()


def active_grant_ids(db: Session, user_id: int, today: date | None = None) -> dict[int, int]:
    """entry id -> grant id of the user's grants in force today. Expiry is a date comparison, so a
    grant stops working at midnight (city time) of its end date without any job running."""
    rows = db.execute(_ACTIVE_GRANTS, {"user_id": user_id, "day": today or city_today()})
    return {entry_id: grant_id for entry_id, grant_id in rows}


def suspended_flag(user_id: SQLColumnExpression[int]) -> ColumnElement[bool]:
    """SQL: whether the user in `user_id` is suspended now, to ask within another query (API keys
    and grants are looked up on every call: no extra round trip for a rare state)."""
    return (
        select(Suspension.id)
        .where(Suspension.user_id == user_id, Suspension.status == SuspensionStatus.active)
        .exists()
    )


# Built once: asked on every authenticated call, and a statement built per call costs more than
# running it (SQLAlchemy keeps the compiled form of a statement object).
_ACTIVE_GRANTS = (
    select(Grant.entry_id, Grant.id)
    .where(
        Grant.user_id == bindparam("user_id"),
        Grant.revoked_at.is_(None),
        Grant.starts_on <= bindparam("day"),
        Grant.ends_on > bindparam("day"),
        # frozen while the user is suspended, not ended: the grants resume on reinstatement
        ~suspended_flag(Grant.user_id),
    )
    .order_by(Grant.id)
)


def active_suspension(db: Session, user_id: int) -> Suspension | None:
    """The user's suspension in force, if any (one indexed lookup, made on every authentication)."""
    return db.scalar(
        select(Suspension).where(Suspension.user_id == user_id, Suspension.status == SuspensionStatus.active)
    )


class AccountSuspended(PermissionDenied):
    """A suspended user tried to log in or to use an API key: says why and whom to contact."""

    code = "account_suspended"

    def __init__(self, suspension: Suspension, provider: Organisation) -> None:
        self.reason = suspension.reason
        self.provider_name = provider.name
        self.provider_contact = "，".join(c for c in (provider.contact_phone, provider.contact_email) if c)
        contact = f"（{self.provider_contact}）" if self.provider_contact else ""
        super().__init__(
            f"该账号已被暂停使用（停止提供服务），登录和 API 密钥均暂停生效。原因：{self.reason}。"
            f"如有疑问，请联系数据提供单位“{self.provider_name}”{contact}或平台运营单位市大数据管理中心。"
        )


def check_not_suspended(db: Session, user_id: int) -> None:
    """Raises `AccountSuspended` for a suspended user."""
    suspension = active_suspension(db, user_id)
    if suspension is not None:
        raise AccountSuspended(suspension, db.get_one(Organisation, suspension.provider_id))
