"""有条件开放 pages: the application form on an entry, 我的申请, an application's page with the
reviewer's actions, the agreement and its signing, and the provider's review queue.

The rules live in `kaifang.access.service`; these views read forms, call it and render.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from kaifang.access import holidays, pdf, report_views, service
from kaifang.access.grants import city_today
from kaifang.access.models import STATUS_LABELS, Application, ApplicationStatus, Grant
from kaifang.accounts.models import OrgRole
from kaifang.accounts.permissions import Actor, require_login
from kaifang.catalog import service as catalog
from kaifang.datastore import service as datastore
from kaifang.errors import Conflict, InvalidInput, ServiceError
from kaifang.web.forms import form_text
from kaifang.web.security import DB, CurrentActor, RowId
from kaifang.web.templating import redirect, render, settings_of

router = APIRouter(include_in_schema=False)


def _form(form: FormData) -> service.ApplicationForm:
    ids = [int(v) for v in form.getlist("resource_ids") if isinstance(v, str) and v.isdigit()][:100]
    return service.ApplicationForm(
        purpose=form_text(form, "purpose"),
        scenario=form_text(form, "scenario"),
        period_days=form_text(form, "period_days", 10),
        security_measures=form_text(form, "security_measures"),
        contact=form_text(form, "contact", 200),
        resource_ids=ids,
    )


def _values(source: service.ApplicationForm | Application) -> dict[str, Any]:
    """The form's values from a posted form or from a stored application (same field names)."""
    return {
        "purpose": source.purpose,
        "scenario": source.scenario,
        "period_days": source.period_days,
        "security_measures": source.security_measures,
        "contact": source.contact,
        "resource_ids": source.resource_ids,
    }


def _apply_page(
    request: Request,
    db: Session,
    actor: Actor,
    entry_id: int,
    values: dict[str, Any] | None = None,
    error: ServiceError | None = None,
    renewal: Grant | None = None,
) -> Response:
    """The application form; for a renewal (续期) it posts to the grant and says which it renews."""
    entry = catalog.get_entry(db, actor, entry_id)
    resources = datastore.entry_resources(db, actor, entry)
    context = {
        "entry": entry,
        "resource_options": [(r.id, r.name) for r in resources],
        "values": values or {"period_days": 30, "resource_ids": [r.id for r in resources]},
        "errors": error.fields if error else {},
        "error_message": error.message if error else "",
        "max_period": service.MAX_PERIOD_DAYS,
        "renewal": renewal,
        "action": f"/grants/{renewal.id}/renew" if renewal else f"/datasets/{entry_id}/apply",
    }
    return render(request, "access/apply.html", context, status=422 if error else 200)


@router.get("/datasets/{entry_id}/apply")
def apply_form(request: Request, entry_id: RowId, db: DB, actor: CurrentActor) -> Response:
    """The application form (申请使用) of a 有条件开放 entry; login first."""
    require_login(actor)
    return _apply_page(request, db, actor, entry_id)


@router.post("/datasets/{entry_id}/apply")
async def apply(request: Request, entry_id: RowId, db: DB, actor: CurrentActor) -> Response:
    submitted = _form(await request.form())
    try:
        application = service.apply(db, actor, entry_id, submitted)
    except InvalidInput as exc:
        db.rollback()
        return _apply_page(request, db, actor, entry_id, _values(submitted), exc)
    except Conflict as exc:
        db.rollback()
        return redirect(f"/datasets/{entry_id}", settings_of(request), exc.message, "error")
    message = "申请已提交。资源提供单位受理后两个工作日内答复，进度可在“我的申请”中查看。"
    return redirect(f"/applications/{application.id}", settings_of(request), message)


@router.get("/grants/{grant_id}/renew")
def renew_form(request: Request, grant_id: RowId, db: DB, actor: CurrentActor) -> Response:
    """续期: the application form pre-filled from the granted application, for the grantee to edit."""
    try:
        grant = service.renewable_grant(db, actor, grant_id)
    except Conflict as exc:
        return redirect(_grant_page(db, grant_id), settings_of(request), exc.message, "error")
    values = _values(service.renewal_form(db, actor, grant_id))
    return _apply_page(request, db, actor, grant.entry_id, values, renewal=grant)


@router.post("/grants/{grant_id}/renew")
async def renew(request: Request, grant_id: RowId, db: DB, actor: CurrentActor) -> Response:
    submitted = _form(await request.form())
    try:
        application = service.renew(db, actor, grant_id, submitted)
    except InvalidInput as exc:
        db.rollback()
        grant = service.renewable_grant(db, actor, grant_id)
        return _apply_page(request, db, actor, grant.entry_id, _values(submitted), exc, renewal=grant)
    except Conflict as exc:
        db.rollback()
        return redirect(_grant_page(db, grant_id), settings_of(request), exc.message, "error")
    message = "续期申请已提交，按开放申请的流程受理和决定；原授权在到期前继续有效。"
    return redirect(f"/applications/{application.id}", settings_of(request), message)


