"""单位工作台: provider staff compile their catalog entries and walk them through confirmation
(Art. 14, 15), and keep their members and staff list (Art. 30).

The rules live in the services; these views read forms, call a service function and render.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from itertools import zip_longest
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from kaifang.accounts import orgs
from kaifang.accounts.models import Organisation, OrgRole
from kaifang.accounts.permissions import Actor, require, require_login, require_org_role
from kaifang.audit.models import AuditRecord
from kaifang.audit.tags import Tag
from kaifang.catalog import service
from kaifang.catalog.models import (
    ACCESS_METHOD_LABELS,
    CATALOG_FIELDS,
    FORMATS,
    FREQUENCY_LABELS,
    OPEN_TYPE_HELP,
    OPEN_TYPE_LABELS,
    STATUS_LABELS,
    Entry,
    EntryStatus,
    OpenType,
)
from kaifang.db import MAX_ID
from kaifang.errors import Conflict, InvalidInput, PermissionDenied, ServiceError
from kaifang.settings import Settings
from kaifang.web.security import DB, CurrentActor, RowId
from kaifang.web.templating import redirect, render

router = APIRouter(include_in_schema=False)

OrgQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
MAX_TEXT = 2000
MAX_STAFF_ROWS = 100
EMPTY_STAFF_ROWS = 3
STAFF_KEYS = ("name", "position", "phone", "email", "duty")

FIELD_LABELS = {
    "title": "数据集名称",
    "summary": "摘要",
    "keywords": "关键词",
    "theme": "主题分类",
    "industry": "行业分类",
    "grade": "数据分级",
    "open_type": "开放类型",
    "open_conditions": "开放条件",
    "usage_requirements": "使用要求",
    "update_frequency": "更新频率",
    "access_methods": "开放方式",
    "formats": "数据格式",
    "contact_name": "联系人",
    "contact_phone": "联系电话",
    "contact_email": "联系邮箱",
    "spatial_coverage": "空间范围",
    "temporal_start": "时间范围起",
    "temporal_end": "时间范围止",
    "terms_of_use": "使用条款",
    "closed_reason": "不予开放理由",
    "closed_legal_basis": "法律依据",
    "next_review_date": "下次评估审查日期",
    "status": "状态",
    "pending_status": "变更状态",
}

ACTION_LABELS: dict[str, str] = {
    Tag.catalog_entry_created: "新建",
    Tag.catalog_entry_edited: "修改",
    Tag.catalog_entry_submitted: "提交确认",
    Tag.catalog_entry_confirmed: "确认",
    Tag.catalog_entry_returned: "退回",
    Tag.catalog_entry_published: "发布",
    Tag.catalog_entry_retired: "下线",
}


# --- showing field values and changes -----------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    """One changed field, its values already in words."""

    field: str
    label: str
    before: str
    after: str


@dataclass(frozen=True)
class HistoryRow:
    at: datetime
    actor: str
    action: str
    comment: str
    changes: list[FieldChange]


Names = dict[tuple[str, str], str]


def display_value(key: str, value: Any, names: Names) -> str:
    """A catalog field's value as a person reads it: names for codes, 、 between list items."""
    if value in (None, "", []):
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list | tuple):
        labels = ACCESS_METHOD_LABELS if key == "access_methods" else {}
        return "、".join(labels.get(str(v), str(v)) for v in value)
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    if key in ("theme", "industry", "grade"):
        return names.get((key, text), text)
    vocab: dict[str, Any] = {
        "open_type": OPEN_TYPE_LABELS,
        "update_frequency": FREQUENCY_LABELS,
        "status": STATUS_LABELS,
        "pending_status": STATUS_LABELS,
    }
    return str(vocab.get(key, {}).get(text, text))


def _ordered_keys(keys: set[str]) -> list[str]:
    order = {k: i for i, k in enumerate(FIELD_LABELS)}
    return sorted(keys, key=lambda k: (order.get(k, len(order)), k))


