"""有条件开放 applications (Art. 10, 28): apply, accept or return for completion, decide within
two working days, sign the usage agreement, and the grant it creates. No HTTP in here.

Reviewers are the provider's members with the `reviewer` role; nobody reviews their own
application. Every transition writes an audit record in the same transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from kaifang.access import agreement as agreement_text
from kaifang.access import notices
from kaifang.access.grants import CITY_ZONE, city_today
from kaifang.access.models import OPEN_STATUSES, Agreement, Application, ApplicationStatus, Grant
from kaifang.access.workdays import due_date, load_calendar
from kaifang.accounts.models import Organisation, OrgRole, User
from kaifang.accounts.permissions import Actor, require, require_login, require_org_role
from kaifang.audit.service import record
from kaifang.audit.tags import Tag
from kaifang.catalog import service as catalog
from kaifang.catalog.models import Entry, EntryStatus, OpenType
from kaifang.datastore.models import Resource
from kaifang.db import MAX_ID, utcnow
from kaifang.errors import Conflict, InvalidInput, NotFound

MAX_PERIOD_DAYS = 365  # 使用时限 at most one year; a longer use is a renewal
RENEWAL_WINDOW_DAYS = 30  # a grant may be renewed while in force and up to 30 days after it ended
MIN_TEXT = 10  # purpose and security measures shorter than this say nothing
MAX_TEXT = 2000
CONTACT = re.compile(r"(\d[\d\- ]{6,}\d)|([^@\s]+@[^@\s]+\.[^@\s]+)")


@dataclass
class ApplicationForm:
    """What the applicant fills in; validated by `_clean` before anything is stored."""

    purpose: str = ""
    scenario: str = ""
    period_days: int | str = ""
    security_measures: str = ""
    contact: str = ""
    resource_ids: list[int] = field(default_factory=list)


def _text(value: str, name: str, label: str, minimum: int, errors: dict[str, str]) -> str:
    value = (value or "").strip()
    if len(value) < minimum:
        errors[name] = f"请填写{label}（不少于 {minimum} 个字）"
    elif len(value) > MAX_TEXT:
        errors[name] = f"{label}不能超过 {MAX_TEXT} 字"
    return value


def _period(value: int | str, errors: dict[str, str]) -> int:
    try:
        days = int(str(value).strip())
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_PERIOD_DAYS:
        errors["period_days"] = f"使用时限应为 1 至 {MAX_PERIOD_DAYS} 天"
    return days


def _clean(db: Session, entry: Entry, form: ApplicationForm) -> ApplicationForm:
    errors: dict[str, str] = {}
    purpose = _text(form.purpose, "purpose", "使用用途", MIN_TEXT, errors)
    scenario = _text(form.scenario, "scenario", "使用场景", 4, errors)
    security = _text(form.security_measures, "security_measures", "安全保障措施", MIN_TEXT, errors)
    contact = (form.contact or "").strip()[:200]
    if not CONTACT.search(contact):
        errors["contact"] = "请填写联系电话或电子邮箱"
    period = _period(form.period_days, errors)
    published = {
        r.id
        for r in db.scalars(select(Resource).where(Resource.entry_id == entry.id))
        if r.published_version_id is not None
    }
    wanted = sorted({int(r) for r in form.resource_ids})
    if not wanted or not set(wanted) <= published:
        errors["resource_ids"] = "请选择该目录下已发布的数据资源"
    if errors:
        raise InvalidInput("申请信息不完整或有误：" + "；".join(errors.values()), fields=errors)
    return ApplicationForm(purpose, scenario, period, security, contact, wanted)


# --- reading ------------------------------------------------------------------------------------


def _load(db: Session, application_id: int) -> Application:
    application = db.get(Application, application_id) if 0 < application_id <= MAX_ID else None
    if application is None:
        raise NotFound("未找到该开放申请")
    return application


def _may_see(actor: Actor, application: Application) -> bool:
    return (
        actor.user_id == application.user_id
        or actor.is_member(application.provider_id)
        or actor.is_supervisor
    )


def get_application(db: Session, actor: Actor, application_id: int) -> Application:
    """The applicant, the provider's staff and the supervisors see an application; others get 404."""
    require_login(actor)
    application = _load(db, application_id)
    if not _may_see(actor, application):
        raise NotFound("未找到该开放申请")
    return application


