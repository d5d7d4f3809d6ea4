"""Resources and versions: upload, read, review, publish (Art. 8, 13, 15, 16). No HTTP in here.

An upload is staged as received, then a job reads it into a Parquet file (tables) or stores it
as is (other files) and leaves the version in `review`. Nothing is visible outside the provider
until the provider publishes the version; a published version's file never changes.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from kaifang.accounts.models import OrgRole
from kaifang.accounts.permissions import SYSTEM, Actor, require_org_role
from kaifang.audit.service import record
from kaifang.audit.tags import Tag
from kaifang.catalog import service as catalog
from kaifang.catalog.models import Entry, EntryStatus, OpenType
from kaifang.datastore.infer import cast_table, infer_and_cast, infer_schema
from kaifang.datastore.models import Resource, ResourceKind, ResourceVersion, VersionStatus
from kaifang.datastore.query import ROW
from kaifang.datastore.reader import is_tabular, read_table
from kaifang.datastore.storage import FileStore
from kaifang.datastore.types import Column, ColumnType
from kaifang.datastore.validate import validate
from kaifang.db import MAX_ID, Database, utcnow
from kaifang.errors import Conflict, InvalidInput, NotFound, PermissionDenied

log = logging.getLogger("kaifang.datastore")
MAX_NAME = 200


# --- who may read data ----------------------------------------------------------------------------


def can_read_data(actor: Actor, entry: Entry) -> bool:
    """Provider staff always; others published 无条件开放 data, and published 有条件开放 data
    under a grant in force (`actor.grants`, loaded with the actor). 不予开放 data never leaves the
    provider (Art. 7, 10).
    """
    if actor.is_member(entry.provider_id):
        return True
    if entry.status != EntryStatus.published:
        return False
    if entry.open_type == OpenType.conditional:
        return entry.id in actor.grants
    return entry.open_type == OpenType.unconditional


def _refusal(entry: Entry) -> str:
    if entry.open_type == OpenType.conditional:
        return "该数据为有条件开放数据，需提交开放申请并签订使用协议后方可获取"
    return "该数据不予开放"


# --- reading resources ------------------------------------------------------------------------------


def get_resource(db: Session, actor: Actor, resource_id: int) -> tuple[Resource, Entry]:
    """A resource whose entry the actor may see in the catalog.

    One query brings the resource, its entry with the provider and its versions: every data call
    starts here, and three round trips were a tenth of a small call.
    """
    found = None
    if 0 < resource_id <= MAX_ID:
        found = (
            db.execute(
                select(Resource, Entry)
                .join(Entry, Entry.id == Resource.entry_id)
                .where(Resource.id == resource_id)
                .options(joinedload(Resource.versions), joinedload(Entry.provider))
            )
            .unique()
            .first()
        )
    if found is None:
        raise NotFound("未找到该数据资源")
    resource, entry = found
    if not catalog.can_view(actor, entry):
        raise NotFound("未找到该数据目录，可能尚未发布或已下线")
    return resource, entry


def visible_versions(actor: Actor, resource: Resource, entry: Entry) -> list[ResourceVersion]:
    """Published versions for everyone; every version for the provider's staff."""
    if actor.is_member(entry.provider_id):
        return list(resource.versions)
    return [v for v in resource.versions if v.status == VersionStatus.published]


def entry_resources(db: Session, actor: Actor, entry: Entry) -> list[Resource]:
    """The resources of an entry the actor can see (the entry itself was already checked)."""
    resources = list(db.scalars(select(Resource).where(Resource.entry_id == entry.id).order_by(Resource.id)))
    if actor.is_member(entry.provider_id):
        return resources
    return [r for r in resources if r.published_version_id is not None]


def readable_version(
    db: Session, actor: Actor, resource_id: int, number: int | None = None
) -> tuple[Resource, ResourceVersion, Entry]:
    """The published version (the newest, or `number`) the actor may read the data of."""
    resource, entry = get_resource(db, actor, resource_id)
    if not can_read_data(actor, entry):
        raise PermissionDenied(_refusal(entry))
    candidates = [v for v in resource.versions if v.status == VersionStatus.published]
    if actor.is_member(entry.provider_id) and number is not None:
        candidates = [
            v for v in resource.versions if v.status in (VersionStatus.published, VersionStatus.review)
        ]
    if number is not None:
        candidates = [v for v in candidates if v.number == number]
    if not candidates:
        raise NotFound("该数据资源还没有可获取的版本" if number is None else f"未找到第 {number} 版")
    return resource, candidates[-1], entry


