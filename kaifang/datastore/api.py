"""JSON routes of the data layer: upload, resources and versions, the data API and downloads."""

from __future__ import annotations

import tempfile
import urllib.parse
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from kaifang.accounts.permissions import Actor, require_login
from kaifang.catalog.models import Entry
from kaifang.datastore import service
from kaifang.datastore.engines import engine_for
from kaifang.datastore.export import (
    citation,
    content_disposition,
    csv_chunks,
    json_chunks,
    parquet_file,
    xlsx_file,
)
from kaifang.datastore.models import Resource, ResourceKind, ResourceVersion, VersionStatus
from kaifang.datastore.query import DataQuery, QueryEngine, parse_query
from kaifang.datastore.upload import receive_resource, receive_version, schedule
from kaifang.errors import InvalidInput, NotAuthenticated
from kaifang.web.security import DB, CurrentActor, RowId

router = APIRouter(prefix="/api/v1", tags=["数据资源"])


class VersionOut(BaseModel):
    number: int
    status: str = Field(
        description="processing 处理中 | review 待发布 | failed 读取失败 | published 已发布 | discarded"
    )
    source_filename: str
    row_count: int
    byte_size: int
    sha256: str
    media_type: str
    schema_: list[dict[str, Any]] = Field(alias="schema")
    report: dict[str, Any]
    change_note: str
    created_at: datetime
    published_at: datetime | None

    model_config = ConfigDict(populate_by_name=True)


class ResourceOut(BaseModel):
    id: int
    entry_id: int
    name: str
    description: str
    kind: str = Field(description="table 表格 | file 文件")
    status: str = Field(description="最新版本的状态：processing | ready | failed")
    schema_: list[dict[str, Any]] = Field(alias="schema", description="当前发布版本（或最新版本）的数据字典")
    row_count: int
    published_version: int | None
    versions: list[VersionOut]
    errors: list[str] = Field(default_factory=list)

    model_config = ConfigDict(populate_by_name=True)


def version_out(v: ResourceVersion) -> VersionOut:
    return VersionOut(
        number=v.number,
        status=v.status,
        source_filename=v.source_filename,
        row_count=v.row_count,
        byte_size=v.byte_size,
        sha256=v.sha256,
        media_type=v.media_type,
        schema=v.schema,
        report=v.report,
        change_note=v.change_note,
        created_at=v.created_at,
        published_at=v.published_at,
    )


def resource_out(actor: Actor, resource: Resource, entry: Entry) -> ResourceOut:
    versions = service.visible_versions(actor, resource, entry)
    newest = versions[-1] if versions else None
    published = next((v for v in reversed(versions) if v.status == VersionStatus.published), None)
    shown = published or newest
    status = "processing"
    if newest is not None and newest.status == VersionStatus.failed:
        status = "failed"
    elif newest is not None and newest.status != VersionStatus.processing:
        status = "ready"
    errors = [str(newest.report.get("error"))] if newest is not None and newest.report.get("error") else []
    return ResourceOut(
        id=resource.id,
        entry_id=resource.entry_id,
        name=resource.name,
        description=resource.description,
        kind=resource.kind,
        status=status,
        schema=shown.schema if shown else [],
        row_count=shown.row_count if shown else 0,
        published_version=published.number if published else None,
        versions=[version_out(v) for v in versions],
        errors=errors,
    )


@router.post(
    "/datasets/{entry_id}/resources",
    response_model=ResourceOut,
    status_code=202,
    summary="上传数据资源（提供单位）",
)
async def create_resource(request: Request, entry_id: RowId, db: DB, actor: CurrentActor) -> ResourceOut:
    """multipart：file（必填）、name、description、sheet（工作表名）、change_note。文件在后台读取，
    用 GET /api/v1/resources/{id} 查看处理状态、数据字典和校验报告。"""
    require_login(actor)
    resource, _version = await receive_resource(request, db, actor, entry_id)
    return resource_out(actor, resource, service.get_resource(db, actor, resource.id)[1])


