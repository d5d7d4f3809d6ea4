"""JSON routes of the catalog: search, entries and their workflow. Rules live in the service."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from kaifang.accounts import orgs
from kaifang.accounts.models import OrgRole
from kaifang.accounts.permissions import Actor, require_login
from kaifang.catalog import search, service
from kaifang.catalog.models import Entry
from kaifang.catalog.schemas import (
    EntryFields,
    EntryOut,
    FacetValueOut,
    NewEntry,
    SearchOut,
    WorkflowComment,
    entry_out,
)
from kaifang.errors import InvalidInput
from kaifang.web.security import DB, CurrentActor, RowId

router = APIRouter(prefix="/api/v1", tags=["数据目录"])


def facet_filters(request: Request) -> dict[str, list[str]]:
    return {
        f: [v[:100] for v in request.query_params.getlist(f)][:20]
        for f in search.FACETS
        if request.query_params.getlist(f)
    }


def _out(entry: Entry, actor: Actor) -> EntryOut:
    return entry_out(entry, internal=actor.is_supervisor or actor.is_member(entry.provider_id))


@router.get("/datasets", response_model=SearchOut, summary="检索数据目录")
def list_datasets(
    request: Request,
    db: DB,
    actor: CurrentActor,
    q: Annotated[
        str,
        Query(max_length=200, description="检索词：中文分词，繁体、全角、拼音和日常说法（如“办护照”）均可"),
    ] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int | None, Query(ge=1, le=1000)] = None,
    sort: Annotated[
        Literal["relevance", "newest"], Query(description="relevance 相关度 | newest 最新")
    ] = "relevance",
    theme: Annotated[list[str] | None, Query(description="主题分类编码，可重复")] = None,
    provider: Annotated[list[str] | None, Query(description="提供单位标识，可重复")] = None,
    open_type: Annotated[list[str] | None, Query(description="开放类型，可重复")] = None,
    format: Annotated[list[str] | None, Query(description="数据格式，可重复")] = None,
    update_frequency: Annotated[list[str] | None, Query(description="更新频率，可重复")] = None,
    grade: Annotated[list[str] | None, Query(description="数据分级，可重复")] = None,
) -> SearchOut:
    """Published entries the caller may see, ranked as on the catalog page, with facet counts."""
    settings = request.app.state.kf.settings
    size = page_size or settings.page_size
    if size > settings.max_page_size:
        raise InvalidInput(f"每页条数不能超过 {settings.max_page_size}", fields={"page_size": "过大"})
    result = search.search_catalog(
        db,
        actor,
        q,
        facet_filters(request),
        sort=sort,
        page=page,
        page_size=size,
        labels=service.term_names(db),
    )
    return SearchOut(
        count=result.count,
        page=result.page,
        page_size=result.page_size,
        sort=result.sort,
        partial=result.partial,
        expanded=result.expanded,
        expansions=result.expansions,
        did_you_mean=result.did_you_mean,
        themes=[FacetValueOut(**fv.__dict__) for fv in result.themes],
        results=[_out(e, actor) for e in result.entries],
        facets={f: [FacetValueOut(**fv.__dict__) for fv in values] for f, values in result.facets.items()},
    )


def _provider_for_new_entry(db: Session, actor: Actor, slug: str | None) -> int:
    require_login(actor)
    if slug:
        return orgs.get_org_by_slug(db, slug).id
    own = actor.orgs_with_role(OrgRole.publisher)
    if len(own) != 1:
        raise InvalidInput("请用 provider 字段指明提供单位", fields={"provider": "必填"})
    return own[0]


@router.post("/datasets", response_model=EntryOut, status_code=201, summary="新建目录（草稿）")
def create_dataset(body: NewEntry, db: DB, actor: CurrentActor) -> EntryOut:
    data = body.given()
    provider_id = _provider_for_new_entry(db, actor, data.pop("provider", None))
    entry = service.create_entry(db, actor, provider_id, data)
    return _out(entry, actor)


@router.get("/datasets/{entry_id}", response_model=EntryOut, summary="目录详情")
def get_dataset(entry_id: RowId, db: DB, actor: CurrentActor) -> EntryOut:
    return _out(service.get_entry(db, actor, entry_id), actor)


@router.patch("/datasets/{entry_id}", response_model=EntryOut, summary="修改目录")
def patch_dataset(entry_id: RowId, body: EntryFields, db: DB, actor: CurrentActor) -> EntryOut:
    """Drafts change in place; a published entry keeps its live fields and gets a pending change."""
    return _out(service.edit_entry(db, actor, entry_id, body.given()), actor)


@router.post("/datasets/{entry_id}/submit", response_model=EntryOut, summary="提交确认（提供单位）")
def submit_dataset(
    entry_id: RowId, db: DB, actor: CurrentActor, body: WorkflowComment | None = None
) -> EntryOut:
    return _out(service.submit_entry(db, actor, entry_id, body.comment if body else ""), actor)


@router.post("/datasets/{entry_id}/confirm", response_model=EntryOut, summary="确认目录（主管部门）")
def confirm_dataset(
    entry_id: RowId, db: DB, actor: CurrentActor, body: WorkflowComment | None = None
) -> EntryOut:
    return _out(service.confirm_entry(db, actor, entry_id, body.comment if body else ""), actor)


@router.post("/datasets/{entry_id}/return", response_model=EntryOut, summary="退回目录并说明理由（主管部门）")
def return_dataset(entry_id: RowId, body: WorkflowComment, db: DB, actor: CurrentActor) -> EntryOut:
    return _out(service.return_entry(db, actor, entry_id, body.comment), actor)


@router.post("/datasets/{entry_id}/publish", response_model=EntryOut, summary="发布已确认的目录（提供单位）")
def publish_dataset(
    entry_id: RowId, db: DB, actor: CurrentActor, body: WorkflowComment | None = None
) -> EntryOut:
    return _out(service.publish_entry(db, actor, entry_id, body.comment if body else ""), actor)


@router.post("/datasets/{entry_id}/retire", response_model=EntryOut, summary="下线目录并说明原因（提供单位）")
def retire_dataset(entry_id: RowId, body: WorkflowComment, db: DB, actor: CurrentActor) -> EntryOut:
    return _out(service.retire_entry(db, actor, entry_id, body.comment), actor)
