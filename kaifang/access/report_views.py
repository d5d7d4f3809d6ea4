"""Pages for what follows a grant: the grant's page with its use reports (Art. 22) and compliance
checks (Art. 27), suspensions (Art. 29), and the regulator's response-time statistics.

The rules live in `reports`, `suspension` and `stats`; these views read forms, call them and render.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from kaifang.access import reports, stats, suspension
from kaifang.access.grants import city_today
from kaifang.access.models import CONCLUSION_LABELS, REPORT_STATUS_LABELS, SUSPENSION_STATUS_LABELS
from kaifang.accounts.models import Organisation, OrgRole
from kaifang.accounts.permissions import Actor
from kaifang.datastore.storage import TooLarge
from kaifang.errors import Conflict, InvalidInput, NotFound, ServiceError
from kaifang.web.forms import form_text
from kaifang.web.security import DB, CurrentActor, RowId
from kaifang.web.templating import redirect, render, settings_of

router = APIRouter(include_in_schema=False)


def mine_extras(db: Session, actor: Actor) -> dict[str, Any]:
    """What 我的申请 shows beside applications and grants: every reporting point, due ones first."""
    points = reports.user_points(db, actor)
    return {"report_points": sorted(points, key=lambda p: (not p.flagged, p.due_on))}


def queue_extras(db: Session, actor: Actor) -> dict[str, Any]:
    """What the review queue shows beside applications and grants: 逾期未报 points and reports to
    review, and which grantees are suspended (their grants are frozen)."""
    return {
        "report_flags": reports.provider_flags(db, actor),
        "frozen_users": suspension.suspended_user_ids(db),
    }


def _grant_page(
    request: Request,
    db: Session,
    actor: Actor,
    grant_id: int,
    error: ServiceError | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    grant, provider_id = reports.get_grant(db, actor, grant_id)
    is_grantee = actor.user_id == grant.user_id
    context = {
        "grant": grant,
        "provider": db.get(Organisation, provider_id),
        "points": reports.grant_points(db, actor, grant_id),
        "checks": reports.compliance_checks(db, actor, grant_id),
        "frozen": grant.user_id in suspension.suspended_user_ids(db),
        "is_grantee": is_grantee,
        "can_review": actor.has_org_role(provider_id, OrgRole.reviewer) and not is_grantee,
        "today": city_today(),
        "report_labels": REPORT_STATUS_LABELS,
        "conclusions": CONCLUSION_LABELS,
        "values": values or {},
        "errors": error.fields if error else {},
        "error_message": error.message if error else "",
    }
    return render(request, "access/grant.html", context, status=error.status if error else 200)


@router.get("/grants/{grant_id}")
def grant_page(request: Request, grant_id: RowId, db: DB, actor: CurrentActor) -> Response:
    """A grant: its term, reporting points and reports, and the provider's compliance checks."""
    return _grant_page(request, db, actor, grant_id)


def _report_form(form: FormData) -> reports.ReportForm:
    return reports.ReportForm(
        work=form_text(form, "work", 4000),
        results=form_text(form, "results", 4000),
        links=form_text(form, "links"),
    )


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(1 << 20):
        yield chunk


async def _store_attachment(request: Request, form: FormData) -> reports.Attachment | None:
    """The optional `attachment` file, streamed into the store within the size limit."""
    upload = form.get("attachment")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1][:200]
    if not reports.attachment_allowed(name):
        kinds = "、".join(reports.ATTACHMENT_TYPES)
        raise InvalidInput(f"附件须为以下格式之一：{kinds}", fields={"attachment": "附件格式不支持"})
    suffix = name.rsplit(".", 1)[-1].lower()
    key = f"reports/{secrets.token_hex(16)}.{suffix}"
    limit = reports.ATTACHMENT_MAX_MB * 1024 * 1024
    try:
        size, _digest = await request.app.state.kf.store.put_stream(key, _chunks(upload), limit)
    except TooLarge as exc:
        message = f"附件不能超过 {reports.ATTACHMENT_MAX_MB} MB"
        raise InvalidInput(message, fields={"attachment": message}) from exc
    return reports.Attachment(key, name, size)


