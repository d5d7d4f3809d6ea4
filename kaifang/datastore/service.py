"""Resources and versions: upload, read, review, publish (Art. 8, 13, 15, 16). No HTTP in here.

An upload is staged as received, then a job reads it into a Parquet file (tables) or stores it
as is (other files), scans the table for personal data and leaves the version in `review`. The
typed data of a table in review is *staging* data (`staging/{rid}/{n}.parquet`): unmasked, for
the provider's staff only. Publishing applies the resource's reviewed desensitization rules to it
and writes the masked result as the version's data (`data/{rid}/{n}.parquet`); a published
version's file never changes.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Select, and_, bindparam, event, func, select
from sqlalchemy.orm import Session, joinedload

from kaifang.accounts.models import OrgRole
from kaifang.accounts.permissions import SYSTEM, Actor, require_org_role
from kaifang.accounts.stamp import StampedCache, stamp_of
from kaifang.accounts.stamp import cache as stamped_cache
from kaifang.audit.service import record
from kaifang.audit.tags import Tag
from kaifang.catalog import service as catalog
from kaifang.catalog.models import Entry, EntryStatus, OpenType
from kaifang.datastore.infer import cast_table, infer_and_cast, infer_schema
from kaifang.datastore.models import Resource, ResourceKind, ResourceVersion, VersionStatus
from kaifang.datastore.query import ROW
from kaifang.datastore.reader import is_tabular, read_table
from kaifang.datastore.storage import FileStore
from kaifang.datastore.types import ARROW_TYPES, Column, ColumnType
from kaifang.datastore.validate import validate
from kaifang.db import MAX_ID, Database, utcnow
from kaifang.desensitize import service as desensitize
from kaifang.desensitize.detect import scan_table
from kaifang.desensitize.mask import Rule, apply_rules
from kaifang.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from kaifang.settings import Settings

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
    """A resource whose entry the actor may see in the catalog, with its versions and the entry's
    provider in the same query (resource pages and the resource API show them). Reading data
    starts at `readable_version`, which loads the one version it needs."""
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


def _readable(numbered: bool) -> Select[Resource, Entry, ResourceVersion]:
    """The resource, its entry and its newest published version, or the version numbered
    `:number` if published or under review (the provider's staff check those)."""
    on = [ResourceVersion.resource_id == Resource.id]
    if numbered:
        statuses = [VersionStatus.published, VersionStatus.review]
        on.append(ResourceVersion.number == bindparam("number"))
    else:
        statuses = [VersionStatus.published]
    return (
        select(Resource, Entry, ResourceVersion)
        .join(Entry, Entry.id == Resource.entry_id)
        .outerjoin(ResourceVersion, and_(*on, ResourceVersion.status.in_(statuses)))
        .where(Resource.id == bindparam("resource_id"))
        .order_by(ResourceVersion.number.desc())
        .limit(1)
    )


# Built once (SQLAlchemy keeps the compiled form of a statement object): every data call, download
# and chart starts here, and building the statement per call cost more than running it.
_NEWEST, _NUMBERED = _readable(False), _readable(True)


def readable_version(
    db: Session, actor: Actor, resource_id: int, number: int | None = None
) -> tuple[Resource, ResourceVersion, Entry]:
    """The published version (the newest, or `number`) the actor may read the data of.

    One query brings the resource, its entry and that one version (loading all of a resource's
    versions, with their schemas and reports, was a third of a small data call).
    """
    return _readable_for(actor, _find_readable(db, resource_id, number), number)


Found = tuple[Resource, Entry, ResourceVersion | None]
_kept: StampedCache[tuple[int, int | None], Found] = stamped_cache(4096)


def kept_readable_version(
    db: Session, actor: Actor, resource_id: int, number: int | None = None
) -> tuple[Resource, ResourceVersion, Entry]:
    """`readable_version` for the data API: the resource, entry and version are kept in memory
    while the auth stamp has not moved (`accounts/stamp.py`), so a call asked again reads no rows;
    the permission checks still run on every call. The objects are detached and shared between
    calls: read their columns, never their relationships, never change them."""
    stamp = stamp_of(db)
    found = _kept.get((resource_id, number), stamp)
    if found is None:
        found = _find_readable(db, resource_id, number)
        if found is not None:
            for row in found:
                if row is not None:
                    db.expunge(row)
            _kept.put((resource_id, number), stamp, found)
    return _readable_for(actor, found, number)


def _find_readable(db: Session, resource_id: int, number: int | None) -> Found | None:
    if not 0 < resource_id <= MAX_ID:
        return None
    if number is None:
        row = db.execute(_NEWEST, {"resource_id": resource_id}).first()
    else:
        row = db.execute(_NUMBERED, {"resource_id": resource_id, "number": number}).first()
    return None if row is None else (row[0], row[1], row[2])


def _readable_for(
    actor: Actor, found: Found | None, number: int | None
) -> tuple[Resource, ResourceVersion, Entry]:
    if found is None:
        raise NotFound("未找到该数据资源")
    resource, entry, version = found
    if not catalog.can_view(actor, entry):
        raise NotFound("未找到该数据目录，可能尚未发布或已下线")
    if not can_read_data(actor, entry):
        raise PermissionDenied(_refusal(entry))
    if version is None or (
        version.status != VersionStatus.published and not actor.is_member(entry.provider_id)
    ):
        raise NotFound("该数据资源还没有可获取的版本" if number is None else f"未找到第 {number} 版")
    return resource, version, entry


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
    _finish(
        database,
        version_id,
        {"status": VersionStatus.review, **outcome},
        Tag.data_version_processed,
        then=desensitize.propose_rules,
    )


def _finish(
    database: Database,
    version_id: int,
    values: dict[str, Any],
    tag: Tag,
    then: Callable[[Session, ResourceVersion], object] | None = None,
) -> None:
    with database.session() as db:
        version = db.get_one(ResourceVersion, version_id)
        for key, value in values.items():
            setattr(version, key, value)
        version.progress = 100
        if then is not None:
            then(db, version)
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
    findings = [desensitize.finding_to_dict(f) for f in scan_table(typed)]
    data_key = desensitize.staging_key(resource_id, number)  # unmasked: staging until published
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
        "report": {**report.to_dict(), "reading": reading, desensitize.REPORT_KEY: {"findings": findings}},
    }