def schema_of(version: ResourceVersion) -> list[Column]:
    return [Column.from_dict(c) for c in version.schema]


# --- uploading ----------------------------------------------------------------------------------------


@dataclass
class Upload:
    """A file already streamed into the store's staging area."""

    filename: str
    staged_key: str
    size: int
    sha256: str


def _clean_filename(filename: str) -> str:
    name = Path(filename.replace("\\", "/")).name.strip()
    name = re.sub(r"[\x00-\x1f]", "", name)[:200]
    if not name or name in (".", ".."):
        raise InvalidInput("请选择要上传的文件", fields={"file": "缺少文件名"})
    return name


def can_upload(actor: Actor, entry: Entry) -> bool:
    """Whether to offer the upload form: the entry's publishers, until it is retired."""
    return actor.has_org_role(entry.provider_id, OrgRole.publisher) and entry.status != EntryStatus.retired


def check_upload(db: Session, actor: Actor, entry_id: int) -> None:
    """Refuse an upload before its body is read: only the entry's publishers, never to a retired entry."""
    _writable_entry(db, actor, entry_id)


def _writable_entry(db: Session, actor: Actor, entry_id: int) -> Entry:
    entry = catalog.get_entry(db, actor, entry_id)
    require_org_role(actor, entry.provider_id, OrgRole.publisher)
    if entry.status == EntryStatus.retired:
        raise Conflict("已下线的目录不能再上传数据")
    return entry


def add_resource(
    db: Session,
    actor: Actor,
    entry_id: int,
    upload: Upload,
    *,
    name: str = "",
    description: str = "",
    sheet: str | None = None,
    change_note: str = "",
) -> tuple[Resource, ResourceVersion]:
    """A publisher attaches a new resource to an entry with its first version (read in the background)."""
    _writable_entry(db, actor, entry_id)
    filename = _clean_filename(upload.filename)
    name = (name or Path(filename).stem).strip()[:MAX_NAME]
    kind = ResourceKind.table if is_tabular(filename) else ResourceKind.file
    resource = Resource(
        entry_id=entry_id,
        name=name,
        description=description.strip()[:2000],
        kind=kind,
        created_by=actor.user_id,
    )
    db.add(resource)
    db.flush()
    record(
        db,
        actor,
        Tag.data_resource_created,
        "resource",
        resource.id,
        summary={"after": {"entry_id": entry_id, "name": name, "kind": str(kind)}},
    )
    version = _new_version(db, actor, resource, upload, filename, sheet, change_note)
    return resource, version


def add_version(
    db: Session,
    actor: Actor,
    resource_id: int,
    upload: Upload,
    *,
    sheet: str | None = None,
    change_note: str = "",
) -> ResourceVersion:
    """An update is a new version; earlier versions stay as they are (published data is never overwritten)."""
    resource, entry = get_resource(db, actor, resource_id)
    _writable_entry(db, actor, entry.id)
    return _new_version(db, actor, resource, upload, _clean_filename(upload.filename), sheet, change_note)


def _new_version(
    db: Session, actor: Actor, resource: Resource, upload: Upload, filename: str, sheet: str | None, note: str
) -> ResourceVersion:
    busy = [v for v in resource.versions if v.status == VersionStatus.processing]
    if busy:
        raise Conflict(f"第 {busy[0].number} 版仍在处理中，请稍后再上传")
    number = (
        db.scalar(select(func.max(ResourceVersion.number)).where(ResourceVersion.resource_id == resource.id))
        or 0
    ) + 1
    version = ResourceVersion(
        resource_id=resource.id,
        number=number,
        status=VersionStatus.processing,
        source_filename=filename,
        source_key=upload.staged_key,
        source_size=upload.size,
        source_sha256=upload.sha256,
        sheet=(sheet or "").strip()[:100] or None,
        change_note=note.strip()[:2000],
        created_by=actor.user_id,
    )
    db.add(version)
    db.flush()
    record(
        db,
        actor,
        Tag.data_version_uploaded,
        "resource",
        resource.id,
        summary={
            "after": {"version": number, "filename": filename, "size": upload.size, "sha256": upload.sha256}
        },
    )
    return version


# --- the background job -------------------------------------------------------------------------------


