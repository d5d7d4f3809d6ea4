"""管理后台: the regulator's confirmation queue and taxonomies (Art. 9, 14), the operator's users and
organisations, and every entry's workflow history for both.

Rules live in the services; these views read forms, call a service function and render.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from kaifang.accounts import orgs
from kaifang.accounts.models import Organisation, User
from kaifang.accounts.permissions import Actor, require, require_login, require_operator
from kaifang.audit.tags import Tag
from kaifang.catalog import service
from kaifang.catalog.display import FieldChange, entry_details, history_rows, pending_changes
from kaifang.catalog.models import Entry, EntryStatus, TaxonomyKind
from kaifang.catalog.workspace_views import OrgQuery
from kaifang.desensitize.service import ReviewSummary, entry_reviews
from kaifang.errors import Conflict, InvalidInput, ServiceError
from kaifang.web.forms import form_text
from kaifang.web.security import DB, CurrentActor, RowId
from kaifang.web.templating import redirect, render, settings_of

router = APIRouter(include_in_schema=False)

StatusQuery = Annotated[str, Query(max_length=20)]
SORT_RANGE = range(-99_999, 100_000)
ENTRY_LIMIT = 100  # entries per page of /admin/entries


def _supervisor(actor: Actor) -> None:
    require_login(actor)
    require(actor.is_supervisor, "管理后台仅限市互联网信息主管部门和市大数据管理中心使用")


def _failed(error: ServiceError | None) -> dict[str, Any]:
    """The error part of a form page's context."""
    return {"errors": error.fields if error else {}, "error_message": error.message if error else ""}


# --- dashboard ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    by_status: dict[str, int]
    entries: int
    waiting_new: int
    waiting_changes: int
    users: int
    active_users: int
    organisations: int


def _dashboard(db: Session, actor: Actor) -> Dashboard:
    by_status, changes = service.entry_counts(db, actor)
    accounts = orgs.account_counts(db, actor)
    return Dashboard(
        by_status=by_status,
        entries=sum(by_status.values()),
        waiting_new=by_status.get(EntryStatus.submitted, 0),
        waiting_changes=changes,
        users=accounts["users"],
        active_users=accounts["active_users"],
        organisations=accounts["organisations"],
    )


@router.get("/admin")
def admin_home(request: Request, db: DB, actor: CurrentActor) -> Response:
    """Counts of the whole platform and the way into each task of the actor's role."""
    _supervisor(actor)
    return render(request, "admin/index.html", {"board": _dashboard(db, actor), "section": "home"})


# --- confirmation queue (regulator) -------------------------------------------------------------


@dataclass
class QueueItem:
    entry: Entry
    is_change: bool
    changes: list[FieldChange]
    details: list[tuple[str, str]]
    note: str
    submitted_by: str
    reviews: list[ReviewSummary]  # 保密审查 and 安全风险评估 of its resources (Art. 26), read-only


def _queue_item(db: Session, actor: Actor, entry: Entry, names: dict[tuple[str, str], str]) -> QueueItem:
    records = service.entry_history(db, actor, entry.id)
    submitted = [r for r in records if r.action == Tag.catalog_entry_submitted]
    is_change = entry.status == EntryStatus.published
    return QueueItem(
        entry=entry,
        is_change=is_change,
        changes=pending_changes(entry, names) if is_change else [],
        details=entry_details(service.proposed_fields(entry), names),
        note=submitted[-1].comment if submitted else "",
        submitted_by=submitted[-1].actor_name if submitted else "",
        reviews=entry_reviews(db, actor, entry),
    )


def _render_queue(
    request: Request, db: Session, actor: Actor, failed: dict[int, str] | None = None, status: int = 200
) -> Response:
    names = service.term_names(db)
    items = [_queue_item(db, actor, e, names) for e in service.confirmation_queue(db, actor)]
    context = {"items": items, "failed": failed or {}, "section": "confirmations"}
    return render(request, "admin/confirmations.html", context, status=status)


@router.get("/admin/confirmations")
def confirmations(request: Request, db: DB, actor: CurrentActor) -> Response:
    """New entries and changes to published entries waiting for the regulator, oldest first."""
    return _render_queue(request, db, actor)


@router.post("/admin/entries/{entry_id}/confirm")
async def confirm_entry(request: Request, db: DB, actor: CurrentActor, entry_id: RowId) -> Response:
    """Confirm an entry or a change as conforming (Art. 14); the provider may then publish it."""
    comment = form_text(await request.form(), "comment")
    try:
        entry = service.confirm_entry(db, actor, entry_id, comment)
    except Conflict as exc:
        db.rollback()
        return redirect("/admin/confirmations", settings_of(request), exc.message, "error")
    message = f"已确认《{entry.title}》，提供单位现在可以发布。"
    return redirect("/admin/confirmations", settings_of(request), message)