def my_applications(db: Session, actor: Actor) -> list[Application]:
    require_login(actor)
    return list(
        db.scalars(
            select(Application)
            .where(Application.user_id == actor.user_id)
            .options(selectinload(Application.agreement), selectinload(Application.entry))
            .order_by(Application.id.desc())
        )
    )


def my_grants(db: Session, actor: Actor) -> list[Grant]:
    require_login(actor)
    return list(
        db.scalars(
            select(Grant)
            .where(Grant.user_id == actor.user_id)
            .options(selectinload(Grant.entry))
            .order_by(Grant.id.desc())
        )
    )


def review_queue(db: Session, actor: Actor) -> list[Application]:
    """The applications of the providers where the actor reviews; every provider's for supervisors
    (the regulator watches response times)."""
    require_login(actor)
    query = (
        select(Application)
        .options(selectinload(Application.agreement), selectinload(Application.entry))
        .order_by(Application.id.desc())
    )
    if not actor.is_supervisor:
        orgs = actor.orgs_with_role(OrgRole.reviewer)
        require(bool(orgs), "此页面仅限数据提供单位的申请审核人员")
        query = query.where(Application.provider_id.in_(orgs))
    return list(db.scalars(query))


def provider_grants(db: Session, actor: Actor) -> list[Grant]:
    """The grants on the entries of the providers where the actor reviews."""
    require_login(actor)
    orgs = actor.orgs_with_role(OrgRole.reviewer)
    require(bool(orgs), "此页面仅限数据提供单位的申请审核人员")
    return list(
        db.scalars(
            select(Grant)
            .join(Application, Application.id == Grant.application_id)
            .where(Application.provider_id.in_(orgs))
            .options(selectinload(Grant.entry))
            .order_by(Grant.id.desc())
        )
    )


def requested_resources(db: Session, application: Application) -> list[Resource]:
    """The resources the application names (shown to whoever may see the application)."""
    ids = application.resource_ids or []
    return list(db.scalars(select(Resource).where(Resource.id.in_(ids)).order_by(Resource.id)))


def due_state(application: Application, today: date | None = None) -> str:
    """'overdue', 'due_today' or '' for an accepted application awaiting the decision."""
    if application.status != ApplicationStatus.accepted or application.due_on is None:
        return ""
    day = today or city_today()
    if day > application.due_on:
        return "overdue"
    return "due_today" if day == application.due_on else ""


# --- applying -----------------------------------------------------------------------------------


def apply(
    db: Session, actor: Actor, entry_id: int, form: ApplicationForm, *, renews: Grant | None = None
) -> Application:
    """A logged-in user applies to use a published 有条件开放 entry (`renews`: a renewal, see `renew`)."""
    require_login(actor)
    entry = catalog.get_entry(db, actor, entry_id)
    if entry.status != EntryStatus.published or entry.open_type != OpenType.conditional:
        raise Conflict("只有已发布的有条件开放数据可以申请")
    if actor.is_member(entry.provider_id):
        raise Conflict("本单位人员可直接使用本单位数据，无需申请")
    existing = db.scalar(
        select(Application.id).where(
            Application.entry_id == entry.id,
            Application.user_id == actor.user_id,
            Application.status.in_(OPEN_STATUSES),
        )
    )
    if existing is not None:
        raise Conflict(f"您对该数据已有一份正在办理的申请（申请编号 {existing}）")
    clean = _clean(db, entry, form)
    application = Application(
        entry_id=entry.id,
        provider_id=entry.provider_id,
        user_id=actor.user_id,
        status=ApplicationStatus.submitted,
        purpose=clean.purpose,
        scenario=clean.scenario,
        period_days=int(clean.period_days),
        security_measures=clean.security_measures,
        contact=clean.contact,
        resource_ids=clean.resource_ids,
        renews_grant_id=renews.id if renews else None,
    )
    db.add(application)
    try:
        db.flush()
    except IntegrityError as exc:  # a concurrent request passed the check first (the one-open index)
        raise Conflict("您对该数据已有一份正在办理的申请") from exc
    record(
        db,
        actor,
        Tag.access_application_submitted,
        "application",
        application.id,
        summary={
            "after": {
                "entry_id": entry.id,
                "period_days": application.period_days,
                "renews_grant_id": application.renews_grant_id,
            }
        },
    )
    notices.submitted(db, application)
    return application