@router.post(
    "/resources/{resource_id}/versions",
    response_model=ResourceOut,
    status_code=202,
    summary="上传新版本（提供单位）",
)
async def create_version(request: Request, resource_id: RowId, db: DB, actor: CurrentActor) -> ResourceOut:
    """更新数据即上传新版本；已发布的版本保持不变并可继续下载。"""
    require_login(actor)
    await receive_version(request, db, actor, resource_id)
    resource, entry = service.get_resource(db, actor, resource_id)
    return resource_out(actor, resource, entry)


@router.get("/resources/{resource_id}", response_model=ResourceOut, summary="数据资源详情")
def get_resource(resource_id: RowId, db: DB, actor: CurrentActor) -> ResourceOut:
    resource, entry = service.get_resource(db, actor, resource_id)
    return resource_out(actor, resource, entry)


class SchemaBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    columns: list[dict[str, Any]] = Field(description="每列 name、type、description、unit，顺序与文件一致")


@router.put(
    "/resources/{resource_id}/versions/{number}/schema",
    response_model=ResourceOut,
    summary="修改数据字典（提供单位）",
)
def put_schema(
    request: Request, resource_id: RowId, number: RowId, body: SchemaBody, db: DB, actor: CurrentActor
) -> ResourceOut:
    version = service.update_schema(db, actor, resource_id, number, body.columns)
    db.commit()
    schedule(request, version)
    resource, entry = service.get_resource(db, actor, resource_id)
    return resource_out(actor, resource, entry)


class Comment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field("", max_length=2000)


@router.post(
    "/resources/{resource_id}/versions/{number}/publish",
    response_model=ResourceOut,
    summary="发布版本（提供单位）",
)
def publish(
    resource_id: RowId, number: RowId, db: DB, actor: CurrentActor, body: Comment | None = None
) -> ResourceOut:
    service.publish_version(db, actor, resource_id, number, body.comment if body else "")
    resource, entry = service.get_resource(db, actor, resource_id)
    return resource_out(actor, resource, entry)


@router.post(
    "/resources/{resource_id}/versions/{number}/discard",
    response_model=ResourceOut,
    summary="放弃未发布的版本（提供单位）",
)
def discard(resource_id: RowId, number: RowId, db: DB, actor: CurrentActor) -> ResourceOut:
    service.discard_version(db, actor, resource_id, number)
    resource, entry = service.get_resource(db, actor, resource_id)
    return resource_out(actor, resource, entry)


def _file_response(request: Request, version: ResourceVersion) -> Response:
    path = request.app.state.kf.store.path(version.data_key)
    return FileResponse(
        path,
        media_type=version.media_type,
        headers={"Content-Disposition": content_disposition(version.source_filename)},
    )


VersionParam = Annotated[int | None, Query(ge=1, le=100_000, description="版本号，默认最新发布版本")]


# --- the data API and downloads -----------------------------------------------------------------------

EXTRA_PARAMS = ("version",)  # ours, not filters


def _query(request: Request, version: ResourceVersion, *, paged: bool) -> DataQuery:
    settings = request.app.state.kf.settings
    params = {k: request.query_params.getlist(k) for k in request.query_params if k not in EXTRA_PARAMS}
    if not paged:
        params = {k: v for k, v in params.items() if k not in ("limit", "offset", "cursor")}
    return parse_query(
        params,
        service.schema_of(version),
        max_limit=settings.data_max_limit,
        max_offset=settings.data_max_offset,
    )


class DataOut(BaseModel):
    resource: int
    version: int
    fields: list[dict[str, str]]
    records: list[dict[str, Any]]
    total: int = Field(description="符合条件的总行数（分组时为组数），不受 limit 影响")
    next: str | None = Field(description="下一页的 cursor；最后一页为 null")
    schema_: list[dict[str, Any]] = Field(alias="schema", description="数据字典")

    model_config = ConfigDict(populate_by_name=True)