def process_version(database: Database, store: FileStore, version_id: int) -> None:
    """Read a staged upload into its stored form and leave the version in review (or failed).

    The version row changes only at the end, in one transaction, after the data file is in
    place under its final key: a crash midway leaves the version `processing`, to be run again.
    """
    with database.session() as db:
        version = db.get(ResourceVersion, version_id)
        if version is None or version.status != VersionStatus.processing:
            return
        resource = version.resource
        source = store.path(version.source_key)
        kind, number, sheet, filename = resource.kind, version.number, version.sheet, version.source_filename
        schema = [Column.from_dict(c) for c in version.schema] if version.schema else None
    try:
        if kind == ResourceKind.table:
            outcome = _read_table(store, source, filename, sheet, schema, resource.id, number)
        else:
            outcome = _store_file(store, source, filename, resource.id, number)
    except InvalidInput as exc:
        _finish(
            database,
            version_id,
            {"status": VersionStatus.failed, "report": {"error": exc.message, "fields": exc.fields}},
            Tag.data_version_failed,
        )
        return
    except Exception:
        log.exception("reading version %s failed", version_id)
        _finish(
            database,
            version_id,
            {
                "status": VersionStatus.failed,
                "report": {"error": "文件读取失败：文件可能已损坏或格式与扩展名不符"},
            },
            Tag.data_version_failed,
        )
        return
    _finish(database, version_id, {"status": VersionStatus.review, **outcome}, Tag.data_version_processed)


def _finish(database: Database, version_id: int, values: dict[str, Any], tag: Tag) -> None:
    with database.session() as db:
        version = db.get_one(ResourceVersion, version_id)
        for key, value in values.items():
            setattr(version, key, value)
        version.progress = 100
        record(
            db,
            SYSTEM,
            tag,
            "resource",
            version.resource_id,
            summary={"after": {"version": version.number, "status": str(version.status)}},
        )


def _read_table(
    store: FileStore,
    source: Path,
    filename: str,
    sheet: str | None,
    schema: list[Column] | None,
    resource_id: int,
    number: int,
) -> dict[str, Any]:
    raw = read_table(source, filename=filename, sheet=sheet)
    headers = [c.source_name or c.name for c in infer_schema(raw.table[:0], raw.source_headers)]
    if schema is not None and [c.source_name or c.name for c in schema] == headers:
        typed, failures = cast_table(raw.table, schema)  # the provider's corrected dictionary
    else:
        schema, typed = infer_and_cast(raw.table, raw.source_headers)  # one pass: no failures by construction
        failures = {}
    report = validate(raw, schema, failures)
    data_key = f"data/{resource_id}/{number}.parquet"
    with tempfile.TemporaryDirectory(dir=store.path("tmp").parent) as tmp:
        out = Path(tmp) / "data.parquet"
        _write_parquet(typed, out)
        size, digest = store.put_file(data_key, out)
    reading = {
        "encoding": raw.encoding,
        "delimiter": raw.delimiter,
        "sheet": raw.sheet,
        "sheets": raw.sheets,
        "header_row": raw.header_row,
        "warnings": raw.warnings,
    }
    return {
        "schema": [c.to_dict() for c in schema],
        "row_count": typed.num_rows,
        "byte_size": size,
        "sha256": digest,
        "data_key": data_key,
        "media_type": "application/vnd.apache.parquet",
        "sheet": raw.sheet,
        "report": {**report.to_dict(), "reading": reading},
    }


DICTIONARY_SAMPLE = 65_536  # values looked at to decide whether a column's values repeat


def _write_parquet(typed: pa.Table, out: Path) -> None:
    """The version's data file: `_row` (0..n-1) first, then the columns, zstd-compressed.

    `_row` is delta-encoded: a few bytes per row group, not megabytes. Dictionary encoding only
    where a column's values repeat: for (nearly) unique ones pyarrow would build a dictionary,
    find it too large and start over as plain values in every row group, for nothing.
    """
    n = typed.num_rows
    positions = pc.subtract(pc.cumulative_sum(pa.nulls(n, pa.int64()).fill_null(1)), 1)
    pq.write_table(
        typed.add_column(0, ROW, positions),
        out,
        compression="zstd",
        use_dictionary=[name for name in typed.column_names if _repeats(typed.column(name))],
        column_encoding={ROW: "DELTA_BINARY_PACKED"},
    )


def _repeats(column: pa.ChunkedArray) -> bool:
    sample = column.slice(0, DICTIONARY_SAMPLE).drop_null()
    return len(sample) > 0 and pc.count_distinct(sample).as_py() <= len(sample) // 2