def renewal_refusal(db: Session, grant: Grant, today: date | None = None) -> str:
    """Why a grant may not be renewed now, or "" when it may: it must not be revoked, must be in
    force or have ended at most `RENEWAL_WINDOW_DAYS` ago (a longer lapse is a fresh application),
    and must not have been renewed already (the renewed grant is the one to renew next)."""
    day = today or city_today()
    if grant.revoked_at is not None:
        return "该授权已被撤销，不能续期；如需继续使用请重新申请"
    if grant.last_day < day - timedelta(days=RENEWAL_WINDOW_DAYS):
        return f"该授权已到期超过 {RENEWAL_WINDOW_DAYS} 天，不能续期；如需继续使用请重新申请"
    renewed = db.scalar(
        select(Application.id).where(
            Application.renews_grant_id == grant.id, Application.status == ApplicationStatus.granted
        )
    )
    if renewed is not None:
        return f"该授权已续期（申请编号 {renewed}），请对续期后的授权申请续期"
    return ""


def grant_of(db: Session, application: Application) -> Grant | None:
    """The grant an application's signed agreement created, if any."""
    return db.scalar(select(Grant).where(Grant.application_id == application.id))


def renewable_grant(db: Session, actor: Actor, grant_id: int) -> Grant:
    """The actor's own grant, if it may be renewed (`renewal_refusal`). Anyone else's is not found."""
    require_login(actor)
    grant = db.get(Grant, grant_id) if 0 < grant_id <= MAX_ID else None
    if grant is None or grant.user_id != actor.user_id:
        raise NotFound("未找到该授权")
    refusal = renewal_refusal(db, grant)
    if refusal:
        raise Conflict(refusal)
    return grant


def renewal_form(db: Session, actor: Actor, grant_id: int) -> ApplicationForm:
    """The renewal's form, pre-filled from the application the grant came from."""
    granted = _load(db, renewable_grant(db, actor, grant_id).application_id)
    return ApplicationForm(
        purpose=granted.purpose,
        scenario=granted.scenario,
        period_days=granted.period_days,
        security_measures=granted.security_measures,
        contact=granted.contact,
        resource_ids=list(granted.resource_ids or []),
    )


def renew(db: Session, actor: Actor, grant_id: int, form: ApplicationForm) -> Application:
    """续期: the grantee applies again for the same entry; the new application names the grant it
    renews and follows the normal path (acceptance, decision, a new agreement and grant)."""
    grant = renewable_grant(db, actor, grant_id)
    return apply(db, actor, grant.entry_id, form, renews=grant)


def resubmit(db: Session, actor: Actor, application_id: int, form: ApplicationForm) -> Application:
    """The applicant completes an application returned for completion (补正)."""
    application = get_application(db, actor, application_id)
    require(actor.user_id == application.user_id, "只有申请人可以补正申请")
    if application.status != ApplicationStatus.returned:
        raise Conflict("只有被退回补正的申请可以重新提交")
    clean = _clean(db, catalog.get_entry(db, actor, application.entry_id), form)
    application.purpose, application.scenario = clean.purpose, clean.scenario
    application.period_days, application.security_measures = int(clean.period_days), clean.security_measures
    application.contact, application.resource_ids = clean.contact, clean.resource_ids
    application.status, application.submitted_at = ApplicationStatus.submitted, utcnow()
    record(db, actor, Tag.access_application_resubmitted, "application", application.id)
    notices.submitted(db, application, again=True)
    return application