DICTIONARY_SAMPLE = 65_536  # values looked at to decide whether a column's values repeat
PUBLISH_BATCH_ROWS = 1 << 20  # rows masked at a time: one row group of the written file


def _write_parquet(typed: pa.Table, out: Path) -> None:
    """The version's data file: `_row` (0..n-1) first, then the columns, zstd-compressed."""
    _write_parquet_parts(iter([typed]), out)


def _write_parquet_parts(parts: Iterator[pa.Table], out: Path) -> int:
    """`_write_parquet` for a table arriving in parts (bounded memory); returns the row count.

    `_row` is delta-encoded: a few bytes per row group, not megabytes. Dictionary encoding only
    where a column's values repeat (judged on the first part): for (nearly) unique ones pyarrow
    would build a dictionary, find it too large and start over as plain values in every row
    group, for nothing.
    """
    first = next(parts)
    schema = first.schema
    dictionary = [name for name in first.column_names if _repeats(first.column(name))]
    written = 0
    with pq.ParquetWriter(
        out,
        schema.insert(0, pa.field(ROW, pa.int64())),
        compression="zstd",
        use_dictionary=dictionary,
        column_encoding={ROW: "DELTA_BINARY_PACKED"},
    ) as writer:
        for part in _chain(first, parts):
            n = part.num_rows
            positions = pc.add(
                pc.subtract(pc.cumulative_sum(pa.nulls(n, pa.int64()).fill_null(1)), 1), written
            )
            writer.write_table(part.cast(schema).add_column(0, ROW, positions))
            written += n
    return written


def _chain(first: pa.Table, rest: Iterable[pa.Table]) -> Iterator[pa.Table]:
    yield first
    yield from rest


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
    db: Session,
    actor: Actor,
    resource_id: int,
    number: int,
    comment: str = "",
    *,
    store: FileStore,
    settings: Settings,
) -> ResourceVersion:
    """Publish a reviewed version: it becomes the resource's current data; earlier ones stay downloadable.

    Needs a passed 保密审查 and 安全风险评估 under the resource's current rules. A table is
    published masked: the rules are applied to the staging data and the result written as the
    version's data file before the version changes. Any failure leaves the version in review
    with nothing published; the staging data is deleted only once the publication is committed.
    """
    version, entry = _version_for_publisher(db, actor, resource_id, number)
    if version.status != VersionStatus.review:
        raise Conflict("只有处理完成、待发布的版本可以发布")
    if version.report.get("fatal"):
        raise Conflict("校验报告中有必须修正的问题，修正（或调整数据字典）后才能发布")
    rules, review = desensitize.publishable_rules(db, version)
    staged = [version.source_key]
    if version.resource.kind == ResourceKind.table:
        staging = version.data_key
        _publish_masked(store, version, rules, desensitize.provider_secret(settings, entry.provider_id))
        if staging != version.data_key:  # (a version read before staging existed had none)
            staged.append(staging)
        applied = {"rules": review.rules, "rules_sha256": review.rules_sha256, "review_id": review.id}
        scan = version.report.get(desensitize.REPORT_KEY, {})
        version.report = {**version.report, desensitize.REPORT_KEY: {**scan, **applied}}
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
        summary={
            "after": {
                "version": number,
                "rows": version.row_count,
                "sha256": version.sha256,
                "rules_sha256": review.rules_sha256,
                "review_id": review.id,
            }
        },
    )
    if not settings.desensitize_keep_staging:
        _delete_after_commit(db, store, [k for k in staged if k])
    return version


