"""What an entry's public page shows of its data: each resource with its published versions,
data dictionary, and — when the visitor may read the data — a preview of the first rows, the
column profile (字段概况) and the chart panel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from kaifang.accounts.permissions import Actor
from kaifang.audit.service import DataAccess, record_access
from kaifang.audit.tags import Tag
from kaifang.catalog.models import Entry
from kaifang.datastore import service
from kaifang.datastore.chart import ChartForm, chart_form
from kaifang.datastore.engines import engine_for
from kaifang.datastore.models import Resource, ResourceKind, ResourceVersion, VersionStatus
from kaifang.datastore.profile import ColumnProfile, Profile, profile_of
from kaifang.datastore.query import DataQuery, QueryResult
from kaifang.datastore.storage import FileStore
from kaifang.datastore.types import COLUMN_TYPE_LABELS, Column, ColumnType

PREVIEW_ROWS = 10


@dataclass(frozen=True)
class ProfileRow:
    """One column of the 字段概况 table, as the page prints it."""

    name: str
    type_label: str
    nulls: str
    distinct: str
    low: str  # the smallest value, or the shortest text's length
    high: str
    mean: str
    top: list[tuple[str, str]]  # (value, "count（share）"), most common first
    unique: bool


@dataclass
class ResourcePanel:
    resource: Resource
    version: ResourceVersion  # the newest published version
    versions: list[ResourceVersion]  # every published version, newest first
    columns: list[Column]
    preview: QueryResult | None  # None when the visitor may not read the data, or for files
    profile: list[ProfileRow] | None = None  # the same rule as the preview
    chart: ChartForm | None = None


def _number(value: Any) -> str:
    """12,345 for whole numbers; at most four decimals, trailing zeros dropped, for the rest."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def _share(count: int, rows: int) -> str:
    return f"{count / rows:.1%}" if rows else "0%"


def _value(value: Any, kind: ColumnType) -> str:
    if value is None:
        return ""
    if kind is ColumnType.boolean:
        return "是" if value else "否"
    if kind in (ColumnType.integer, ColumnType.decimal):
        return _number(value)
    return str(value).replace("T", " ")  # ISO datetimes read better with a space


def _range(figure: ColumnProfile) -> tuple[str, str]:
    if figure.type is ColumnType.text:
        if figure.min_length is None:
            return "", ""
        return f"{figure.min_length} 字", f"{figure.max_length} 字"
    return _value(figure.min, figure.type), _value(figure.max, figure.type)


def profile_rows(profile: Profile) -> list[ProfileRow]:
    """The profile's figures as text: counts with thousands separators, shares as percentages."""
    rows = []
    for figure in profile.columns:
        low, high = _range(figure)
        nulls = _number(figure.nulls) + (f"（{_share(figure.nulls, profile.rows)}）" if figure.nulls else "")
        rows.append(
            ProfileRow(
                name=figure.name,
                type_label=COLUMN_TYPE_LABELS[figure.type],
                nulls=nulls,
                distinct=_number(figure.distinct),
                low=low,
                high=high,
                mean=_number(round(figure.mean, 2)) if figure.mean is not None else "",
                top=[
                    (_value(t.value, figure.type), f"{_number(t.count)}（{_share(t.count, profile.rows)}）")
                    for t in figure.top
                ],
                unique=figure.unique,
            )
        )
    return rows


def _panel(
    entry: Entry, resource: Resource, published: list[ResourceVersion], readable: bool, store: FileStore
) -> ResourcePanel:
    newest = published[-1]
    columns = service.schema_of(newest)
    panel = ResourcePanel(resource, newest, list(reversed(published)), columns, None)
    if readable and resource.kind == ResourceKind.table:
        panel.preview = engine_for(store, newest).run(DataQuery(limit=PREVIEW_ROWS))
        profile = profile_of(store, newest)
        panel.profile = profile_rows(profile)
        panel.chart = chart_form(entry.id, resource, columns, profile)
    return panel


def resource_panels(db: Session, actor: Actor, entry: Entry, store: FileStore) -> list[ResourcePanel]:
    """The entry's published resources; preview, profile and chart only for visitors the open type
    lets read the data (有条件开放 and 不予开放 show the data dictionary alone)."""
    readable = service.can_read_data(actor, entry)
    panels = []
    for resource in service.entry_resources(db, actor, entry):
        published = [v for v in resource.versions if v.status == VersionStatus.published]
        if published:
            panel = _panel(entry, resource, published, readable, store)
            if panel.preview is not None:  # the first rows were shown: a data access (Art. 18)
                access = DataAccess(
                    entry.id,
                    resource.id,
                    panel.version.id,
                    "preview",
                    len(panel.preview.records),
                    grant_id=actor.grants.get(entry.id),
                )
                record_access(db, actor, Tag.data_access_preview, access)
            panels.append(panel)
    return panels
