"""Desensitization rules of a resource and the security reviews of its versions (Art. 16, 26)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kaifang.db import Base, UTCDateTime, utcnow


class Conclusion(enum.StrEnum):
    passed = "passed"
    failed = "failed"


CONCLUSION_LABELS = {Conclusion.passed: "通过", Conclusion.failed: "不通过"}


class ColumnRule(Base):
    """How one column of a resource is desensitized before any version of it is published.

    Rules belong to the resource, not to a version: they are reapplied to every new upload.
    `confirmed` is false for a rule the scanner proposed and nobody has looked at yet.
    `quasi` marks the column as a quasi-identifier for the re-identification risk report.
    """

    __tablename__ = "desensitize_rules"
    __table_args__ = (UniqueConstraint("resource_id", "column", name="uq_desensitize_rules_column"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), index=True)
    column: Mapped[str] = mapped_column(String(64))
    op: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    quasi: Mapped[bool] = mapped_column(Boolean, default=False)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SecurityReview(Base):
    """A 保密审查 and 安全风险评估 of one version, under the rules it was reviewed with.

    `rules_sha256` ties the review to exactly those rules (and quasi-identifier marks): a change
    afterwards needs a new review before the version can be published.
    """

    __tablename__ = "desensitize_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("resource_versions.id", ondelete="CASCADE"), index=True
    )
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    reviewed_on: Mapped[date] = mapped_column(Date)
    confidentiality: Mapped[str] = mapped_column(String(10))  # 保密审查 conclusion
    risk_assessment: Mapped[str] = mapped_column(String(10))  # 安全风险评估 conclusion
    notes: Mapped[str] = mapped_column(Text, default="")
    override_justification: Mapped[str] = mapped_column(Text, default="")
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    rules_sha256: Mapped[str] = mapped_column(String(64))
    risk_report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def passed(self) -> bool:
        return self.confidentiality == Conclusion.passed and self.risk_assessment == Conclusion.passed
