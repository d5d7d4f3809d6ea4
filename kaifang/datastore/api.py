"""JSON routes of the data layer: upload, resources and versions, the data API and downloads."""

from __future__ import annotations

import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime
from itertools import chain
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from kaifang.accounts.permissions import Actor, require_login
from kaifang.audit.middleware import fold, request_facts
from kaifang.audit.receipts import HEADER as RECEIPT_HEADER
from kaifang.audit.receipts import new_receipt
from kaifang.audit.service import DataAccess, record_access
from kaifang.audit.tags import Tag
from kaifang.catalog.models import Entry
from kaifang.datastore import service
from kaifang.datastore.answers import Answer, answers
from kaifang.datastore.engines import engine_for
from kaifang.datastore.export import (
    BOM,
    STREAM_BATCH_ROWS,
    CacheFill,
    citation,
    content_disposition,
    csv_chunks,
    csv_with_bom,
    export_key,
    json_chunks,
    parquet_file,
    parquet_into_store,
    xlsx_file,
)
from kaifang.datastore.models import Resource, ResourceKind, ResourceVersion, VersionStatus
from kaifang.datastore.query import DataQuery, QueryEngine, parse_query
from kaifang.datastore.sql import SqlLimits, run_sql
from kaifang.datastore.storage import FileStore
from kaifang.datastore.upload import receive_resource, receive_version, schedule
from kaifang.errors import InvalidInput, NotAuthenticated
from kaifang.web.security import DB, CurrentActor, RowId, get_actor, request_transaction

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
    request: Request,
    resource_id: RowId,
    number: RowId,
    db: DB,
    actor: CurrentActor,
    body: Comment | None = None,
) -> ResourceOut:
    """需先记录通过的保密审查和安全风险评估；表格数据按脱敏规则处理后发布。"""
    kf = request.app.state.kf
    comment = body.comment if body else ""
    service.publish_version(db, actor, resource_id, number, comment, store=kf.store, settings=kf.settings)
    resource, entry = service.get_resource(db, actor, resource_id)
    return resource_out(actor, resource, entry)


@router.post(
    "/resources/{resource_id}/versions/{number}/discard",
    response_model=ResourceOut,
    summary="放弃未发布的版本（提供单位）",
)
def discard(request: Request, resource_id: RowId, number: RowId, db: DB, actor: CurrentActor) -> ResourceOut:
    kf = request.app.state.kf
    service.discard_version(db, actor, resource_id, number, store=kf.store, settings=kf.settings)
    resource, entry = service.get_resource(db, actor, resource_id)
    return resource_out(actor, resource, entry)


class _StoredFile(FileResponse):
    """A stored file sent in 1 MB reads rather than Starlette's 64 KB: every read is a trip to a
    worker thread, and with 64 KB those trips, not the disk or the network, set the pace."""

    chunk_size = 1 << 20


def _file_response(request: Request, version: ResourceVersion, receipt: str) -> Response:
    path = request.app.state.kf.store.path(version.data_key)
    disposition = content_disposition(version.source_filename)
    headers = {"Content-Disposition": disposition, RECEIPT_HEADER: receipt}
    return _StoredFile(path, media_type=version.media_type, headers=headers)


VersionParam = Annotated[int | None, Query(ge=1, le=100_000, description="版本号，默认最新发布版本")]


# --- the data API and downloads -----------------------------------------------------------------------

EXTRA_PARAMS = ("version",)  # ours, not filters


def _require_key(actor: Actor, what: str) -> None:
    """The data API and the SQL endpoint are called with an API key, so calls can be counted and
    limited per key (a signed-in browser session is not enough)."""
    if actor.api_key_id is None:
        raise NotAuthenticated(
            f"{what}需要 API 密钥：请在个人中心创建密钥，并在请求头 Authorization: Bearer 中携带"
        )