@router.post("/grants/{grant_id}/reports/{point}")
async def file_report(
    request: Request, grant_id: RowId, point: RowId, db: DB, actor: CurrentActor
) -> Response:
    """The grantee files the use report of one reporting point, with an optional attachment."""
    posted = await request.form(max_files=1, max_fields=20)
    form = _report_form(posted)
    attachment = None
    try:
        attachment = await _store_attachment(request, posted)
        reports.file_report(db, actor, grant_id, point, form, attachment=attachment)
    except (InvalidInput, Conflict) as exc:
        db.rollback()
        if attachment is not None:
            request.app.state.kf.store.delete(attachment.key)
        values = {"point": point, "work": form.work, "results": form.results, "links": form.links}
        return _grant_page(request, db, actor, grant_id, exc, values)
    message = "使用情况报告已提交，提供单位审阅后会通知您。"
    return redirect(f"/grants/{grant_id}", settings_of(request), message)


@router.get("/reports/{report_id}/attachment")
def report_attachment(request: Request, report_id: RowId, db: DB, actor: CurrentActor) -> Response:
    """A report's attachment, for whoever may see the grant."""
    report = reports.get_report(db, actor, report_id)[0]
    if not report.attachment_key:
        raise NotFound("该报告没有附件")
    path = request.app.state.kf.store.path(report.attachment_key)
    return FileResponse(path, filename=report.attachment_name)


@router.post("/reports/{report_id}/review")
async def review_report(request: Request, report_id: RowId, db: DB, actor: CurrentActor) -> Response:
    """The provider's reviewer accepts a report or asks for more."""
    form = await request.form()
    accepted = form_text(form, "decision", 20) == "accept"
    try:
        report = reports.review_report(db, actor, report_id, accepted, form_text(form, "note"))
    except (InvalidInput, Conflict) as exc:
        db.rollback()
        grant_id = reports.get_report(db, actor, report_id)[1].id
        return _grant_page(request, db, actor, grant_id, exc, {"review": report_id})
    message = "报告已认可，已通知被授权人。" if accepted else "已请被授权人补充报告。"
    return redirect(f"/grants/{report.grant_id}", settings_of(request), message)


@router.post("/grants/{grant_id}/checks")
async def record_check(request: Request, grant_id: RowId, db: DB, actor: CurrentActor) -> Response:
    """The provider's reviewer records a compliance check."""
    posted = await request.form()
    form = reports.CheckForm(
        checked_on=form_text(posted, "checked_on", 20),
        method=form_text(posted, "method", 200),
        finding=form_text(posted, "finding", 4000),
        conclusion=form_text(posted, "conclusion", 20),
        follow_up=form_text(posted, "follow_up", 4000),
    )
    try:
        reports.record_check(db, actor, grant_id, form)
    except InvalidInput as exc:
        db.rollback()
        return _grant_page(request, db, actor, grant_id, exc, {"check": vars(form)})
    return redirect(f"/grants/{grant_id}", settings_of(request), "核查记录已保存，已通知被授权人。")


# --- suspensions --------------------------------------------------------------------------------


