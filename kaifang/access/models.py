"""有条件开放: applications, usage agreements, grants (Art. 10, 28), and the holiday table the
Art. 10 deadline is counted with."""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kaifang.catalog.models import Entry
from kaifang.db import Base, UTCDateTime, utcnow


class ApplicationStatus(enum.StrEnum):
    submitted = "submitted"  # 待受理
    returned = "returned"  # 待补正
    accepted = "accepted"  # 已受理, the two-working-day clock runs
    approved = "approved"  # 已批准, agreement awaiting signatures
    refused = "refused"  # 不予批准
    granted = "granted"  # 协议已签订, a grant exists


# An application in one of these states blocks a second one by the same user for the same entry.
OPEN_STATUSES = (
    ApplicationStatus.submitted,
    ApplicationStatus.returned,
    ApplicationStatus.accepted,
    ApplicationStatus.approved,
)
STATUS_LABELS = {
    ApplicationStatus.submitted: "待受理",
    ApplicationStatus.returned: "待补正",
    ApplicationStatus.accepted: "已受理，待决定",
    ApplicationStatus.approved: "已批准，待签订协议",
    ApplicationStatus.refused: "不予批准",
    ApplicationStatus.granted: "已签订协议",
}


class HolidayOverride(Base):
    """One day the operator marks as a holiday or a (make-up) working day, over the package's data."""

    __tablename__ = "holiday_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, unique=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(100), default="")


class Application(Base):
    """A user's application (开放申请) to use one 有条件开放 entry."""

    __tablename__ = "access_applications"
    __table_args__ = (Index("ix_access_applications_provider_status", "provider_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=ApplicationStatus.submitted)
    purpose: Mapped[str] = mapped_column(Text)  # 使用用途
    scenario: Mapped[str] = mapped_column(Text)  # 使用场景
    period_days: Mapped[int] = mapped_column(Integer)  # 使用时限
    security_measures: Mapped[str] = mapped_column(Text)  # 安全保障措施
    resource_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    contact: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    return_note: Mapped[str] = mapped_column(Text, default="")  # 补正: what is missing
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    due_on: Mapped[date | None] = mapped_column(Date, default=None)
    due_estimated: Mapped[bool] = mapped_column(Boolean, default=False)  # counted by the fallback
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    refusal_reason: Mapped[str] = mapped_column(Text, default="")  # 理由
    refusal_basis: Mapped[str] = mapped_column(Text, default="")  # 依据

    entry: Mapped[Entry] = relationship()
    agreement: Mapped[Agreement | None] = relationship(back_populates="application")


class Agreement(Base):
    """The usage agreement (使用协议) as generated on approval; its text never changes, and each
    signature records the SHA-256 of the exact text signed."""

    __tablename__ = "access_agreements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("access_applications.id"), unique=True)
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_signed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    user_signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    user_signed_sha256: Mapped[str] = mapped_column(String(64), default="")
    provider_signed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    provider_signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    provider_signed_sha256: Mapped[str] = mapped_column(String(64), default="")

    application: Mapped[Application] = relationship(back_populates="agreement")

    @property
    def fully_signed(self) -> bool:
        return self.user_signed_at is not None and self.provider_signed_at is not None


class Grant(Base):
    """The right a signed agreement gives: the user (and their API keys) may read the entry's data
    from `starts_on` until the day before `ends_on` (city calendar), unless revoked."""

    __tablename__ = "access_grants"
    __table_args__ = (Index("ix_access_grants_user_entry", "user_id", "entry_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("access_applications.id"), unique=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("access_agreements.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"), index=True)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)  # exclusive: starts_on + period
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    revoke_reason: Mapped[str] = mapped_column(Text, default="")

    entry: Mapped[Entry] = relationship()

    @property
    def last_day(self) -> date:
        """The last day the grant is in force (what people read as the end of the term)."""
        return self.ends_on - timedelta(days=1)

    def active_on(self, day: date) -> bool:
        return self.revoked_at is None and self.starts_on <= day < self.ends_on
