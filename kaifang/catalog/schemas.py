"""JSON shapes of catalog entries for the API (and the OpenAPI document)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kaifang.catalog.models import OPEN_TYPE_LABELS, Entry


class EntryFields(BaseModel):
    """The Art. 14 catalog fields; all optional so the same shape serves create and PATCH."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, max_length=200, description="数据集名称")
    summary: str | None = Field(None, max_length=5000, description="摘要")
    keywords: list[str] | None = Field(None, description="关键词")
    theme: str | None = Field(None, description="主题分类编码")
    industry: str | None = Field(None, description="行业分类编码（GB/T 4754 门类）")
    grade: str | None = Field(None, description="数据分级编码")
    open_type: str | None = Field(
        None, description="unconditional 无条件开放 | conditional 有条件开放 | closed 不予开放"
    )
    open_conditions: str | None = Field(None, max_length=5000, description="开放条件")
    usage_requirements: str | None = Field(None, max_length=5000, description="使用要求")
    update_frequency: str | None = Field(
        None, description="realtime|daily|weekly|monthly|quarterly|yearly|irregular"
    )
    access_methods: list[str] | None = Field(None, description="download 文件下载 / api 接口调用")
    formats: list[str] | None = Field(None, description="数据格式")
    contact_name: str | None = Field(None, max_length=100)
    contact_phone: str | None = Field(None, max_length=50)
    contact_email: str | None = Field(None, max_length=254)
    spatial_coverage: str | None = Field(None, max_length=200, description="空间范围")
    temporal_start: date | None = Field(None, description="时间范围起")
    temporal_end: date | None = Field(None, description="时间范围止")
    terms_of_use: str | None = Field(None, max_length=5000, description="使用条款")
    closed_reason: str | None = Field(None, max_length=5000, description="不予开放理由")
    closed_legal_basis: str | None = Field(None, max_length=5000, description="法律依据")
    next_review_date: date | None = Field(None, description="下次评估审查日期")

    def given(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class NewEntry(EntryFields):
    title: str = Field(..., min_length=1, max_length=200, description="数据集名称")
    provider: str | None = Field(None, description="提供单位标识；本人只属于一个发布单位时可省略")


class WorkflowComment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field("", max_length=2000, description="意见或理由（退回、下线时必填）")


class Provider(BaseModel):
    slug: str
    name: str


class EntryOut(BaseModel):
    id: int
    title: str
    summary: str
    keywords: list[str]
    theme: str
    industry: str
    grade: str
    open_type: str
    open_type_label: str
    open_conditions: str
    usage_requirements: str
    update_frequency: str
    access_methods: list[str]
    formats: list[str]
    contact_name: str
    contact_phone: str
    contact_email: str
    spatial_coverage: str
    temporal_start: date | None
    temporal_end: date | None
    terms_of_use: str
    provider: Provider
    status: str
    published_at: datetime | None
    last_published_at: datetime | None
    url: str
    # Only for the provider's staff and the supervisors:
    closed_reason: str | None = None
    closed_legal_basis: str | None = None
    next_review_date: date | None = None
    return_reason: str | None = None
    pending: dict[str, Any] | None = None
    pending_status: str | None = None


def entry_out(entry: Entry, *, internal: bool) -> EntryOut:
    out = EntryOut(
        id=entry.id,
        title=entry.title,
        summary=entry.summary,
        keywords=entry.keywords or [],
        theme=entry.theme,
        industry=entry.industry,
        grade=entry.grade,
        open_type=entry.open_type,
        open_type_label=OPEN_TYPE_LABELS.get(entry.open_type, entry.open_type),  # type: ignore[call-overload]
        open_conditions=entry.open_conditions,
        usage_requirements=entry.usage_requirements,
        update_frequency=entry.update_frequency,
        access_methods=entry.access_methods or [],
        formats=entry.formats or [],
        contact_name=entry.contact_name,
        contact_phone=entry.contact_phone,
        contact_email=entry.contact_email,
        spatial_coverage=entry.spatial_coverage,
        temporal_start=entry.temporal_start,
        temporal_end=entry.temporal_end,
        terms_of_use=entry.terms_of_use,
        provider=Provider(slug=entry.provider.slug, name=entry.provider.name),
        status=entry.status,
        published_at=entry.published_at,
        last_published_at=entry.last_published_at,
        url=f"/datasets/{entry.id}",
    )
    if internal:
        out.closed_reason, out.closed_legal_basis = entry.closed_reason, entry.closed_legal_basis
        out.next_review_date, out.return_reason = entry.next_review_date, entry.return_reason
        out.pending, out.pending_status = entry.pending, entry.pending_status
    return out


class FacetValueOut(BaseModel):
    value: str
    label: str
    count: int
    selected: bool


class SearchOut(BaseModel):
    count: int
    page: int
    page_size: int
    sort: str
    partial: bool = Field(description="没有同时匹配所有词的结果时为 true，结果为部分匹配")
    expanded: bool = Field(False, description="没有直接包含检索词的结果、按检索词表中的相关说法找到时为 true")
    expansions: list[str] = Field(default_factory=list, description="检索词表为检索词补充的目录用语")
    did_you_mean: list[str] = Field(default_factory=list, description="检索词可能有误时，建议的检索词")
    themes: list[FacetValueOut] = Field(default_factory=list, description="与检索词相关的主题分类")
    results: list[EntryOut]
    facets: dict[str, list[FacetValueOut]]
