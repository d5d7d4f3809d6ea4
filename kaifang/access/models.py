"""有条件开放: applications, usage agreements, grants (Art. 10, 28), and the holiday table the
Art. 10 deadline is counted with."""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kaifang.accounts.models import Organisation, User
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


# The database itself refuses a second open application of one user for one entry, whatever path
# wrote it (two requests racing past the service's check); the service still says why first.
_OPEN = text("status IN (" + ", ".join(f"'{s}'" for s in OPEN_STATUSES) + ")")


class Application(Base):
    """A user's application (开放申请) to use one 有条件开放 entry."""

    __tablename__ = "access_applications"
    __table_args__ = (
        Index("ix_access_applications_provider_status", "provider_id", "status"),
        Index(
            "ix_access_applications_one_open",
            "user_id",
            "entry_id",
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
    )

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
    # 续期: the grant this application asks to renew (the cycle with access_grants is added after both)
    renews_grant_id: Mapped[int | None] = mapped_column(
        ForeignKey("access_grants.id", ondelete="SET NULL", use_alter=True), default=None
    )

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


class ReportStatus(enum.StrEnum):
    submitted = "submitted"  # 待审阅
    accepted = "accepted"  # 已认可
    needs_more = "needs_more"  # 需补充


REPORT_STATUS_LABELS = {
    ReportStatus.submitted: "待审阅",
    ReportStatus.accepted: "已认可",
    ReportStatus.needs_more: "需补充",
}


class UseReport(Base):
    """A use report (使用情况报告, Art. 22) the grantee files for one reporting point the agreement
    sets; filing again after 需补充 replaces the text (the audit log keeps what it said before)."""

    __tablename__ = "access_use_reports"
    __table_args__ = (UniqueConstraint("grant_id", "point", name="uq_access_use_reports_grant_point"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("access_grants.id", ondelete="CASCADE"))
    point: Mapped[int] = mapped_column(Integer)  # 1-based number of the reporting point
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default=ReportStatus.submitted)
    work: Mapped[str] = mapped_column(Text)  # 使用情况
    results: Mapped[str] = mapped_column(Text)  # 成果
    links: Mapped[str] = mapped_column(Text, default="")
    attachment_key: Mapped[str] = mapped_column(String(200), default="")  # in the file store; "" for none
    attachment_name: Mapped[str] = mapped_column(String(200), default="")
    attachment_size: Mapped[int] = mapped_column(Integer, default=0)
    submitted_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    review_note: Mapped[str] = mapped_column(Text, default="")


class Conclusion(enum.StrEnum):
    compliant = "compliant"  # 合规
    non_compliant = "non_compliant"  # 不合规


CONCLUSION_LABELS = {Conclusion.compliant: "合规", Conclusion.non_compliant: "不合规"}


class ComplianceCheck(Base):
    """A provider's check of how a grantee keeps the agreement (履约核实, Art. 27)."""

    __tablename__ = "access_compliance_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("access_grants.id", ondelete="CASCADE"), index=True)
    checked_on: Mapped[date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(200))  # 核查方式
    finding: Mapped[str] = mapped_column(Text)  # 核查发现
    conclusion: Mapped[str] = mapped_column(String(20))
    follow_up: Mapped[str] = mapped_column(Text, default="")  # 后续措施
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SuspensionStatus(enum.StrEnum):
    proposed = "proposed"  # 提供单位提出，待运营方核实确认
    active = "active"  # 已暂停服务
    rejected = "rejected"  # 运营方未予确认
    lifted = "lifted"  # 已恢复服务


SUSPENSION_STATUS_LABELS = {
    SuspensionStatus.proposed: "待确认",
    SuspensionStatus.active: "已暂停服务",
    SuspensionStatus.rejected: "未予确认",
    SuspensionStatus.lifted: "已恢复服务",
}


class Suspension(Base):
    """One suspension of a user (停止提供服务, Art. 29): the provider proposes, the operator confirms
    after checking; reinstatement goes the same way on the same row. While `status` is active the
    user cannot log in, their API keys are refused and their grants are frozen."""

    __tablename__ = "access_suspensions"
    __table_args__ = (Index("ix_access_suspensions_user_status", "user_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=SuspensionStatus.proposed)
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)
    proposed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    decision_note: Mapped[str] = mapped_column(Text, default="")
    reinstate_reason: Mapped[str] = mapped_column(Text, default="")
    reinstate_proposed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    reinstate_proposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    reinstate_note: Mapped[str] = mapped_column(Text, default="")
    lifted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    provider: Mapped[Organisation] = relationship()

    @property
    def reinstatement_pending(self) -> bool:
        return self.status == SuspensionStatus.active and self.reinstate_proposed_at is not None