def _suspensions_page(
    request: Request,
    db: Session,
    actor: Actor,
    error: ServiceError | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    orgs = actor.orgs_with_role(OrgRole.reviewer)
    candidates = {org: suspension.suspendable_users(db, actor, org) for org in orgs}
    context = {
        "suspensions": suspension.list_suspensions(db, actor),
        "labels": SUSPENSION_STATUS_LABELS,
        "providers": {org: db.get_one(Organisation, org).name for org in orgs},
        "candidates": candidates,
        "values": values or {},
        "errors": error.fields if error else {},
        "error_message": error.message if error else "",
    }
    return render(request, "access/suspensions.html", context, status=error.status if error else 200)


@router.get("/suspensions")
def suspensions(request: Request, db: DB, actor: CurrentActor) -> Response:
    """暂停服务: the provider proposes, the operator confirms (Art. 29); the regulator reads."""
    return _suspensions_page(request, db, actor)


def _int(value: str) -> int:
    return int(value) if value.isdigit() and len(value) < 10 else 0


@router.post("/suspensions")
async def propose(request: Request, db: DB, actor: CurrentActor) -> Response:
    form = await request.form()
    values = {k: form_text(form, k, 4000) for k in ("target", "reason", "evidence")}
    provider_id, _, user_id = values["target"].partition(":")
    try:
        suspension.propose(db, actor, _int(provider_id), _int(user_id), values["reason"], values["evidence"])
    except (InvalidInput, Conflict) as exc:
        db.rollback()
        return _suspensions_page(request, db, actor, exc, values)
    return redirect("/suspensions", settings_of(request), "已提出暂停服务，等待市大数据管理中心核实确认。")


DONE = {
    "confirm": "已确认暂停服务：该用户的登录会话已结束，API 密钥和使用授权即时停止。",
    "reject": "已不予确认，已通知提出单位。",
    "reinstate": "已提出恢复服务，等待市大数据管理中心核实确认。",
    "reinstate/confirm": "已确认恢复服务，未到期的使用授权恢复有效。",
    "reinstate/reject": "已不予恢复，已通知提出单位。",
}


async def _step(request: Request, db: Session, actor: Actor, suspension_id: int, step: str) -> Response:
    note = form_text(await request.form(), "note", 4000)
    try:
        if step == "confirm":
            suspension.confirm(db, actor, suspension_id, note)
        elif step == "reject":
            suspension.reject(db, actor, suspension_id, note)
        elif step == "reinstate":
            suspension.propose_reinstatement(db, actor, suspension_id, note)
        elif step == "reinstate/confirm":
            suspension.confirm_reinstatement(db, actor, suspension_id)
        else:
            suspension.reject_reinstatement(db, actor, suspension_id, note)
    except (InvalidInput, Conflict) as exc:
        db.rollback()
        return _suspensions_page(request, db, actor, exc)
    return redirect("/suspensions", settings_of(request), DONE[step])


@router.post("/suspensions/{suspension_id}/confirm")
async def confirm(request: Request, suspension_id: RowId, db: DB, actor: CurrentActor) -> Response:
    return await _step(request, db, actor, suspension_id, "confirm")


@router.post("/suspensions/{suspension_id}/reject")
async def reject(request: Request, suspension_id: RowId, db: DB, actor: CurrentActor) -> Response:
    return await _step(request, db, actor, suspension_id, "reject")


@router.post("/suspensions/{suspension_id}/reinstate")
async def reinstate(request: Request, suspension_id: RowId, db: DB, actor: CurrentActor) -> Response:
    return await _step(request, db, actor, suspension_id, "reinstate")


@router.post("/suspensions/{suspension_id}/reinstate/confirm")
async def confirm_reinstatement(
    request: Request, suspension_id: RowId, db: DB, actor: CurrentActor
) -> Response:
    return await _step(request, db, actor, suspension_id, "reinstate/confirm")


@router.post("/suspensions/{suspension_id}/reinstate/reject")
async def reject_reinstatement(
    request: Request, suspension_id: RowId, db: DB, actor: CurrentActor
) -> Response:
    return await _step(request, db, actor, suspension_id, "reinstate/reject")


# --- statistics ---------------------------------------------------------------------------------


@router.get("/admin/access/stats")
def response_times(request: Request, db: DB, actor: CurrentActor) -> Response:
    """The regulator's figures: response times per provider, and the due-soon and overdue lists."""
    figures = stats.provider_stats(db, actor)
    context = {
        "stats": figures,
        "due_soon": [a for s in figures for a in s.due_soon],
        "overdue": [a for s in figures for a in s.overdue],
        "section": "access_stats",
        "today": city_today(),
    }
    return render(request, "access/stats.html", context)