def summary_changes(summary: dict[str, Any] | None, names: Names) -> list[FieldChange]:
    """The before/after summary of an audit record, field by field, in the form's order."""
    before = (summary or {}).get("before") or {}
    after = (summary or {}).get("after") or {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    return [
        FieldChange(
            k,
            FIELD_LABELS.get(k, k),
            display_value(k, before.get(k), names),
            display_value(k, after.get(k), names),
        )
        for k in _ordered_keys(set(before) | set(after))
    ]


def pending_changes(entry: Entry, names: Names) -> list[FieldChange]:
    """What a pending change to a published entry would change, live value against proposed value."""
    if not entry.pending:
        return []
    proposed = service.proposed_fields(entry)
    return [
        FieldChange(
            k,
            FIELD_LABELS[k],
            display_value(k, getattr(entry, k), names),
            display_value(k, proposed[k], names),
        )
        for k in CATALOG_FIELDS
        if k in entry.pending
    ]


def entry_details(fields: dict[str, Any], names: Names) -> list[tuple[str, str]]:
    """Every filled-in catalog field as (label, value in words)."""
    shown = ((FIELD_LABELS[k], display_value(k, fields.get(k), names)) for k in CATALOG_FIELDS)
    return [(label, value) for label, value in shown if value]


def history_rows(records: list[AuditRecord], names: Names) -> list[HistoryRow]:
    return [
        HistoryRow(
            r.at,
            r.actor_name,
            ACTION_LABELS.get(r.action, r.action),
            r.comment,
            summary_changes(r.summary, names),
        )
        for r in records
    ]


# --- what the actor may do with an entry now ----------------------------------------------------


@dataclass(frozen=True)
class EntryActions:
    """Which workflow buttons to show. The service checks every action again when it is posted."""

    can_edit: bool
    submit: bool
    publish: bool
    retire: bool
    discard: bool
    waiting: bool


def entry_actions(actor: Actor, entry: Entry) -> EntryActions:
    publisher = actor.has_org_role(entry.provider_id, OrgRole.publisher)
    waiting = EntryStatus.submitted in (entry.status, entry.pending_status)
    published = entry.status == EntryStatus.published
    change = published and bool(entry.pending)
    open_states = (EntryStatus.draft, EntryStatus.returned)
    ready = entry.status in open_states or (change and entry.pending_status in open_states)
    confirmed = EntryStatus.confirmed in (entry.status, entry.pending_status if change else None)
    return EntryActions(
        can_edit=publisher and not waiting and entry.status != EntryStatus.retired,
        submit=publisher and ready,
        publish=publisher and confirmed,
        retire=publisher and published,
        discard=publisher and change and not waiting,
        waiting=waiting,
    )


# --- forms ----------------------------------------------------------------------------------------


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.kf.settings
    return settings


def form_text(form: FormData, key: str, limit: int = MAX_TEXT) -> str:
    """One text field of a posted form; absent or a file counts as empty."""
    value = form.get(key)
    return value[:limit] if isinstance(value, str) else ""


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


def _choices(db: Session) -> dict[str, Any]:
    def terms(kind: str, with_code: bool) -> list[tuple[str, str]]:
        return [(t.code, f"{t.code} {t.name}" if with_code else t.name) for t in service.list_terms(db, kind)]

    return {
        "themes": terms("theme", False),
        "industries": terms("industry", True),
        "grades": terms("grade", False),
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
    return redirect(f"/workspace/entries/{entry.id}", _settings(request), message)


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
        "choices": _choices(db),
        "form_action": f"/workspace/entries/{entry.id}",
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
        return redirect(url, _settings(request), exc.message, "error")
    message = "已保存"
    if entry.status == EntryStatus.published:
        message = "修改已保存。修改经提交确认并发布后才对公众生效，在此之前公众看到的仍是已发布的版本。"
    return redirect(url, _settings(request), message)


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
        return redirect(url, _settings(request), exc.message, "error")
    return redirect(url, _settings(request), done)


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


# --- members (organisation admin) ------------------------------------------------------------------


def _render_members(
    request: Request,
    db: Session,
    actor: Actor,
    org_id: int,
    values: dict[str, str] | None = None,
    error: ServiceError | None = None,
) -> Response:
    members = orgs.org_members(db, actor, org_id)
    context = {
        "org": orgs.get_org(db, org_id),
        "members": members,
        "can_manage": actor.is_operator or actor.has_org_role(org_id, OrgRole.admin),
        "values": values or {"username": "", "role": ""},
        "errors": error.fields if error else {},
        "error_message": error.message if error else "",
    }
    return render(request, "workspace/members.html", context, status=error.status if error else 200)


@router.get("/workspace/org/{org_id}/members")
def members_page(request: Request, db: DB, actor: CurrentActor, org_id: RowId) -> Response:
    """The organisation's members and their roles; the admin (or the operator) adds and removes them."""
    return _render_members(request, db, actor, org_id)


@router.post("/workspace/org/{org_id}/members")
async def add_member(request: Request, db: DB, actor: CurrentActor, org_id: RowId) -> Response:
    """Give a registered user a role in the organisation."""
    form = await request.form()
    values = {"username": form_text(form, "username", 64), "role": form_text(form, "role", 20)}
    try:
        member = orgs.add_member(db, actor, org_id, values["username"], values["role"])
    except (InvalidInput, Conflict) as exc:
        db.rollback()
        return _render_members(request, db, actor, org_id, values, exc)
    message = f"已将 {member.user.display_name}（{member.user.username}）添加为本单位成员"
    return redirect(f"/workspace/org/{org_id}/members", _settings(request), message)


@router.post("/workspace/org/{org_id}/members/{membership_id}/remove")
def remove_member(
    request: Request, db: DB, actor: CurrentActor, org_id: RowId, membership_id: RowId
) -> Response:
    """Take one role away from a member."""
    url = f"/workspace/org/{org_id}/members"
    try:
        orgs.remove_member(db, actor, org_id, membership_id)
    except Conflict as exc:
        db.rollback()
        return redirect(url, _settings(request), exc.message, "error")
    return redirect(url, _settings(request), "已移除该成员的岗位")


# --- staff list (Art. 30) ----------------------------------------------------------------------------


def staff_rows(form: FormData) -> list[dict[str, str]]:
    """The posted staff table, one dict per row; columns are zipped by position."""
    columns = [[v if isinstance(v, str) else "" for v in form.getlist(f"staff_{k}")] for k in STAFF_KEYS]
    rows = zip_longest(*(c[:MAX_STAFF_ROWS] for c in columns), fillvalue="")
    return [{k: v[:200] for k, v in zip(STAFF_KEYS, row, strict=True)} for row in rows]


def _render_staff(
    request: Request,
    actor: Actor,
    org: Organisation,
    office: str,
    rows: list[dict[str, str]],
    error: ServiceError | None = None,
) -> Response:
    filled = [r for r in rows if any(v.strip() for v in r.values())]
    context = {
        "org": org,
        "office": office,
        "rows": filled + [dict.fromkeys(STAFF_KEYS, "") for _ in range(EMPTY_STAFF_ROWS)],
        "filled": filled,
        "can_edit": actor.has_org_role(org.id, OrgRole.admin),
        "errors": error.fields if error else {},
        "error_message": error.message if error else "",
    }
    return render(request, "workspace/staff.html", context, status=error.status if error else 200)


@router.get("/workspace/org/{org_id}/staff")
def staff_page(request: Request, db: DB, actor: CurrentActor, org_id: RowId) -> Response:
    """The responsible office and the staff list the organisation reports (专人专岗)."""
    org = orgs.org_staff(db, actor, org_id)
    rows = [{k: getattr(s, k) or "" for k in STAFF_KEYS} for s in org.staff]
    return _render_staff(request, actor, org, org.responsible_office, rows)


@router.post("/workspace/org/{org_id}/staff")
async def save_staff(request: Request, db: DB, actor: CurrentActor, org_id: RowId) -> Response:
    """Replace the staff list as a whole; empty rows are dropped."""
    form = await request.form()
    office, rows = form_text(form, "responsible_office", 200), staff_rows(form)
    try:
        orgs.update_staff(db, actor, org_id, orgs.StaffForm(office, rows))
    except InvalidInput as exc:
        db.rollback()
        return _render_staff(request, actor, orgs.org_staff(db, actor, org_id), office, rows, exc)
    return redirect(f"/workspace/org/{org_id}/staff", _settings(request), "人员名单已报送")