def _publish_masked(store: FileStore, version: ResourceVersion, rules: list[Rule], secret: bytes) -> None:
    """Write the masked data under the version's data key and describe it on the version.

    Record batches keep memory bounded whatever the size of the table. The file is in place
    before the row changes; if the transaction then fails, the version still points at its
    staging data and the unreferenced file is simply written again by the next attempt.
    """
    source = pq.ParquetFile(store.path(version.data_key))
    columns = [n for n in source.schema_arrow.names if n != ROW]

    def parts() -> Iterator[pa.Table]:
        batches = source.iter_batches(batch_size=PUBLISH_BATCH_ROWS, columns=columns)
        empty = True
        for batch in batches:
            empty = False
            yield apply_rules(pa.Table.from_batches([batch]), rules, secret)
        if empty:
            yield apply_rules(source.schema_arrow.empty_table().select(columns), rules, secret)

    data_key = f"data/{version.resource_id}/{version.number}.parquet"
    try:
        with tempfile.TemporaryDirectory(dir=store.path("tmp").parent) as tmp:
            out = Path(tmp) / "data.parquet"
            rows = _write_parquet_parts(parts(), out)
            written = pq.read_schema(out)
            size, digest = store.put_file(data_key, out)
    except (OSError, ValueError, pa.ArrowException) as exc:
        log.exception("masking version %s failed", version.id)
        raise Conflict(
            "按脱敏规则处理数据时出错，该版本未发布，仍为待发布状态；请检查脱敏规则后重试"
        ) from exc
    before = {c.name: c for c in schema_of(version)}
    version.schema = [_published_column(before[f.name], f.type).to_dict() for f in written if f.name != ROW]
    version.data_key, version.row_count, version.byte_size, version.sha256 = data_key, rows, size, digest


def _published_column(column: Column, arrow_type: pa.DataType) -> Column:
    """The dictionary entry of a column after masking: a masked ID is text, whatever it was."""
    if ARROW_TYPES[column.type] == arrow_type:
        return column
    kind = next((t for t, a in ARROW_TYPES.items() if a == arrow_type), ColumnType.text)
    return Column(column.name, kind, column.description, column.unit, column.source_name)


def _delete_after_commit(db: Session, store: FileStore, keys: list[str]) -> None:
    """Delete staging files once the publication is committed (never if it rolls back)."""

    def delete(_session: Session) -> None:
        for key in keys:
            store.delete(key)
            store.delete(str(Path(key).with_suffix(".profile.json")))  # a preview's profile sidecar
        event.remove(db, "after_rollback", forget)

    def forget(_session: Session) -> None:
        event.remove(db, "after_commit", delete)

    event.listen(db, "after_commit", delete, once=True)
    event.listen(db, "after_rollback", forget, once=True)


def discard_version(
    db: Session, actor: Actor, resource_id: int, number: int, *, store: FileStore, settings: Settings
) -> ResourceVersion:
    """Drop an unpublished version; its staging data (the upload, the unmasked table) goes with it."""
    version, _entry = _version_for_publisher(db, actor, resource_id, number)
    if version.status not in (VersionStatus.review, VersionStatus.failed):
        raise Conflict("只有未发布的版本可以放弃")
    version.status = VersionStatus.discarded
    record(
        db, actor, Tag.data_version_discarded, "resource", resource_id, summary={"after": {"version": number}}
    )
    if not settings.desensitize_keep_staging:
        staged = [k for k in (version.source_key, version.data_key) if k.startswith("staging/")]
        _delete_after_commit(db, store, staged)
    return version