def _asked(request: Request) -> dict[str, str]:
    """The query parameters of a data access, for its audit record (values cut to a sane length)."""
    return {k[:64]: ",".join(request.query_params.getlist(k))[:500] for k in request.query_params}


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
async def data(request: Request, resource_id: RowId, version: VersionParam = None) -> Response:
    """筛选 `列=值`、`列__gt=`、`__gte`、`__lt`、`__lte`、`__ne`、`__in=a,b`、`__contains=`、
    `__isnull=true`；`fields`、`sort`（`列` 或 `-列`）、`limit`、`offset` 或 `cursor`；
    `group_by` 与 `agg=count|sum:列|avg:列|min:列|max:列`。"""
    # The busiest route does its work in one trip to a worker thread: the transaction, the caller,
    # the permission, the query and the audit record together (as dependencies they were four trips,
    # about a third of a small call's time).
    return await run_in_threadpool(_data, request, resource_id, version)


def _data(request: Request, resource_id: int, version: int | None) -> Response:
    with request_transaction(request.app.state.kf) as db:  # the record journaled before the answer
        actor = get_actor(request, db)
        response = _data_in(request, db, actor, resource_id, version)
    fold(request.scope)  # its data-access record carries the request's facts
    return response


def _data_in(request: Request, db: Session, actor: Actor, resource_id: int, version: int | None) -> Response:
    _require_key(actor, "数据接口")
    resource, row, entry = service.kept_readable_version(db, actor, resource_id, version)
    if resource.kind != ResourceKind.table:
        raise InvalidInput("该资源是文件，不支持数据查询，请使用下载")
    kept = row.status == VersionStatus.published and bool(row.sha256)
    key = (resource.id, row.id, row.number, row.sha256, tuple(request.query_params.multi_items()))
    answer = answers.get(key) if kept else None
    if answer is None:
        answer = _answer(request, resource, row)
        if kept:
            answers.put(key, answer)
    grant_id = actor.grants.get(entry.id)
    access = DataAccess(entry.id, resource.id, row.id, "json", answer.rows, grant_id=grant_id)
    # One record for the call: the data access with the request's own facts (the answer's size is
    # known before it is sent), instead of a second, request record written by the middleware.
    http = request_facts(request.scope, len(answer.body))
    record_access(db, actor, Tag.data_access_query, access, summary={"filters": _asked(request)}, http=http)
    return Response(answer.body, media_type="application/json")


def _answer(request: Request, resource: Resource, row: ResourceVersion) -> Answer:
    result = engine_for(request.app.state.kf.store, row).run(_query(request, row, paged=True))
    # The records are JSON values already (the engine converts dates and decimals): sent as they
    # are, without validating every row against DataOut again (that was a third of a small call).
    body = {
        "resource": resource.id,
        "version": row.number,
        "fields": result.fields,
        "records": result.records,
        "total": result.total,
        "next": result.next,
        "schema": row.schema,
    }
    return Answer(json_bytes(body), len(result.records))