@router.post("/admin/entries/{entry_id}/return")
async def return_entry(request: Request, db: DB, actor: CurrentActor, entry_id: RowId) -> Response:
    """Return an entry or a change to its provider; the reasons are required."""
    reason = form_text(await request.form(), "reason")
    try:
        entry = service.return_entry(db, actor, entry_id, reason)
    except InvalidInput as exc:
        db.rollback()
        failed = {entry_id: exc.fields.get("reason") or exc.message}
        return _render_queue(request, db, actor, failed, status=422)
    except Conflict as exc:
        db.rollback()
        return redirect("/admin/confirmations", settings_of(request), exc.message, "error")
    return redirect(
        "/admin/confirmations", settings_of(request), f"已退回《{entry.title}》，退回理由已告知提供单位。"
    )


# --- taxonomies (Art. 9) ------------------------------------------------------------------------


def _term_form(db: Session, kind: str, code: str) -> dict[str, Any]:
    """The add/edit form of one taxonomy section, filled with the term being edited if any."""
    terms = service.list_terms(db, kind, include_inactive=True)
    term = next((t for t in terms if t.code == code), None) if code else None
    if term is None:
        next_sort = max((t.sort for t in terms), default=-1) + 1
        return {
            "code": "",
            "name": "",
            "description": "",
            "sort": next_sort,
            "is_active": True,
            "editing": False,
        }
    return {
        "code": term.code,
        "name": term.name,
        "description": term.description,
        "sort": term.sort,
        "is_active": term.is_active,
        "editing": True,
    }


def _render_taxonomies(
    request: Request,
    db: Session,
    actor: Actor,
    edit: tuple[str, str] = ("", ""),
    posted: dict[str, Any] | None = None,
    error: ServiceError | None = None,
) -> Response:
    sections = []
    for kind in TaxonomyKind:
        form = _term_form(db, kind, edit[1] if edit[0] == kind else "")
        if posted and posted["kind"] == kind:
            form = posted
        sections.append((str(kind), service.list_terms(db, kind, include_inactive=True), form))
    context = {
        "sections": sections,
        "can_edit": actor.is_regulator,
        "failed_kind": posted["kind"] if posted else "",
        "section": "taxonomies",
        **_failed(error),
    }
    return render(request, "admin/taxonomies.html", context, status=error.status if error else 200)


