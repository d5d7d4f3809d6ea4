"""单位工作台: provider staff compile their catalog entries and walk them through confirmation
(Art. 14, 15). Members and the staff list (Art. 30) are in kaifang.accounts.org_views.

The rules live in the services; these views read forms, call a service function and render.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from kaifang.accounts import orgs
from kaifang.accounts.models import Organisation, OrgRole
from kaifang.accounts.permissions import Actor, require, require_login, require_org_role
from kaifang.catalog import service
from kaifang.catalog.display import entry_actions, history_rows, pending_changes
from kaifang.catalog.models import (
    ACCESS_METHOD_LABELS,
    CATALOG_FIELDS,
    FORMATS,
    FREQUENCY_LABELS,
    OPEN_TYPE_HELP,
    OPEN_TYPE_LABELS,
    Entry,
    EntryStatus,
    OpenType,
)
from kaifang.datastore import service as datastore
from kaifang.db import MAX_ID
from kaifang.errors import Conflict, InvalidInput, PermissionDenied, ServiceError
from kaifang.web.forms import form_text
from kaifang.web.security import DB, CurrentActor, RowId
from kaifang.web.templating import redirect, render, settings_of

router = APIRouter(include_in_schema=False)

OrgQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]

# --- forms ----------------------------------------------------------------------------------------


def entry_form_data(form: FormData) -> dict[str, Any]:
    """The posted entry form as service field values; unchecked boxes mean an empty list."""
    data: dict[str, Any] = {}
    for key in CATALOG_FIELDS:
        if key in ("access_methods", "formats"):
            data[key] = [v for v in form.getlist(key) if isinstance(v, str)][:20]
        else:
            data[key] = form_text(form, key, 20_000)
    return data


def form_values(fields: dict[str, Any]) -> dict[str, Any]:
    """Field values as the form shows them: keywords joined, dates as YYYY-MM-DD."""
    values: dict[str, Any] = {}
    for key in CATALOG_FIELDS:
        v = fields.get(key)
        if key in ("access_methods", "formats"):
            values[key] = list(v or [])
        elif key == "keywords" and isinstance(v, list):
            values[key] = "，".join(v)
        elif isinstance(v, date):
            values[key] = v.isoformat()
        else:
            values[key] = "" if v is None else str(v)
    return values


def _choices(db: Session, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The form's options; a term deactivated since the entry used it stays offered, marked so."""

    def terms(kind: str, field: str, with_code: bool) -> list[tuple[str, str]]:
        options = [
            (t.code, f"{t.code} {t.name}" if with_code else t.name) for t in service.list_terms(db, kind)
        ]
        code = (current or {}).get(field)
        if code and code not in {value for value, _label in options}:
            name = service.term_names(db).get((kind, code), code)
            options.append((code, f"{name}（已停用）"))
        return options

    return {
        "themes": terms("theme", "theme", False),
        "industries": terms("industry", "industry", True),
        "grades": terms("grade", "grade", False),
        "frequencies": list(FREQUENCY_LABELS.items()),
        "access_methods": list(ACCESS_METHOD_LABELS.items()),
        "formats": [(f, f) for f in FORMATS],
        "open_types": [(str(t), OPEN_TYPE_LABELS[t], OPEN_TYPE_HELP[t]) for t in OpenType],
    }


# --- the workspace home ---------------------------------------------------------------------------


def _selected_org(my_orgs: list[Organisation], org_id: int | None) -> Organisation:
    for org in my_orgs:
        if org_id in (None, org.id):
            return org
    raise PermissionDenied("您不是该单位的工作人员")


def _status_counts(entries: list[Entry]) -> dict[str, int]:
    """Entries per state, counted as the status filter finds them (live state or pending change)."""
    counts = {str(s): sum(1 for e in entries if s in (e.status, e.pending_status)) for s in EntryStatus}
    counts["changes"] = sum(1 for e in entries if e.pending)
    return counts


