"""Resources (a table or a file) of a catalog entry, and their immutable versions."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kaifang.db import Base, UTCDateTime, utcnow


class ResourceKind(enum.StrEnum):
    table = "table"  # tabular: stored as Parquet, queryable
    file = "file"  # PDF, DOCX, ZIP, images, GeoJSON…: stored and downloadable as is


class VersionStatus(enum.StrEnum):
    processing = "processing"  # the ingest job is reading the upload
    review = "review"  # read; the provider reviews schema and report before publishing
    failed = "failed"  # could not be read at all (the report says why)
    published = "published"  # visible to everyone the open type allows
    discarded = "discarded"  # the provider dropped it before publishing


VERSION_STATUS_LABELS = {
    VersionStatus.processing: "处理中",
    VersionStatus.review: "待发布",
    VersionStatus.failed: "读取失败",
    VersionStatus.published: "已发布",
    VersionStatus.discarded: "已放弃",
}


class Resource(Base):
    __tablename__ = "resources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(10))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The newest published version; None until the first is published.
    published_version_id: Mapped[int | None] = mapped_column(Integer, default=None)

    versions: Mapped[list[ResourceVersion]] = relationship(
        back_populates="resource", order_by="ResourceVersion.number", cascade="all, delete-orphan"
    )


class ResourceVersion(Base):
    """One upload. Once published its file never changes: an update is a new version."""

    __tablename__ = "resource_versions"
    __table_args__ = (UniqueConstraint("resource_id", "number", name="uq_resource_version_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=VersionStatus.processing)
    source_filename: Mapped[str] = mapped_column(String(255))
    source_key: Mapped[str] = mapped_column(String(255), default="")  # the upload as received (staging)
    source_size: Mapped[int] = mapped_column(BigInteger, default=0)
    source_sha256: Mapped[str] = mapped_column(String(64), default="")
    sheet: Mapped[str | None] = mapped_column(String(100), default=None)
    data_key: Mapped[str] = mapped_column(String(255), default="")  # Parquet (tables) or the file itself
    media_type: Mapped[str] = mapped_column(String(100), default="")
    schema: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    row_count: Mapped[int] = mapped_column(BigInteger, default=0)
    byte_size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # validation report, reading details
    progress: Mapped[int] = mapped_column(Integer, default=0)  # percent, while processing
    change_note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    resource: Mapped[Resource] = relationship(back_populates="versions")
