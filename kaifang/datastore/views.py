"""Workspace pages for data: upload, watch the reading, correct the data dictionary, publish."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from kaifang.accounts.permissions import Actor, require, require_login
from kaifang.datastore import service
from kaifang.datastore.types import ColumnType
from kaifang.datastore.upload import receive_resource, receive_version, schedule
from kaifang.errors import ServiceError
from kaifang.web.forms import form_text
from kaifang.web.security import DB, CurrentActor, RowId
from kaifang.web.templating import redirect, render

router = APIRouter(include_in_schema=False)


def _page(
    request: Request,
    db: Session,
    actor: Actor,
    resource_id: int,
    *,
    error: ServiceError | None = None,
    partial: bool = False,
) -> Response:
    require_login(actor)
    resource, entry = service.get_resource(db, actor, resource_id)
    require(actor.is_member(entry.provider_id), "仅提供单位人员可管理数据资源")
    versions = list(resource.versions)
    context = {
        "resource": resource,
        "entry": entry,
        "versions": versions,
        "current": versions[-1] if versions else None,
        "can_upload": service.can_upload(actor, entry),
        "column_types": [(str(t), t) for t in ColumnType],
        "errors": error.fields if error else {},
        "error_message": error.message if error else "",
    }
    template = "workspace/_version_status.html" if partial else "workspace/resource.html"
    return render(request, template, context, status=error.status if error else 200)


@router.post("/workspace/entries/{entry_id}/resources")
async def upload_resource(request: Request, entry_id: RowId, db: DB, actor: CurrentActor) -> Response:
    """Stage the file, create the resource and its first version, read it in the background."""
    require_login(actor)
    resource, _version = await receive_resource(request, db, actor, entry_id)
    settings = request.app.state.kf.settings
    return redirect(f"/workspace/resources/{resource.id}", settings, "已上传，正在读取文件", "info")


@router.get("/workspace/resources/{resource_id}")
def resource_page(request: Request, resource_id: RowId, db: DB, actor: CurrentActor) -> Response:
    """The resource's versions; the newest with its reading details, report and data dictionary."""
    return _page(request, db, actor, resource_id)


@router.get("/workspace/resources/{resource_id}/status")
def resource_status(request: Request, resource_id: RowId, db: DB, actor: CurrentActor) -> Response:
    """The newest version's state, polled by the page while the file is being read."""
    return _page(request, db, actor, resource_id, partial=True)


@router.post("/workspace/resources/{resource_id}/versions")
async def upload_version(request: Request, resource_id: RowId, db: DB, actor: CurrentActor) -> Response:
    require_login(actor)
    version = await receive_version(request, db, actor, resource_id)
    settings = request.app.state.kf.settings
    return redirect(
        f"/workspace/resources/{resource_id}", settings, f"已上传第 {version.number} 版，正在读取", "info"
    )


@router.post("/workspace/resources/{resource_id}/versions/{number}/schema")
async def save_schema(
    request: Request, resource_id: RowId, number: RowId, db: DB, actor: CurrentActor
) -> Response:
    """The data dictionary form: one row of name/type/description/unit per column."""
    form = await request.form()
    count = min(int(form_text(form, "count", 10) or 0), 1000)
    columns = [
        {key: form_text(form, f"{key}_{i}", 500) for key in ("name", "type", "description", "unit")}
        for i in range(count)
    ]
    try:
        version = service.update_schema(db, actor, resource_id, number, columns)
    except ServiceError as exc:
        db.rollback()
        return _page(request, db, actor, resource_id, error=exc)
    db.commit()
    schedule(request, version)
    settings = request.app.state.kf.settings
    return redirect(
        f"/workspace/resources/{resource_id}", settings, "数据字典已保存，正在按新的数据字典重新读取"
    )


@router.post("/workspace/resources/{resource_id}/versions/{number}/publish")
async def publish_version(
    request: Request, resource_id: RowId, number: RowId, db: DB, actor: CurrentActor
) -> Response:
    form = await request.form()
    kf = request.app.state.kf
    settings = kf.settings
    try:
        service.publish_version(
            db, actor, resource_id, number, form_text(form, "comment"), store=kf.store, settings=settings
        )
    except ServiceError as exc:
        db.rollback()
        return redirect(f"/workspace/resources/{resource_id}", settings, exc.message, "error")
    return redirect(f"/workspace/resources/{resource_id}", settings, f"第 {number} 版已发布")


@router.post("/workspace/resources/{resource_id}/versions/{number}/discard")
def discard_version(
    request: Request, resource_id: RowId, number: RowId, db: DB, actor: CurrentActor
) -> Response:
    kf = request.app.state.kf
    settings = kf.settings
    try:
        service.discard_version(db, actor, resource_id, number, store=kf.store, settings=settings)
    except ServiceError as exc:
        db.rollback()
        return redirect(f"/workspace/resources/{resource_id}", settings, exc.message, "error")
    return redirect(f"/workspace/resources/{resource_id}", settings, f"已放弃第 {number} 版")