# --- reviewing ----------------------------------------------------------------------------------


def _reviewable(db: Session, actor: Actor, application_id: int, *states: ApplicationStatus) -> Application:
    application = get_application(db, actor, application_id)
    require_org_role(actor, application.provider_id, OrgRole.reviewer)
    require(actor.user_id != application.user_id, "不能审核本人提交的申请")
    if application.status not in states:
        raise Conflict("该申请当前状态不能执行此操作")
    return application


def accept(db: Session, actor: Actor, application_id: int) -> Application:
    """受理: the clock starts; the decision is due by the end of the second working day after."""
    application = _reviewable(db, actor, application_id, ApplicationStatus.submitted)
    now = utcnow()
    due = due_date(load_calendar(db), now.astimezone(CITY_ZONE).date())
    application.status, application.accepted_at = ApplicationStatus.accepted, now
    application.due_on, application.due_estimated = due.day, due.estimated
    application.reviewer_id = actor.user_id
    record(
        db,
        actor,
        Tag.access_application_accepted,
        "application",
        application.id,
        summary={"after": {"due_on": due.day, "due_estimated": due.estimated}},
    )
    notices.accepted(db, application)
    return application


def return_for_completion(db: Session, actor: Actor, application_id: int, comment: str) -> Application:
    """补正: the applicant is told what is missing and resubmits; the clock has not started."""
    application = _reviewable(db, actor, application_id, ApplicationStatus.submitted)
    comment = (comment or "").strip()
    if len(comment) < 4:
        raise InvalidInput("请说明需要补正的内容", fields={"comment": "请说明需要补正的内容"})
    application.status, application.return_note = ApplicationStatus.returned, comment[:MAX_TEXT]
    record(db, actor, Tag.access_application_returned, "application", application.id, comment=comment)
    notices.returned(db, application)
    return application


def approve(db: Session, actor: Actor, application_id: int) -> Agreement:
    """Approval generates the usage agreement both sides then sign."""
    application = _reviewable(db, actor, application_id, ApplicationStatus.accepted)
    entry = db.get(Entry, application.entry_id)
    provider = db.get(Organisation, application.provider_id)
    user = db.get(User, application.user_id)
    assert entry is not None and provider is not None and user is not None  # foreign keys
    text = agreement_text.render(application, entry, provider, user, requested_resources(db, application))
    agreement = Agreement(application_id=application.id, text=text, sha256=agreement_text.sha256_of(text))
    db.add(agreement)
    application.status, application.decided_at = ApplicationStatus.approved, utcnow()
    application.reviewer_id = actor.user_id
    db.flush()
    record(
        db,
        actor,
        Tag.access_application_approved,
        "application",
        application.id,
        summary={"after": {"agreement_id": agreement.id, "sha256": agreement.sha256}},
    )
    notices.approved(db, application)
    return agreement


def refuse(db: Session, actor: Actor, application_id: int, reason: str, basis: str) -> Application:
    """A refusal states both the reason (理由) and the basis (依据); without both it is impossible."""
    application = _reviewable(db, actor, application_id, ApplicationStatus.accepted)
    reason, basis = (reason or "").strip(), (basis or "").strip()
    errors = {}
    if len(reason) < 4:
        errors["reason"] = "请填写不予批准的理由"
    if len(basis) < 4:
        errors["basis"] = "请填写不予批准的依据"
    if errors:
        raise InvalidInput("不予批准须同时说明理由和依据", fields=errors)
    application.status, application.decided_at = ApplicationStatus.refused, utcnow()
    application.refusal_reason, application.refusal_basis = reason[:MAX_TEXT], basis[:MAX_TEXT]
    application.reviewer_id = actor.user_id
    record(
        db,
        actor,
        Tag.access_application_refused,
        "application",
        application.id,
        summary={"after": {"reason": reason, "basis": basis}},
    )
    notices.refused(db, application)
    return application


