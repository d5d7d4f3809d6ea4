"""What an entry's public page shows of its data: each resource with its published versions,
data dictionary and a preview of the first rows, when the visitor may read them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from kaifang.accounts.permissions import Actor
from kaifang.catalog.models import Entry
from kaifang.datastore import service
from kaifang.datastore.engines import engine_for
from kaifang.datastore.models import Resource, ResourceKind, ResourceVersion, VersionStatus
from kaifang.datastore.query import DataQuery, QueryResult
from kaifang.datastore.storage import FileStore
from kaifang.datastore.types import Column

PREVIEW_ROWS = 10


@dataclass
class ResourcePanel:
    resource: Resource
    version: ResourceVersion  # the newest published version
    versions: list[ResourceVersion]  # every published version, newest first
    columns: list[Column]
    preview: QueryResult | None  # None when the visitor may not read the data, or for files


def resource_panels(db: Session, actor: Actor, entry: Entry, store: FileStore) -> list[ResourcePanel]:
    """The entry's published resources; previews only for visitors the open type lets read."""
    readable = service.can_read_data(actor, entry)
    panels = []
    for resource in service.entry_resources(db, actor, entry):
        published = [v for v in resource.versions if v.status == VersionStatus.published]
        if not published:
            continue
        newest = published[-1]
        preview = None
        if readable and resource.kind == ResourceKind.table:
            preview = engine_for(store, newest).run(DataQuery(limit=PREVIEW_ROWS))
        panels.append(
            ResourcePanel(resource, newest, list(reversed(published)), service.schema_of(newest), preview)
        )
    return panels