@router.get("/admin/taxonomies")
def taxonomies(
    request: Request,
    db: DB,
    actor: CurrentActor,
    kind: Annotated[str, Query(max_length=20)] = "",
    code: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """主题分类, 行业分类 and 数据分级: the regulator edits them, the operator reads them."""
    _supervisor(actor)
    return _render_taxonomies(request, db, actor, (kind, code))


def _posted_term(form: FormData) -> dict[str, Any]:
    sort_text = form_text(form, "sort", 10).strip() or "0"
    return {
        "kind": form_text(form, "kind", 20),
        "code": form_text(form, "code", 40),
        "name": form_text(form, "name", 200),
        "description": form_text(form, "description"),
        "sort": sort_text,
        "is_active": form_text(form, "is_active", 5) == "1",
        "editing": form_text(form, "editing", 5) == "1",
    }


@router.post("/admin/taxonomies")
async def save_term(request: Request, db: DB, actor: CurrentActor) -> Response:
    """Add a term, or edit the term with the posted kind and code."""
    posted = _posted_term(await request.form())
    try:
        sort = int(posted["sort"])
        if sort not in SORT_RANGE:
            raise ValueError
    except ValueError:
        error = InvalidInput("分类信息有误", fields={"sort": "排序应为 -99999 到 99999 之间的整数"})
        return _render_taxonomies(request, db, actor, posted=posted, error=error)
    try:
        term = service.save_term(
            db,
            actor,
            posted["kind"],
            posted["code"],
            posted["name"],
            posted["description"],
            sort,
            posted["is_active"],
        )
    except InvalidInput as exc:
        db.rollback()
        return _render_taxonomies(request, db, actor, posted=posted, error=exc)
    message = f"已保存“{term.name}”（{term.code}）"
    return redirect(f"/admin/taxonomies#{term.kind}", settings_of(request), message)


# --- users (operator) -----------------------------------------------------------------------------


def _user_form(form: FormData, username: str = "") -> orgs.UserForm:
    return orgs.UserForm(
        username=username or form_text(form, "username", 64),
        email=form_text(form, "email", 254),
        display_name=form_text(form, "display_name", 100),
        user_type=form_text(form, "user_type", 20),
        system_role=form_text(form, "system_role", 20) or None,
        password=form_text(form, "password", 200),
        is_active=form_text(form, "is_active", 5) == "1",
    )


@router.get("/admin/users")
def users(
    request: Request, db: DB, actor: CurrentActor, q: Annotated[str, Query(max_length=100)] = ""
) -> Response:
    """Every account, searchable by username, name or e-mail."""
    found = orgs.list_users(db, actor, q)
    return render(request, "admin/users.html", {"users": found, "q": q, "section": "users"})


def _render_user_form(
    request: Request,
    user: User | None,
    values: orgs.UserForm,
    error: ServiceError | None = None,
    *,
    active_error: str = "",
) -> Response:
    context = {
        "user": user,
        "values": values,
        "active_error": active_error,
        "section": "users",
        **_failed(error),
    }
    status = error.status if error else (Conflict.status if active_error else 200)
    return render(request, "admin/user_form.html", context, status=status)


@router.get("/admin/users/new")
def new_user(request: Request, actor: CurrentActor) -> Response:
    """The form the operator creates an account with (for example for provider staff)."""
    require_operator(actor)
    return _render_user_form(request, None, orgs.UserForm(username="", email="", display_name=""))


@router.post("/admin/users/new")
async def create_user(request: Request, db: DB, actor: CurrentActor) -> Response:
    """Create the account; its e-mail counts as verified."""
    form = _user_form(await request.form())
    try:
        user = orgs.create_user(db, settings_of(request), actor, form)
    except InvalidInput as exc:
        db.rollback()
        form.password = ""
        return _render_user_form(request, None, form, exc)
    return redirect(f"/admin/users/{user.id}", settings_of(request), f"已创建用户 {user.username}")


def _user_page(
    request: Request,
    db: Session,
    actor: Actor,
    user_id: int,
    values: orgs.UserForm | None = None,
    error: ServiceError | None = None,
    active_error: str = "",
) -> Response:
    user = orgs.get_user_admin(db, actor, user_id)
    shown = values or orgs.UserForm(
        user.username, user.email, user.display_name, user.user_type, user.system_role
    )
    return _render_user_form(request, user, shown, error, active_error=active_error)


@router.get("/admin/users/{user_id}")
def user_page(request: Request, db: DB, actor: CurrentActor, user_id: RowId) -> Response:
    """One account: details, enable or disable, and its memberships."""
    return _user_page(request, db, actor, user_id)


@router.post("/admin/users/{user_id}")
async def update_user(request: Request, db: DB, actor: CurrentActor, user_id: RowId) -> Response:
    """Save the account's e-mail, name, type and platform role."""
    user = orgs.get_user_admin(db, actor, user_id)
    form = _user_form(await request.form(), user.username)
    try:
        orgs.update_user(db, actor, user_id, form)
    except InvalidInput as exc:
        db.rollback()
        return _user_page(request, db, actor, user_id, values=form, error=exc)
    return redirect(f"/admin/users/{user_id}", settings_of(request), "用户信息已保存")


@router.post("/admin/users/{user_id}/active")
async def set_user_active(request: Request, db: DB, actor: CurrentActor, user_id: RowId) -> Response:
    """Disable an account (its sessions end at once) or enable it again."""
    form = await request.form()
    active = form_text(form, "active", 5) == "1"
    try:
        user = orgs.set_user_active(db, actor, user_id, active, form_text(form, "comment"))
    except Conflict as exc:
        db.rollback()
        return _user_page(request, db, actor, user_id, active_error=exc.message)
    message = f"已启用用户 {user.username}" if active else f"已停用用户 {user.username}，其登录会话已全部结束"
    return redirect(f"/admin/users/{user_id}", settings_of(request), message)


# --- organisations (operator) -------------------------------------------------------------------


def _org_form(form: FormData) -> orgs.OrgForm:
    return orgs.OrgForm(
        name=form_text(form, "name", 200),
        slug=form_text(form, "slug", 50).strip().lower(),
        org_type=form_text(form, "org_type", 30),
        description=form_text(form, "description"),
        responsible_office=form_text(form, "responsible_office", 200),
        contact_phone=form_text(form, "contact_phone", 50),
        contact_email=form_text(form, "contact_email", 254),
    )


def _render_org_form(
    request: Request, org: Organisation | None, values: orgs.OrgForm, error: ServiceError | None = None
) -> Response:
    context = {
        "org": org,
        "values": values,
        "section": "orgs",
        **_failed(error),
    }
    return render(request, "admin/org_form.html", context, status=error.status if error else 200)


@router.get("/admin/orgs")
def organisations(request: Request, db: DB, actor: CurrentActor) -> Response:
    """Every provider organisation, disabled ones included."""
    require_operator(actor)
    found = orgs.list_orgs(db, include_inactive=True)
    return render(request, "admin/orgs.html", {"orgs": found, "section": "orgs"})


@router.get("/admin/orgs/new")
def new_org(request: Request, actor: CurrentActor) -> Response:
    """The form the operator registers a provider organisation with."""
    require_operator(actor)
    return _render_org_form(request, None, orgs.OrgForm(name="", slug=""))


@router.post("/admin/orgs/new")
async def create_org(request: Request, db: DB, actor: CurrentActor) -> Response:
    """Register the organisation; its admin is then added on the members page."""
    form = _org_form(await request.form())
    try:
        org = orgs.create_org(db, actor, form)
    except InvalidInput as exc:
        db.rollback()
        return _render_org_form(request, None, form, exc)
    message = f"已创建单位“{org.name}”。请在成员管理中为其添加单位管理员。"
    return redirect(f"/admin/orgs/{org.id}", settings_of(request), message)


def _editable_org(db: Session, actor: Actor, org_id: int) -> Organisation:
    require_operator(actor)
    return orgs.get_org(db, org_id)


@router.get("/admin/orgs/{org_id}")
def org_page(request: Request, db: DB, actor: CurrentActor, org_id: RowId) -> Response:
    """One organisation: details, enable or disable, members."""
    org = _editable_org(db, actor, org_id)
    values = orgs.OrgForm(**{k: getattr(org, k) for k in orgs.OrgForm.__dataclass_fields__})
    return _render_org_form(request, org, values)


@router.post("/admin/orgs/{org_id}")
async def update_org(request: Request, db: DB, actor: CurrentActor, org_id: RowId) -> Response:
    """Save the organisation's details."""
    form = _org_form(await request.form())
    try:
        orgs.update_org(db, actor, org_id, form)
    except InvalidInput as exc:
        db.rollback()
        return _render_org_form(request, _editable_org(db, actor, org_id), form, exc)
    return redirect(f"/admin/orgs/{org_id}", settings_of(request), "单位信息已保存")


@router.post("/admin/orgs/{org_id}/active")
async def set_org_active(request: Request, db: DB, actor: CurrentActor, org_id: RowId) -> Response:
    """Disable an organisation (it can no longer create entries) or enable it again."""
    form = await request.form()
    active = form_text(form, "active", 5) == "1"
    org = orgs.set_org_active(db, actor, org_id, active, form_text(form, "comment"))
    message = f"已启用“{org.name}”" if active else f"已停用“{org.name}”"
    return redirect(f"/admin/orgs/{org_id}", settings_of(request), message)


# --- every entry and its history (both) ---------------------------------------------------------


@dataclass
class EntryFilter:
    status: str = ""
    provider: int | None = None
    providers: list[Organisation] = field(default_factory=list)


@router.get("/admin/entries")
def entries(
    request: Request,
    db: DB,
    actor: CurrentActor,
    status: StatusQuery = "",
    provider: OrgQuery = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """Every entry in every state, filtered by state and provider, newest change first, in pages."""
    status = status if status in set(EntryStatus) else ""
    found, total = service.all_entries(
        db, actor, status or None, provider, limit=ENTRY_LIMIT, offset=(page - 1) * ENTRY_LIMIT
    )
    filters = EntryFilter(status, provider, orgs.list_orgs(db, include_inactive=True))
    pages = max(1, -(-total // ENTRY_LIMIT))
    query = {k: v for k, v in (("status", status), ("provider", provider)) if v}

    def page_url(number: int) -> str:
        return "/admin/entries?" + urlencode({**query, "page": number})

    context = {
        "entries": found,
        "total": total,
        "page": page,
        "pages": pages,
        "page_url": page_url,
        "filters": filters,
        "section": "entries",
    }
    return render(request, "admin/entries.html", context)


@router.get("/admin/entries/{entry_id}/history")
def entry_history(request: Request, db: DB, actor: CurrentActor, entry_id: RowId) -> Response:
    """Who did what to the entry and when, with the fields each step changed."""
    _supervisor(actor)
    records = service.entry_history(db, actor, entry_id)
    entry = service.get_entry(db, actor, entry_id)
    context = {"entry": entry, "history": history_rows(records, service.term_names(db)), "section": "entries"}
    return render(request, "admin/history.html", context)