def json_bytes(body: dict[str, Any]) -> bytes:
    """The answer as compact UTF-8 JSON, as JSONResponse writes it, ten times faster (orjson).
    An integer past 64 bits (a sum of large values) goes through the standard library instead."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return bytes(JSONResponse(body).body)


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
    """整表或按筛选条件下载，流式输出；响应头 X-Data-Source 与 JSON/XLSX 内容中注明数据来源（第二十四条）。
    每次下载有一个下载回执编号（响应头 X-Download-Receipt；JSON、XLSX、Parquet 文件内也写明），
    记入审计记录，可据此追溯下载人及其使用授权。"""
    resource, row, entry = service.readable_version(db, actor, resource_id, version)
    receipt = new_receipt()
    grant_id = actor.grants.get(entry.id)
    if resource.kind != ResourceKind.table:
        access = DataAccess(entry.id, resource.id, row.id, "file", grant_id=grant_id)
        record_access(db, actor, Tag.data_access_download, access, summary={"receipt": receipt})
        return _file_response(request, row, receipt)
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
    filename = f"{resource.name}_第{row.number}版.{format}"
    headers = {
        "Content-Disposition": content_disposition(filename),
        "X-Data-Source": quote_header(source),
        RECEIPT_HEADER: receipt,
    }
    # Recorded before the first byte is sent (the session commits before the response starts):
    # a download whose record was not written never begins.
    rows = engine.count(q) if q.filters else row.row_count
    access = DataAccess(entry.id, resource.id, row.id, format, rows, grant_id=grant_id)
    summary = {"filters": _asked(request), "receipt": receipt}
    record_access(db, actor, Tag.data_access_download, access, summary=summary)
    # A kept file is the same bytes for everyone: the receipt travels in the header only. Under a
    # grant a Parquet file is written for this download, with the receipt inside (CSV has no room).
    kept = format == "csv" or (format == "parquet" and grant_id is None)
    if kept and _whole_published_table(row, q):
        return _kept_download(kf.store, engine, q, row, format, bom, headers)
    # Runs the query now: a bad one fails here, not mid-download.
    batches = engine.batches(q, STREAM_BATCH_ROWS) if format in ("csv", "json") else engine.batches(q)
    if format in ("csv", "json"):
        chunks = (
            csv_chunks(batches, bom=bom)
            if format == "csv"
            else json_chunks(batches, engine.fields(q), source, receipt)
        )
        media = CSV_MEDIA if format == "csv" else "application/json"
        return StreamingResponse(chunks, media_type=media, headers=headers)
    return _file_download(batches, engine, q, source, format, headers, receipt)


CSV_MEDIA = "text/csv; charset=utf-8"
PARQUET_MEDIA = "application/vnd.apache.parquet"


def _whole_published_table(version: ResourceVersion, q: DataQuery) -> bool:
    """Every row and column of a published version: the same bytes for everyone, kept as a file.

    (CSV and Parquet carry no download date; the citation travels in the X-Data-Source header.)
    """
    plain = q.fields is None and not q.filters and not q.sort and not q.grouped
    return plain and version.status == VersionStatus.published and bool(version.sha256)


def _kept_download(
    store: FileStore,
    engine: QueryEngine,
    q: DataQuery,
    version: ResourceVersion,
    format: str,
    bom: bool,
    headers: dict[str, str],
) -> Response:
    """A whole-table CSV or Parquet file, sent from the version's kept file (with Content-Length
    and ranges); the first download builds it — a CSV while it streams to that first client."""
    key = export_key(version.resource_id, version.number, version.sha256, format)
    if format == "parquet":
        if not store.exists(key):
            parquet_into_store(engine.batches(q), engine.columns(q), store, key)
        return _StoredFile(store.path(key), media_type=PARQUET_MEDIA, headers=headers)
    if store.exists(key) and not bom:
        return _StoredFile(store.path(key), media_type=CSV_MEDIA, headers=headers)
    if store.exists(key):
        length = {"Content-Length": str(store.path(key).stat().st_size + len(BOM))}
        return StreamingResponse(csv_with_bom(store, key), media_type=CSV_MEDIA, headers=headers | length)
    fill = CacheFill(store, key)
    chunks = fill.stream(csv_chunks(engine.batches(q, STREAM_BATCH_ROWS), bom=False))
    body = chain([BOM], chunks) if bom else chunks
    keep = BackgroundTask(fill.keep)
    return StreamingResponse(body, media_type=CSV_MEDIA, headers=headers, background=keep)


def _file_download(
    batches: Iterator[Any],
    engine: QueryEngine,
    q: DataQuery,
    source: str,
    format: str,
    headers: dict[str, str],
    receipt: str,
) -> Response:
    """XLSX and Parquet are written to a temporary file first (their formats end with an index)."""
    handle = tempfile.NamedTemporaryFile(suffix=f".{format}", delete=False)  # noqa: SIM115 - deleted after sending
    handle.close()
    path = Path(handle.name)
    try:
        if format == "xlsx":
            xlsx_file(batches, engine.fields(q), source, path, receipt)
            media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        else:
            metadata = {"kaifang.source": source, "kaifang.receipt": receipt}
            parquet_file(batches, engine.columns(q), path, metadata)
            media = PARQUET_MEDIA
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return FileResponse(path, media_type=media, headers=headers, background=BackgroundTask(path.unlink))


def quote_header(text: str) -> str:
    """HTTP header values are Latin-1: the citation travels percent-encoded as UTF-8."""
    return urllib.parse.quote(text, safe=" ：，《》")


# --- read-only SQL ------------------------------------------------------------------------------------

SQL_HELP = """只读 SQL 查询（DuckDB 方言）：一条 SELECT 语句（可用 WITH、UNION、JOIN、子查询、窗口函数），
表名为 data，列名与数据字典一致（中文列名可直接书写，含空格或符号的列名加双引号）。不能读取文件、
访问其他表、调用系统函数或修改设置。查询时间、返回行数和内存都有上限：超时返回 422（code 为
sql_timeout），超出行数时只返回前面的行且 truncated 为 true。计算列建议用 AS 命名。"""


class SqlField(BaseModel):
    name: str
    type: str = Field(
        description="integer | decimal | boolean | date | datetime | text | other（列表、结构等）"
    )
    sql_type: str = Field(description="DuckDB 的结果类型，如 BIGINT、VARCHAR、DATE、INTEGER[]")


class SqlOut(BaseModel):
    resource: int
    version: int
    fields: list[SqlField]
    records: list[dict[str, Any]] = Field(description="每行一个对象；日期为 ISO 文本，小数为数值")
    truncated: bool = Field(description="结果超过行数上限时为 true，只返回了前面的行")


class SqlBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sql: str = Field(
        description="一条 SELECT 查询，表名为 data，如 SELECT 区, count(*) AS 数量 FROM data GROUP BY 区"
    )


SqlParam = Annotated[str, Query(description="一条 SELECT 查询，表名为 data，如 SELECT * FROM data LIMIT 10")]


def _sql(request: Request, db: DB, actor: Actor, resource_id: int, number: int | None, text: str) -> SqlOut:
    """The SQL endpoint needs an API key like the data API and reads what the data API may read."""
    _require_key(actor, "SQL 查询接口")
    resource, row, entry = service.readable_version(db, actor, resource_id, number)
    if resource.kind != ResourceKind.table:
        raise InvalidInput("该资源是文件，不支持 SQL 查询，请使用下载")
    kf = request.app.state.kf
    path, version = kf.store.path(row.data_key), row.number
    access = DataAccess(entry.id, resource.id, row.id, "sql", grant_id=actor.grants.get(entry.id))
    db.commit()  # a query may run for seconds: hold no database connection meanwhile
    result = run_sql(path, text, SqlLimits.from_settings(kf.settings))
    access = replace(access, rows=len(result.records))
    record_access(db, actor, Tag.data_access_sql, access, summary={"sql": text[:2000]})
    return SqlOut(
        resource=resource_id,
        version=version,
        fields=[SqlField(**f) for f in result.fields],
        records=result.records,
        truncated=result.truncated,
    )


@router.get(
    "/resources/{resource_id}/sql",
    response_model=SqlOut,
    summary="SQL 查询接口（只读，需 API 密钥）",
    description=SQL_HELP,
)
def sql_get(
    request: Request,
    resource_id: RowId,
    db: DB,
    actor: CurrentActor,
    sql: SqlParam,
    version: VersionParam = None,
) -> SqlOut:
    return _sql(request, db, actor, resource_id, version, sql)


@router.post(
    "/resources/{resource_id}/sql",
    response_model=SqlOut,
    summary="SQL 查询接口（POST JSON，适合较长的查询）",
    description=SQL_HELP,
)
def sql_post(
    request: Request,
    resource_id: RowId,
    body: SqlBody,
    db: DB,
    actor: CurrentActor,
    version: VersionParam = None,
) -> SqlOut:
    return _sql(request, db, actor, resource_id, version, body.sql)