def _grant_page(db: Session, grant_id: int) -> str:
    """The page of the application a grant came from (only reached after the owner check)."""
    grant = db.get(Grant, grant_id)
    return f"/applications/{grant.application_id}" if grant else "/account/applications"


@router.get("/account/applications")
def my_applications(request: Request, db: DB, actor: CurrentActor) -> Response:
    """我的申请: every application with its due date, agreements to sign, grants and their terms."""
    applications = service.my_applications(db, actor)
    context = {
        "applications": applications,
        "grants": service.my_grants(db, actor),
        "labels": STATUS_LABELS,
        "today": city_today(),
        **report_views.mine_extras(db, actor),
    }
    return render(request, "access/mine.html", context)


def _application_page(
    request: Request,
    db: Session,
    actor: Actor,
    application: Application,
    error: ServiceError | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    is_reviewer = actor.has_org_role(application.provider_id, OrgRole.reviewer)
    is_applicant = actor.user_id == application.user_id
    completing = is_applicant and application.status == ApplicationStatus.returned
    grant = service.grant_of(db, application)
    context = {
        "application": application,
        "grant": grant,
        "today": city_today(),
        "can_renew": is_applicant and grant is not None and not service.renewal_refusal(db, grant),
        "renewal_window": service.RENEWAL_WINDOW_DAYS,
        "resources": service.requested_resources(db, application),
        "labels": STATUS_LABELS,
        "due_state": service.due_state(application),
        "is_applicant": is_applicant,
        "can_review": is_reviewer and not is_applicant,
        # the returned application's form, for the applicant to complete (补正)
        "resource_options": [(r.id, r.name) for r in datastore.entry_resources(db, actor, application.entry)]
        if completing
        else [],
        "values": values or _values(application),
        "max_period": service.MAX_PERIOD_DAYS,
        "errors": error.fields if error else {},
        "error_message": error.message if error else "",
    }
    return render(request, "access/application.html", context, status=422 if error else 200)


@router.get("/applications/{application_id}")
def application_page(request: Request, application_id: RowId, db: DB, actor: CurrentActor) -> Response:
    return _application_page(request, db, actor, service.get_application(db, actor, application_id))


@router.post("/applications/{application_id}/resubmit")
async def resubmit(request: Request, application_id: RowId, db: DB, actor: CurrentActor) -> Response:
    """The applicant completes a returned application (补正)."""
    submitted = _form(await request.form())
    try:
        service.resubmit(db, actor, application_id, submitted)
    except (InvalidInput, Conflict) as exc:
        db.rollback()
        application = service.get_application(db, actor, application_id)
        return _application_page(request, db, actor, application, exc, _values(submitted))
    return redirect(f"/applications/{application_id}", settings_of(request), "已重新提交，等待受理。")


async def _decide(request: Request, db: Session, actor: Actor, application_id: int, action: str) -> Response:
    """Run one reviewer action; a bad form re-renders the page with the message."""
    form = await request.form()
    try:
        if action == "accept":
            service.accept(db, actor, application_id)
        elif action == "return":
            service.return_for_completion(db, actor, application_id, form_text(form, "comment"))
        elif action == "approve":
            service.approve(db, actor, application_id)
        else:
            service.refuse(db, actor, application_id, form_text(form, "reason"), form_text(form, "basis"))
    except (InvalidInput, Conflict) as exc:
        db.rollback()
        return _application_page(request, db, actor, service.get_application(db, actor, application_id), exc)
    return redirect(f"/applications/{application_id}", settings_of(request), DONE[action])


DONE = {
    "accept": "已受理。请在显示的答复期限前作出决定。",
    "return": "已退回申请人补正。",
    "approve": "已批准，使用协议已生成，请双方签订。",
    "refuse": "已作出不予批准的决定，理由和依据已告知申请人。",
}


@router.post("/applications/{application_id}/accept")
async def accept(request: Request, application_id: RowId, db: DB, actor: CurrentActor) -> Response:
    return await _decide(request, db, actor, application_id, "accept")


@router.post("/applications/{application_id}/return")
async def return_for_completion(
    request: Request, application_id: RowId, db: DB, actor: CurrentActor
) -> Response:
    return await _decide(request, db, actor, application_id, "return")


@router.post("/applications/{application_id}/approve")
async def approve(request: Request, application_id: RowId, db: DB, actor: CurrentActor) -> Response:
    return await _decide(request, db, actor, application_id, "approve")


@router.post("/applications/{application_id}/refuse")
async def refuse(request: Request, application_id: RowId, db: DB, actor: CurrentActor) -> Response:
    return await _decide(request, db, actor, application_id, "refuse")


@router.get("/applications/{application_id}/agreement")
def agreement_page(request: Request, application_id: RowId, db: DB, actor: CurrentActor) -> Response:
    """The agreement as generated and signed, with the signing form for a side that has not signed."""
    agreement = service.get_agreement(db, actor, application_id)
    application = agreement.application
    is_applicant = actor.user_id == application.user_id
    is_reviewer = actor.has_org_role(application.provider_id, OrgRole.reviewer) and not is_applicant
    can_sign = (is_applicant and agreement.user_signed_at is None) or (
        is_reviewer and agreement.provider_signed_at is None
    )
    context = {"agreement": agreement, "application": application, "can_sign": can_sign}
    return render(request, "access/agreement.html", context)


@router.get("/applications/{application_id}/agreement.pdf")
def agreement_pdf(application_id: RowId, db: DB, actor: CurrentActor) -> Response:
    """The agreement as PDF: the text as signed and the signature record; who may see the page may
    download it."""
    agreement = service.get_agreement(db, actor, application_id)
    number = f"KF-SQ-{application_id:06d}"
    content = pdf.render(agreement, pdf.signatures(db, agreement), f"使用协议 {number}")
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="agreement-{number}.pdf"'},
    )