@router.get("/resources/{resource_id}/data", response_model=DataOut, summary="数据查询接口（需 API 密钥）")
def data(
    request: Request, resource_id: RowId, db: DB, actor: CurrentActor, version: VersionParam = None
) -> DataOut:
    """筛选 `列=值`、`列__gt=`、`__gte`、`__lt`、`__lte`、`__ne`、`__in=a,b`、`__contains=`、
    `__isnull=true`；`fields`、`sort`（`列` 或 `-列`）、`limit`、`offset` 或 `cursor`；
    `group_by` 与 `agg=count|sum:列|avg:列|min:列|max:列`。"""
    if actor.api_key_id is None:
        raise NotAuthenticated(
            "数据接口需要 API 密钥：请在个人中心创建密钥，并在请求头 Authorization: Bearer 中携带"
        )
    resource, row, _entry = service.readable_version(db, actor, resource_id, version)
    if resource.kind != ResourceKind.table:
        raise InvalidInput("该资源是文件，不支持数据查询，请使用下载")
    result = engine_for(request.app.state.kf.store, row).run(_query(request, row, paged=True))
    return DataOut(
        resource=resource.id,
        version=row.number,
        fields=result.fields,
        records=result.records,
        total=result.total,
        next=result.next,
        schema=row.schema,
    )


Format = Literal["csv", "json", "xlsx", "parquet"]


@router.get("/resources/{resource_id}/download", summary="下载数据（CSV、JSON、XLSX、Parquet；可带筛选条件）")
def download(
    request: Request,
    resource_id: RowId,
    db: DB,
    actor: CurrentActor,
    version: VersionParam = None,
    format: Annotated[Format, Query(description="csv | json | xlsx | parquet")] = "csv",
    bom: Annotated[bool, Query(description="CSV 加 UTF-8 BOM，便于 Excel 正确显示中文")] = False,
) -> Response:
    """整表或按筛选条件下载，流式输出；响应头 X-Data-Source 与 JSON/XLSX 内容中注明数据来源（第二十四条）。"""
    resource, row, entry = service.readable_version(db, actor, resource_id, version)
    if resource.kind != ResourceKind.table:
        return _file_response(request, row)
    kf = request.app.state.kf
    source = citation(
        entry.provider.name,
        entry.title,
        row.number,
        kf.settings.site_name,
        f"{kf.settings.base_url}/datasets/{entry.id}",
        date.today().isoformat(),
    )
    engine = engine_for(request.app.state.kf.store, row)
    q = _query(request, row, paged=False)
    batches = engine.batches(q)  # runs the query now: a bad one fails here, not mid-download
    filename = f"{resource.name}_第{row.number}版.{format}"
    headers = {"Content-Disposition": content_disposition(filename), "X-Data-Source": quote_header(source)}
    if format in ("csv", "json"):
        chunks = (
            csv_chunks(batches, bom=bom)
            if format == "csv"
            else json_chunks(batches, engine.fields(q), source)
        )
        media = "text/csv; charset=utf-8" if format == "csv" else "application/json"
        return StreamingResponse(chunks, media_type=media, headers=headers)
    return _file_download(batches, engine, q, source, format, headers)


def _file_download(
    batches: Iterator[Any],
    engine: QueryEngine,
    q: DataQuery,
    source: str,
    format: str,
    headers: dict[str, str],
) -> Response:
    """XLSX and Parquet are written to a temporary file first (their formats end with an index)."""
    handle = tempfile.NamedTemporaryFile(suffix=f".{format}", delete=False)  # noqa: SIM115 - deleted after sending
    handle.close()
    path = Path(handle.name)
    try:
        if format == "xlsx":
            xlsx_file(batches, engine.fields(q), source, path)
            media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        else:
            parquet_file(batches, engine.columns(q), path)
            media = "application/vnd.apache.parquet"
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return FileResponse(path, media_type=media, headers=headers, background=BackgroundTask(path.unlink))


def quote_header(text: str) -> str:
    """HTTP header values are Latin-1: the citation travels percent-encoded as UTF-8."""
    return urllib.parse.quote(text, safe=" ：，《》")
