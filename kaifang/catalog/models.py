"""Catalog entries (数据集) with the Art. 14 fields, and the regulator's taxonomies (Art. 9)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kaifang.accounts.models import Organisation
from kaifang.db import Base, UTCDateTime, utcnow


class OpenType(enum.StrEnum):
    unconditional = "unconditional"  # 无条件开放
    conditional = "conditional"  # 有条件开放
    closed = "closed"  # 不予开放


class EntryStatus(enum.StrEnum):
    draft = "draft"
    submitted = "submitted"
    returned = "returned"
    confirmed = "confirmed"
    published = "published"
    retired = "retired"


class TaxonomyKind(enum.StrEnum):
    theme = "theme"  # 主题分类 / 数据领域
    industry = "industry"  # 行业分类
    grade = "grade"  # 数据分级


OPEN_TYPE_LABELS = {
    OpenType.unconditional: "无条件开放",
    OpenType.conditional: "有条件开放",
    OpenType.closed: "不予开放",
}
OPEN_TYPE_HELP = {
    OpenType.unconditional: "无需申请即可访问、获取、使用。",
    OpenType.conditional: "需通过平台提交开放申请，签订使用协议后在约定时限内使用。",
    OpenType.closed: "依法不予开放，仅目录对提供单位和主管部门可见。",
}
STATUS_LABELS = {
    EntryStatus.draft: "草稿",
    EntryStatus.submitted: "待确认",
    EntryStatus.returned: "已退回",
    EntryStatus.confirmed: "已确认",
    EntryStatus.published: "已发布",
    EntryStatus.retired: "已下线",
}
FREQUENCY_LABELS = {
    "realtime": "实时",
    "daily": "每日",
    "weekly": "每周",
    "monthly": "每月",
    "quarterly": "每季度",
    "yearly": "每年",
    "irregular": "不定期",
}
ACCESS_METHOD_LABELS = {"download": "文件下载", "api": "接口调用"}
FORMATS = ["CSV", "XLSX", "JSON", "XML", "PDF", "SHP", "GeoJSON", "API"]
TAXONOMY_LABELS = {
    TaxonomyKind.theme: "主题分类",
    TaxonomyKind.industry: "行业分类",
    TaxonomyKind.grade: "数据分级",
}


class TaxonomyTerm(Base):
    __tablename__ = "taxonomy_terms"
    __table_args__ = (UniqueConstraint("kind", "code", name="uq_taxonomy_kind_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    sort: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


# The catalog fields a provider edits; a change to a published entry is held in `pending` until confirmed.
CATALOG_FIELDS = (
    "title",
    "summary",
    "keywords",
    "theme",
    "industry",
    "grade",
    "open_type",
    "open_conditions",
    "usage_requirements",
    "update_frequency",
    "access_methods",
    "formats",
    "contact_name",
    "contact_phone",
    "contact_email",
    "spatial_coverage",
    "temporal_start",
    "temporal_end",
    "terms_of_use",
    "closed_reason",
    "closed_legal_basis",
    "next_review_date",
)


class Entry(Base):
    """A catalog entry. Its live fields are what the public sees once published."""

    __tablename__ = "entries"
    __table_args__ = (
        Index("ix_entries_status_open_type", "status", "open_type"),
        Index("ix_entries_published_at", "published_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    theme: Mapped[str] = mapped_column(String(20), default="")
    industry: Mapped[str] = mapped_column(String(20), default="")
    grade: Mapped[str] = mapped_column(String(20), default="")
    open_type: Mapped[str] = mapped_column(String(20), default=OpenType.unconditional)
    open_conditions: Mapped[str] = mapped_column(Text, default="")
    usage_requirements: Mapped[str] = mapped_column(Text, default="")
    update_frequency: Mapped[str] = mapped_column(String(20), default="")
    access_methods: Mapped[list[str]] = mapped_column(JSON, default=list)
    formats: Mapped[list[str]] = mapped_column(JSON, default=list)
    contact_name: Mapped[str] = mapped_column(String(100), default="")
    contact_phone: Mapped[str] = mapped_column(String(50), default="")
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    spatial_coverage: Mapped[str] = mapped_column(String(200), default="")
    temporal_start: Mapped[date | None] = mapped_column(Date, default=None)
    temporal_end: Mapped[date | None] = mapped_column(Date, default=None)
    terms_of_use: Mapped[str] = mapped_column(Text, default="")
    closed_reason: Mapped[str] = mapped_column(Text, default="")  # 不予开放理由 (Art. 7)
    closed_legal_basis: Mapped[str] = mapped_column(Text, default="")  # 法律依据
    next_review_date: Mapped[date | None] = mapped_column(Date, default=None)  # 下次评估审查日期

    status: Mapped[str] = mapped_column(String(20), default=EntryStatus.draft)
    return_reason: Mapped[str] = mapped_column(Text, default="")
    pending: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    pending_status: Mapped[str | None] = mapped_column(String(20), default=None)

    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)  # 首次发布日期
    last_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)  # 最近更新日期
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    provider: Mapped[Organisation] = relationship()


class EntryFormat(Base):
    """One row per (entry, format) so the format facet is a plain GROUP BY on both databases."""

    __tablename__ = "entry_formats"

    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True)
    format: Mapped[str] = mapped_column(String(20), primary_key=True, index=True)


class CatalogState(Base):
    """One row whose random token changes with every change to the catalog, so each app process
    knows when its in-memory snapshot of the published catalog is stale (kaifang.catalog.search)."""

    __tablename__ = "catalog_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(32))


class SearchDoc(Base):
    """Normalised, jieba-segmented text of an entry's live fields, the input of the full-text
    index; title and keywords also hold the pinyin of their words (kaifang.catalog.analysis).

    SQLite indexes it with an FTS5 table (``search_fts``, rowid = entry id) and PostgreSQL with
    the ``tsv`` column below; both are created by the migration, not by the ORM.
    """

    __tablename__ = "search_docs"

    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True)
    title: Mapped[str] = mapped_column(Text, default="")
    keywords: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    provider: Mapped[str] = mapped_column(Text, default="")


class VocabularyEntry(Base):
    """One group of the search vocabulary: everyday words people type (办护照, 考驾照) and the
    catalog's words they mean (出入境, 驾驶人考试). Shipped as ``vocabulary.txt``, kept here so the
    regulator and the operator can extend and correct it (kaifang.catalog.vocabulary)."""

    __tablename__ = "search_vocabulary"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    terms: Mapped[list[str]] = mapped_column(JSON, default=list)  # everyday words
    expansions: Mapped[list[str]] = mapped_column(JSON, default=list)  # catalog words
    theme: Mapped[str] = mapped_column(String(20), default="", index=True)  # theme code or ""
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
