"""Organisation pages of the workspace: members and roles, and the staff list (Art. 30)."""

from __future__ import annotations

from itertools import zip_longest

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from kaifang.accounts import orgs
from kaifang.accounts.models import Organisation, OrgRole
from kaifang.accounts.permissions import Actor
from kaifang.errors import Conflict, InvalidInput, ServiceError
from kaifang.web.forms import form_text
from kaifang.web.security import DB, CurrentActor, RowId
from kaifang.web.templating import redirect, render

router = APIRouter(include_in_schema=False)

MAX_STAFF_ROWS = 100
EMPTY_STAFF_ROWS = 3
STAFF_KEYS = ("name", "position", "phone", "email", "duty")

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
    return redirect(f"/workspace/org/{org_id}/members", request.app.state.kf.settings, message)


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
        return redirect(url, request.app.state.kf.settings, exc.message, "error")
    return redirect(url, request.app.state.kf.settings, "已移除该成员的岗位")


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
    return redirect(f"/workspace/org/{org_id}/staff", request.app.state.kf.settings, "人员名单已报送")