@router.post("/applications/{application_id}/agreement/sign")
async def sign(request: Request, application_id: RowId, db: DB, actor: CurrentActor) -> Response:
    form = await request.form()
    url = f"/applications/{application_id}/agreement"
    try:
        agreement = service.sign(db, actor, application_id, form_text(form, "sha256", 64))
    except Conflict as exc:
        db.rollback()
        return redirect(url, settings_of(request), exc.message, "error")
    message = "已签订。" + ("双方均已签订，授权已生效。" if agreement.fully_signed else "等待另一方签订。")
    return redirect(url, settings_of(request), message)


@router.get("/workspace/applications")
def review_queue(request: Request, db: DB, actor: CurrentActor) -> Response:
    """The provider's queue: every application with its due date and overdue flag, and the grants."""
    applications = service.review_queue(db, actor)
    today = city_today()
    context = {
        "applications": applications,
        "due": {a.id: service.due_state(a, today) for a in applications},
        "grants": service.provider_grants(db, actor) if actor.orgs_with_role(OrgRole.reviewer) else [],
        "labels": STATUS_LABELS,
        "today": today,
        **report_views.queue_extras(db, actor),
    }
    return render(request, "access/queue.html", context)


@router.post("/workspace/grants/{grant_id}/revoke")
async def revoke(request: Request, grant_id: RowId, db: DB, actor: CurrentActor) -> Response:
    form = await request.form()
    try:
        service.revoke_grant(db, actor, grant_id, form_text(form, "reason"))
    except (InvalidInput, Conflict) as exc:
        db.rollback()
        return redirect("/workspace/applications", settings_of(request), exc.message, "error")
    return redirect("/workspace/applications", settings_of(request), "授权已撤销，即时生效。")


def _holidays_page(
    request: Request, db: Session, actor: Actor, error: ServiceError | None = None
) -> Response:
    context = {
        "holidays": holidays.list_holidays(db, actor),
        "known_until": holidays.KNOWN_UNTIL,
        "this_year": city_today().year,
        "section": "holidays",
        "errors": error.fields if error else {},
        "error_message": error.message if error else "",
    }
    return render(request, "access/holidays.html", context, status=422 if error else 200)


@router.get("/admin/holidays")
def holiday_table(request: Request, db: DB, actor: CurrentActor) -> Response:
    """The operator's holiday table over the package's calendar (Art. 10 deadlines)."""
    return _holidays_page(request, db, actor)


@router.post("/admin/holidays")
async def set_holiday(request: Request, db: DB, actor: CurrentActor) -> Response:
    form = await request.form()
    is_workday = form_text(form, "is_workday", 5) == "1"
    try:
        holidays.set_holiday(db, actor, form_text(form, "day", 20), is_workday, form_text(form, "name", 100))
    except InvalidInput as exc:
        db.rollback()
        return _holidays_page(request, db, actor, exc)
    return redirect(
        "/admin/holidays", settings_of(request), "已保存。新受理的申请按更新后的节假日表计算期限。"
    )


@router.post("/admin/holidays/{holiday_id}/delete")
async def delete_holiday(request: Request, holiday_id: RowId, db: DB, actor: CurrentActor) -> Response:
    holidays.delete_holiday(db, actor, holiday_id)
    return redirect("/admin/holidays", settings_of(request), "已删除。")