# --- agreement and grant ------------------------------------------------------------------------


def get_agreement(db: Session, actor: Actor, application_id: int) -> Agreement:
    application = get_application(db, actor, application_id)
    if application.agreement is None:
        raise NotFound("该申请尚未生成使用协议")
    return application.agreement


def sign(db: Session, actor: Actor, application_id: int, sha256: str) -> Agreement:
    """One side signs the exact text it was shown (`sha256`); when both have, the grant exists."""
    agreement = get_agreement(db, actor, application_id)
    application = agreement.application
    if sha256 != agreement.sha256:
        raise Conflict("协议文本与您阅读的版本不一致，请刷新后重新阅读并签订")
    now = utcnow()
    if actor.user_id == application.user_id:
        side = "user"
        if agreement.user_signed_at is not None:
            raise Conflict("您已签订该协议")
        agreement.user_signed_by, agreement.user_signed_at = actor.user_id, now
        agreement.user_signed_sha256 = sha256
    else:
        require_org_role(actor, application.provider_id, OrgRole.reviewer)
        side = "provider"
        if agreement.provider_signed_at is not None:
            raise Conflict("提供单位已签订该协议")
        agreement.provider_signed_by, agreement.provider_signed_at = actor.user_id, now
        agreement.provider_signed_sha256 = sha256
    record(
        db,
        actor,
        Tag.access_agreement_signed,
        "agreement",
        agreement.id,
        summary={"after": {"side": side, "sha256": sha256}},
    )
    # Each signature tells the other side; the applicant hears of the provider's last signature
    # through the grant's message.
    if side == "user":
        notices.signed_by_applicant(db, application)
    elif not agreement.fully_signed:
        notices.signed_by_provider(db, application)
    if agreement.fully_signed:
        notices.granted(db, application, _grant(db, actor, application, agreement))
    return agreement


def _grant(db: Session, actor: Actor, application: Application, agreement: Agreement) -> Grant:
    start = city_today()
    grant = Grant(
        application_id=application.id,
        agreement_id=agreement.id,
        user_id=application.user_id,
        entry_id=application.entry_id,
        starts_on=start,
        ends_on=start + timedelta(days=application.period_days),
    )
    db.add(grant)
    application.status = ApplicationStatus.granted
    db.flush()
    record(
        db,
        actor,
        Tag.access_grant_created,
        "grant",
        grant.id,
        summary={
            "after": {
                "entry_id": grant.entry_id,
                "user_id": grant.user_id,
                "starts_on": grant.starts_on,
                "ends_on": grant.ends_on,
            }
        },
    )
    return grant


def revoke_grant(db: Session, actor: Actor, grant_id: int, reason: str) -> Grant:
    """The provider's reviewer revokes a grant, with a reason; it stops working at once."""
    require_login(actor)
    grant = db.get(Grant, grant_id) if 0 < grant_id <= MAX_ID else None
    if grant is None:
        raise NotFound("未找到该授权")
    application = _load(db, grant.application_id)
    require_org_role(actor, application.provider_id, OrgRole.reviewer)
    reason = (reason or "").strip()
    if len(reason) < 4:
        raise InvalidInput("请填写撤销授权的理由", fields={"reason": "请填写撤销授权的理由"})
    if grant.revoked_at is not None:
        raise Conflict("该授权已撤销")
    grant.revoked_at, grant.revoked_by, grant.revoke_reason = utcnow(), actor.user_id, reason[:MAX_TEXT]
    record(db, actor, Tag.access_grant_revoked, "grant", grant.id, comment=reason)
    notices.revoked(db, application, grant)
    return grant