@router.get("/workspace")
def workspace(
    request: Request,
    db: DB,
    actor: CurrentActor,
    org: OrgQuery = None,
    status: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The organisation's catalog in every state, with counts and a status filter."""
    require_login(actor)
    require(actor.is_provider_staff, "单位工作台仅限资源提供单位的工作人员使用")
    my_orgs = orgs.my_orgs(db, actor)
    selected = _selected_org(my_orgs, org)
    everything = service.provider_entries(db, actor, selected.id)
    status = status if status in set(EntryStatus) else ""
    entries = service.provider_entries(db, actor, selected.id, status) if status else everything
    roles = actor.org_roles.get(selected.id, frozenset())
    context = {
        "orgs": my_orgs,
        "org": selected,
        "roles": sorted(roles),
        "is_publisher": OrgRole.publisher in roles,
        "is_admin": OrgRole.admin in roles,
        "entries": entries,
        "counts": _status_counts(everything),
        "total": len(everything),
        "status": status,
    }
    return render(request, "workspace/index.html", context)


# --- creating and editing an entry ------------------------------------------------------------------


def _publisher_org(db: Session, actor: Actor, org_id: int | None) -> Organisation:
    """The organisation a new entry is for: the one asked for, or the actor's only publishing one."""
    require_login(actor)
    if org_id is None:
        mine = actor.orgs_with_role(OrgRole.publisher)
        require(len(mine) == 1, "请从单位工作台选择要新建目录的单位")
        org_id = mine[0]
    require_org_role(actor, org_id, OrgRole.publisher)
    org = orgs.get_org(db, org_id)
    require(org.is_active, "该单位已停用，不能新建目录")
    return org


def _new_defaults(org: Organisation) -> dict[str, Any]:
    fields: dict[str, Any] = dict.fromkeys(CATALOG_FIELDS, "")
    fields.update(
        open_type=OpenType.unconditional,
        contact_phone=org.contact_phone,
        contact_email=org.contact_email,
        access_methods=[],
        formats=[],
    )
    return fields


def _render_new(
    request: Request,
    db: Session,
    org: Organisation,
    values: dict[str, Any],
    error: ServiceError | None = None,
) -> Response:
    context: dict[str, Any] = {
        "entry": None,
        "org": org,
        "values": values,
        "errors": error.fields if error else {},
        "error_message": error.message if error else "",
        "action_errors": {},
        "actions": None,
        "changes": [],
        "history": [],
        "choices": _choices(db),
        "form_action": f"/workspace/entries/new?org={org.id}",
    }
    return render(request, "workspace/entry_form.html", context, status=422 if error else 200)


@router.get("/workspace/entries/new")
def new_entry(request: Request, db: DB, actor: CurrentActor, org: OrgQuery = None) -> Response:
    """The empty entry form for one of the actor's publishing organisations."""
    selected = _publisher_org(db, actor, org)
    return _render_new(request, db, selected, form_values(_new_defaults(selected)))


@router.post("/workspace/entries/new")
async def create_entry(request: Request, db: DB, actor: CurrentActor, org: OrgQuery = None) -> Response:
    """Save a new draft; only the title is needed now, the rest before submission."""
    selected = _publisher_org(db, actor, org)
    data = entry_form_data(await request.form())
    try:
        entry = service.create_entry(db, actor, selected.id, data)
    except InvalidInput as exc:
        db.rollback()
        return _render_new(request, db, selected, form_values(data), exc)
    message = "目录草稿已保存。信息填写完整后，请点击“提交确认”。"
    return redirect(f"/workspace/entries/{entry.id}", settings_of(request), message)


def _render_edit(
    request: Request,
    db: Session,
    actor: Actor,
    entry: Entry,
    *,
    values: dict[str, Any] | None = None,
    error: ServiceError | None = None,
    failed: str = "",
) -> Response:
    """The entry page: state, workflow buttons, the form (read-only when it cannot be edited), history."""
    names = service.term_names(db)
    history = history_rows(service.entry_history(db, actor, entry.id), names)
    on_form = error is not None and failed in ("", "submit")
    action_errors = {failed: error.fields.get("reason") or error.message} if error and not on_form else {}
    context = {
        "entry": entry,
        "org": entry.provider,
        "values": values or form_values(service.proposed_fields(entry)),
        "errors": error.fields if error and on_form else {},
        "error_message": error.message if error and on_form else "",
        "action_errors": action_errors,
        "actions": entry_actions(actor, entry),
        "changes": pending_changes(entry, names),
        "history": history,
        "choices": _choices(db, service.proposed_fields(entry)),
        "form_action": f"/workspace/entries/{entry.id}",
        "resources": datastore.entry_resources(db, actor, entry),
        "can_upload": datastore.can_upload(actor, entry),
    }
    return render(request, "workspace/entry_form.html", context, status=error.status if error else 200)


@router.get("/workspace/entries/{entry_id}")
def entry_page(request: Request, db: DB, actor: CurrentActor, entry_id: RowId) -> Response:
    """An entry of the actor's organisation; supervisors may look at it too."""
    require_login(actor)
    entry = service.get_entry(db, actor, entry_id)
    return _render_edit(request, db, actor, entry)


@router.post("/workspace/entries/{entry_id}")
async def save_entry(request: Request, db: DB, actor: CurrentActor, entry_id: RowId) -> Response:
    """Save the form; for a published entry the edit becomes a pending change."""
    data = entry_form_data(await request.form())
    url = f"/workspace/entries/{entry_id}"
    try:
        entry = service.edit_entry(db, actor, entry_id, data)
    except InvalidInput as exc:
        db.rollback()
        entry = service.get_entry(db, actor, entry_id)
        return _render_edit(request, db, actor, entry, values=form_values(data), error=exc)
    except Conflict as exc:
        db.rollback()
        return redirect(url, settings_of(request), exc.message, "error")
    message = "已保存"
    if entry.status == EntryStatus.published:
        message = "修改已保存。修改经提交确认并发布后才对公众生效，在此之前公众看到的仍是已发布的版本。"
    return redirect(url, settings_of(request), message)


def _discard(db: Session, actor: Actor, entry_id: int, _comment: str) -> Entry:
    return service.discard_change(db, actor, entry_id)


WORKFLOW: dict[str, tuple[Callable[[Session, Actor, int, str], Entry], str]] = {
    "submit": (service.submit_entry, "已提交主管部门确认，确认结果会显示在本页。"),
    "publish": (service.publish_entry, "已发布，公众现在可以看到这条目录。"),
    "retire": (service.retire_entry, "目录已下线，不再对公众显示。"),
    "discard": (_discard, "已撤销未发布的修改，目录恢复为已发布的内容。"),
}


async def _workflow(request: Request, db: Session, actor: Actor, entry_id: int, action: str) -> Response:
    form = await request.form()
    text = form_text(form, "reason" if action == "retire" else "comment")
    func, done = WORKFLOW[action]
    url = f"/workspace/entries/{entry_id}"
    try:
        func(db, actor, entry_id, text)
    except InvalidInput as exc:
        db.rollback()
        entry = service.get_entry(db, actor, entry_id)
        return _render_edit(request, db, actor, entry, error=exc, failed=action)
    except Conflict as exc:
        db.rollback()
        return redirect(url, settings_of(request), exc.message, "error")
    return redirect(url, settings_of(request), done)


@router.post("/workspace/entries/{entry_id}/submit")
async def submit_entry(request: Request, db: DB, actor: CurrentActor, entry_id: RowId) -> Response:
    """Send the entry (or its pending change) to the regulator for confirmation."""
    return await _workflow(request, db, actor, entry_id, "submit")


@router.post("/workspace/entries/{entry_id}/publish")
async def publish_entry(request: Request, db: DB, actor: CurrentActor, entry_id: RowId) -> Response:
    """Publish a confirmed entry, or put a confirmed change live."""
    return await _workflow(request, db, actor, entry_id, "publish")


@router.post("/workspace/entries/{entry_id}/retire")
async def retire_entry(request: Request, db: DB, actor: CurrentActor, entry_id: RowId) -> Response:
    """Take a published entry off the open catalog; a reason is required."""
    return await _workflow(request, db, actor, entry_id, "retire")


@router.post("/workspace/entries/{entry_id}/discard")
async def discard_change(request: Request, db: DB, actor: CurrentActor, entry_id: RowId) -> Response:
    """Drop a pending change to a published entry."""
    return await _workflow(request, db, actor, entry_id, "discard")