def _store_file(
    store: FileStore, source: Path, filename: str, resource_id: int, number: int
) -> dict[str, Any]:
    import mimetypes
    import shutil

    data_key = f"files/{resource_id}/{number}/{filename}"
    with tempfile.TemporaryDirectory(dir=store.path("tmp").parent) as tmp:
        copy = Path(tmp) / "file"
        shutil.copyfile(source, copy)
        size, digest = store.put_file(data_key, copy)
    media_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return {
        "data_key": data_key,
        "byte_size": size,
        "sha256": digest,
        "media_type": media_type,
        "report": {"row_count": 0, "fatal": False, "problems": []},
    }


def pending_versions(db: Session) -> list[int]:
    """Versions left `processing` (by a crash or a kill): the runner resumes them at start."""
    return list(
        db.scalars(select(ResourceVersion.id).where(ResourceVersion.status == VersionStatus.processing))
    )


# --- review and publication ---------------------------------------------------------------------------


def _version_for_publisher(
    db: Session, actor: Actor, resource_id: int, number: int
) -> tuple[ResourceVersion, Entry]:
    resource, entry = get_resource(db, actor, resource_id)
    require_org_role(actor, entry.provider_id, OrgRole.publisher)
    version = next((v for v in resource.versions if v.number == number), None)
    if version is None:
        raise NotFound(f"未找到第 {number} 版")
    return version, entry


def update_schema(
    db: Session, actor: Actor, resource_id: int, number: int, columns: list[dict[str, Any]]
) -> ResourceVersion:
    """The provider corrects names, types, descriptions and units; the upload is read again with them."""
    version, _entry = _version_for_publisher(db, actor, resource_id, number)
    if version.status != VersionStatus.review or version.resource.kind != ResourceKind.table:
        raise Conflict("只有待发布的表格版本可以修改数据字典")
    current = schema_of(version)
    if len(columns) != len(current):
        raise InvalidInput(f"数据字典应有 {len(current)} 列，收到 {len(columns)} 列")
    errors: dict[str, str] = {}
    fixed: list[Column] = []
    for i, (col, old) in enumerate(zip(columns, current, strict=True), 1):
        name = str(col.get("name") or "").strip()
        if not name or len(name) > 64 or name == ROW:
            errors[f"columns.{i}.name"] = "列名不能为空，且不超过 64 个字符"
        try:
            col_type = ColumnType(str(col.get("type") or old.type))
        except ValueError:
            errors[f"columns.{i}.type"] = "类型应为：" + "、".join(ColumnType)
            col_type = old.type
        fixed.append(
            Column(
                name=name,
                type=col_type,
                description=str(col.get("description") or "")[:500],
                unit=str(col.get("unit") or "")[:50],
                source_name=old.source_name,
            )
        )
    names = [c.name for c in fixed]
    if len(set(names)) != len(names):
        errors["columns"] = "列名不能重复"
    if errors:
        raise InvalidInput("数据字典有误，请按提示修改", fields=errors)
    version.schema = [c.to_dict() for c in fixed]
    version.status = VersionStatus.processing
    version.progress = 0
    record(
        db,
        actor,
        Tag.data_version_schema_updated,
        "resource",
        resource_id,
        summary={"after": {"version": number, "schema": names}},
    )
    return version


def publish_version(
    db: Session, actor: Actor, resource_id: int, number: int, comment: str = ""
) -> ResourceVersion:
    """Publish a reviewed version: it becomes the resource's current data; earlier ones stay downloadable."""
    version, entry = _version_for_publisher(db, actor, resource_id, number)
    if version.status != VersionStatus.review:
        raise Conflict("只有处理完成、待发布的版本可以发布")
    if version.report.get("fatal"):
        raise Conflict("校验报告中有必须修正的问题，修正（或调整数据字典）后才能发布")
    now = utcnow()
    version.status, version.published_at = VersionStatus.published, now
    version.resource.published_version_id = version.id
    entry.last_published_at = now  # the entry's 最近更新 follows its newest data
    record(
        db,
        actor,
        Tag.data_version_published,
        "resource",
        resource_id,
        comment=comment,
        summary={"after": {"version": number, "rows": version.row_count, "sha256": version.sha256}},
    )
    return version


def discard_version(db: Session, actor: Actor, resource_id: int, number: int) -> ResourceVersion:
    version, _entry = _version_for_publisher(db, actor, resource_id, number)
    if version.status not in (VersionStatus.review, VersionStatus.failed):
        raise Conflict("只有未发布的版本可以放弃")
    version.status = VersionStatus.discarded
    record(
        db, actor, Tag.data_version_discarded, "resource", resource_id, summary={"after": {"version": number}}
    )
    return version
